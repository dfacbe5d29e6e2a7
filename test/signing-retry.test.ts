/**
 * The v2 retry vectors (PROTOCOL.md §8, `v2_retry`) against the server's signer (node:crypto) and
 * the client's (WebCrypto). The project's own copy: test/fixtures/vectors-retry.json.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeSessionKey, macMatches, signV2Request, signV2Retry } from '../src/core/signing.ts';
import { v2Key, v2RetryBytes } from '../src/client/signing.ts';
import { ROOT } from './helpers/server.ts';

interface RetryVector { name: string; session_key: string; timestamp: string; nonce: string; retry_timestamp: string; retry_of: string; body: string; string_to_sign: string; hmac: string }

const { v2_retry: vectors } = JSON.parse(readFileSync(resolve(ROOT, 'test/fixtures/vectors-retry.json'), 'utf8')) as { v2_retry: RetryVector[] };

describe('vectors: v2 retries', () => {
  it('holds at least one', () => {
    expect(vectors.length).toBeGreaterThanOrEqual(1);
  });

  for (const v of vectors) {
    it(v.name, async () => {
      const key = decodeSessionKey(v.session_key)!;
      const body = Buffer.from(v.body, 'utf8');
      expect(Buffer.from(v2RetryBytes(v.timestamp, v.nonce, v.retry_timestamp, v.retry_of, body)).toString('utf8')).toBe(v.string_to_sign);
      expect(signV2Retry(key, v.timestamp, v.nonce, v.retry_timestamp, v.retry_of, body)).toBe(v.hmac);
      expect(await v2Key(v.session_key).hex(v2RetryBytes(v.timestamp, v.nonce, v.retry_timestamp, v.retry_of, body))).toBe(v.hmac);
      // Neither the plain v2 MAC nor a retry of another first attempt is the same.
      expect(macMatches(signV2Request(key, v.timestamp, v.nonce, body), v.hmac)).toBe(false);
      expect(macMatches(signV2Retry(key, v.timestamp, v.nonce, String(Number(v.retry_timestamp) + 1), v.retry_of, body), v.hmac)).toBe(false);
      expect(macMatches(signV2Retry(key, v.timestamp, v.nonce, v.retry_timestamp, `${v.retry_of}x`, body), v.hmac)).toBe(false);
    });
  }
});
