/**
 * Every vector of test/fixtures/vectors.json (the project's own copy of the protocol's test
 * vectors, docs/protocol.md §8) against the server's signer and verifier (node:crypto) and the
 * client's (WebCrypto).
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { macMatches, signV1, signV2Request, signV2Response, signV2Retry, decodeSessionKey } from '../src/core/signing.ts';
import { v1Key, v2Key, v2RequestBytes, v2ResponseBytes, v2RetryBytes } from '../src/client/signing.ts';
import { ROOT } from './helpers/server.ts';

interface V1Vector { name: string; user_id: string; body: string; hmac: string }
interface V2Vector { name: string; session_key: string; timestamp?: string; nonce?: string; request_nonce?: string; body: string; string_to_sign: string; hmac: string }
interface V2RetryVector { name: string; session_key: string; timestamp: string; nonce: string; retry_timestamp: string; retry_of: string; body: string; string_to_sign: string; hmac: string }
interface Vectors { v1: V1Vector[]; v2: V2Vector[]; v2_retry: V2RetryVector[] }

const FIXTURE = resolve(ROOT, 'test/fixtures/vectors.json');
const vectors = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Vectors;
const enc = new TextEncoder();
const utf8 = (bytes: Uint8Array) => Buffer.from(bytes).toString('utf8');

describe('vectors.json', () => {
  it('holds vectors of both schemes, a GET target and a retry', () => {
    expect(vectors.v1.length).toBeGreaterThanOrEqual(3);
    expect(vectors.v2.length).toBeGreaterThanOrEqual(5);
    expect(vectors.v2.some((v) => v.body.startsWith('/jobs/'))).toBe(true);
    expect(vectors.v2_retry.length).toBeGreaterThanOrEqual(1);
  });

  for (const v of vectors.v1) {
    it(`v1: ${v.name}`, async () => {
      expect(signV1(v.user_id, Buffer.from(v.body, 'utf8'))).toBe(v.hmac);
      expect(macMatches(signV1(v.user_id, Buffer.from(v.body)), v.hmac)).toBe(true);
      expect(macMatches(signV1(v.user_id, Buffer.from(`${v.body} `)), v.hmac)).toBe(false);
      expect(await v1Key(v.user_id).hex(enc.encode(v.body))).toBe(v.hmac);
    });
  }

  // A GET vector carries the request target as its body and goes through the same request signer.
  for (const v of vectors.v2) {
    it(`v2: ${v.name}`, async () => {
      const key = decodeSessionKey(v.session_key)!;
      expect(key).toHaveLength(32);
      const body = Buffer.from(v.body, 'utf8');
      if (v.timestamp !== undefined) {
        expect(utf8(v2RequestBytes(v.timestamp, v.nonce!, body))).toBe(v.string_to_sign);
        expect(signV2Request(key, v.timestamp, v.nonce!, body)).toBe(v.hmac);
        expect(await v2Key(v.session_key).hex(v2RequestBytes(v.timestamp, v.nonce!, body))).toBe(v.hmac);
        // The verifier refuses the same MAC over any other timestamp.
        expect(macMatches(signV2Request(key, String(Number(v.timestamp) + 1), v.nonce!, body), v.hmac)).toBe(false);
      } else {
        expect(utf8(v2ResponseBytes(v.request_nonce!, body))).toBe(v.string_to_sign);
        expect(signV2Response(key, v.request_nonce!, body)).toBe(v.hmac);
        expect(await v2Key(v.session_key).hex(v2ResponseBytes(v.request_nonce!, body))).toBe(v.hmac);
      }
      expect(macMatches(v.hmac, v.hmac)).toBe(true);
      expect(macMatches(v.hmac, v.hmac.toUpperCase())).toBe(false);
      expect(macMatches(v.hmac, v.hmac.slice(1))).toBe(false);
      expect(macMatches(v.hmac, undefined)).toBe(false);
    });
  }

  it('a GET signature for one job does not sign another', () => {
    const v = vectors.v2.find((x) => x.body.startsWith('/jobs/'))!;
    const key = decodeSessionKey(v.session_key)!;
    const other = `${v.body.slice(0, -1)}${v.body.endsWith('0') ? '1' : '0'}`;
    expect(macMatches(signV2Request(key, v.timestamp!, v.nonce!, Buffer.from(other)), v.hmac)).toBe(false);
  });

  for (const v of vectors.v2_retry) {
    it(`v2 retry: ${v.name}`, async () => {
      const key = decodeSessionKey(v.session_key)!;
      const body = Buffer.from(v.body, 'utf8');
      const bytes = v2RetryBytes(v.timestamp, v.nonce, v.retry_timestamp, v.retry_of, body);
      expect(utf8(bytes)).toBe(v.string_to_sign);
      expect(signV2Retry(key, v.timestamp, v.nonce, v.retry_timestamp, v.retry_of, body)).toBe(v.hmac);
      expect(await v2Key(v.session_key).hex(bytes)).toBe(v.hmac);
      // Naming another first attempt, or signing it as a plain request, gives another MAC.
      expect(signV2Retry(key, v.timestamp, v.nonce, String(Number(v.retry_timestamp) + 1), v.retry_of, body)).not.toBe(v.hmac);
      expect(signV2Retry(key, v.timestamp, v.nonce, v.retry_timestamp, `${v.retry_of}x`, body)).not.toBe(v.hmac);
      expect(signV2Request(key, v.timestamp, v.nonce, body)).not.toBe(v.hmac);
    });
  }
});

// The protocol's own copy lives beside the repository only in the project's workspace, never in a
// user's clone: compare with it when it is there, so the fixture cannot drift from the protocol.
const SHARED = resolve(ROOT, '../shared/protocol/vectors.json');
const sharedExists = existsSync(SHARED);
if (!sharedExists) console.log(`signing.test.ts: skipping the comparison with ${SHARED}: that file is not beside this clone (the fixture is the project's own copy)`);

describe('the fixture and the protocol', () => {
  it.skipIf(!sharedExists)('test/fixtures/vectors.json equals ../shared/protocol/vectors.json', () => {
    expect(vectors).toEqual(JSON.parse(readFileSync(SHARED, 'utf8')));
  });
});

// The v2 signer hashes its pads and message in one shot (src/core/signing.ts hmacSha256Hex), not
// through createHmac: the same MAC must come out for any key and body, on both sides of the
// length where it falls back to createHmac, and with the scratch buffers reused between keys.
describe('the one-shot v2 MAC', () => {
  const reference = (key: Buffer, pieces: (string | Buffer)[]) => {
    const hmac = createHmac('sha256', key);
    for (const piece of pieces) hmac.update(piece);
    return hmac.digest('hex');
  };
  const keys = fc.oneof(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 0, maxLength: 200 })).map((k) => Buffer.from(k));
  const bodies = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    // 16 KiB is the one-shot limit, pad and prefix included: around it, and well past it.
    fc.integer({ min: 16 * 1024 - 120, max: 16 * 1024 + 20 }).map((n) => new Uint8Array(n).fill(7)),
    fc.integer({ min: 20_000, max: 70_000 }).map((n) => new Uint8Array(n).fill(9)),
  ).map((b) => Buffer.from(b));

  it('equals createHmac for requests and responses, any key, any body', () => {
    fc.assert(
      fc.property(keys, keys, fc.string({ maxLength: 20 }), fc.string({ unit: 'binary', maxLength: 64 }), bodies, fc.string({ unit: 'binary', maxLength: 400 }), (k1, k2, timestamp, nonce, body, answer) => {
        expect(signV2Request(k1, timestamp, nonce, body)).toBe(reference(k1, ['simpleapi-v2\n', timestamp, '\n', nonce, '\n', body]));
        expect(signV2Response(k2, nonce, answer)).toBe(reference(k2, ['simpleapi-v2-response\n', nonce, '\n', answer]));
        expect(signV2Response(k1, nonce, body)).toBe(reference(k1, ['simpleapi-v2-response\n', nonce, '\n', body]));
      }),
      { numRuns: 300 },
    );
  });

  it('takes any byte view as the body, as createHmac did (JavaScript callers pass TextEncoder output)', () => {
    const key = Buffer.alloc(32, 3);
    const bytes = new TextEncoder().encode('{"method":"echo"}');
    const want = reference(key, ['simpleapi-v2\n', '1', '\n', 'n', '\n', Buffer.from(bytes)]);
    expect(signV2Request(key, '1', 'n', bytes as Buffer)).toBe(want);
    expect(signV2Request(key, '1', 'n', new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength) as unknown as Buffer)).toBe(want);
    const inside = new Uint8Array(bytes.length + 8);
    inside.set(bytes, 4);
    expect(signV2Request(key, '1', 'n', inside.subarray(4, 4 + bytes.length) as Buffer)).toBe(want);
  });

  it('gives a key whose bytes changed in place the MAC of its new bytes', () => {
    // A key Buffer is never changed after its session is made, but a caller's could be: pads kept
    // per key object would then sign with the old key.
    const key = Buffer.alloc(32, 1);
    const before = signV2Request(key, '1', 'n', Buffer.from('body'));
    key.fill(2);
    expect(signV2Request(key, '1', 'n', Buffer.from('body'))).toBe(reference(key, ['simpleapi-v2\n', '1', '\n', 'n', '\n', Buffer.from('body')]));
    expect(before).not.toBe(signV2Request(key, '1', 'n', Buffer.from('body')));
  });
});
