/**
 * Every vector of ../shared/protocol/vectors.json against the server's signer and verifier
 * (node:crypto) and the client's (WebCrypto).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { macMatches, signV1, signV2Request, signV2Response, decodeSessionKey } from '../src/core/signing.ts';
import { v1Key, v2Key, v2RequestBytes, v2ResponseBytes } from '../src/client/signing.ts';
import { ROOT } from './helpers/server.ts';

interface V1Vector { name: string; user_id: string; body: string; hmac: string }
interface V2Vector { name: string; session_key: string; timestamp?: string; nonce?: string; request_nonce?: string; body: string; string_to_sign: string; hmac: string }

const vectors = JSON.parse(readFileSync(resolve(ROOT, '../shared/protocol/vectors.json'), 'utf8')) as { v1: V1Vector[]; v2: V2Vector[] };
const enc = new TextEncoder();

describe('vectors.json', () => {
  it('holds vectors of both schemes', () => {
    expect(vectors.v1.length).toBeGreaterThanOrEqual(3);
    expect(vectors.v2.length).toBeGreaterThanOrEqual(4);
  });

  for (const v of vectors.v1) {
    it(`v1: ${v.name}`, async () => {
      expect(signV1(v.user_id, Buffer.from(v.body, 'utf8'))).toBe(v.hmac);
      expect(macMatches(signV1(v.user_id, Buffer.from(v.body)), v.hmac)).toBe(true);
      expect(macMatches(signV1(v.user_id, Buffer.from(`${v.body} `)), v.hmac)).toBe(false);
      expect(await v1Key(v.user_id).hex(enc.encode(v.body))).toBe(v.hmac);
    });
  }

  for (const v of vectors.v2) {
    it(`v2: ${v.name}`, async () => {
      const key = decodeSessionKey(v.session_key)!;
      expect(key).toHaveLength(32);
      const body = Buffer.from(v.body, 'utf8');
      if (v.timestamp !== undefined) {
        expect(Buffer.from(v2RequestBytes(v.timestamp, v.nonce!, body)).toString('utf8')).toBe(v.string_to_sign);
        expect(signV2Request(key, v.timestamp, v.nonce!, body)).toBe(v.hmac);
        expect(await v2Key(v.session_key).hex(v2RequestBytes(v.timestamp, v.nonce!, body))).toBe(v.hmac);
        // The verifier refuses the same MAC over any other timestamp.
        expect(macMatches(signV2Request(key, String(Number(v.timestamp) + 1), v.nonce!, body), v.hmac)).toBe(false);
      } else {
        expect(Buffer.from(v2ResponseBytes(v.request_nonce!, body)).toString('utf8')).toBe(v.string_to_sign);
        expect(signV2Response(key, v.request_nonce!, body)).toBe(v.hmac);
        expect(await v2Key(v.session_key).hex(v2ResponseBytes(v.request_nonce!, body))).toBe(v.hmac);
      }
      expect(macMatches(v.hmac, v.hmac)).toBe(true);
      expect(macMatches(v.hmac, v.hmac.toUpperCase())).toBe(false);
      expect(macMatches(v.hmac, v.hmac.slice(1))).toBe(false);
      expect(macMatches(v.hmac, undefined)).toBe(false);
    });
  }
});
