/**
 * The two signing schemes of docs/protocol.md §6, as pure functions over bytes. The browser client
 * has its own WebCrypto twin in `client/signing.ts`; both are checked against
 * `test/fixtures/vectors.json`.
 */
import { createHmac, hash, timingSafeEqual, type Hmac } from 'node:crypto';

export type Scheme = 'v1' | 'v2';

const V2_REQUEST_PREFIX = Buffer.from('simpleapi-v2\n');
const V2_RESPONSE_PREFIX = Buffer.from('simpleapi-v2-response\n');
const V2_RETRY_PREFIX = Buffer.from('simpleapi-v2-retry\n');
const NEWLINE = Buffer.from('\n');

/** §6 v2: a nonce is 16 to 64 characters of `[A-Za-z0-9_-]`. */
export const NONCE_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;
const TIMESTAMP_PATTERN = /^\d{1,12}$/;

/** SHA-256's block: HMAC pads its key to it (RFC 2104). */
const BLOCK = 64;
/** Largest message (pad included) signed in one shot; a longer one goes through createHmac. */
const ONE_SHOT_MAX = 16 * 1024;
/**
 * Where a one-shot MAC's message is laid out (the inner pad, then the pieces) and the outer
 * hash's input (the outer pad, then the inner digest): buffers of their own, not slices of
 * Buffer's shared pool, and zeroed after each MAC, so no byte of the key's pads outlives it (the
 * inner digest, a hash over the pad and the message, lives on as a string until collected).
 */
const message = Buffer.alloc(ONE_SHOT_MAX);
const outer = Buffer.alloc(BLOCK + 32);

/**
 * Writes the key's inner pad at the start of `message` and its outer pad at the start of `outer`.
 * Made again for every MAC (64 XORs): pads kept per key object would sign with stale bytes if a
 * caller of the exported signers refilled its key Buffer in place.
 */
function writePads(key: Buffer): void {
  const k = key.length > BLOCK ? hash('sha256', key, 'buffer') : key;
  for (let i = 0; i < BLOCK; i++) {
    const b = i < k.length ? k[i]! : 0;
    message[i] = b ^ 0x36;
    outer[i] = b ^ 0x5c;
  }
}

/**
 * Hex HMAC-SHA256 of the pieces one after the other, as two one-shot hashes over the key's pads.
 * Not createHmac: a served v2 call made two Hmac objects, each a native object with its OpenSSL
 * context for the collector to finalise, and their construction alone was 6% of a signed call's
 * profile. Pieces too long for the scratch buffer go through createHmac (same MAC).
 */
function hmacSha256Hex(key: Buffer, pieces: readonly (string | NodeJS.ArrayBufferView)[]): string {
  let length = BLOCK;
  for (const piece of pieces) length += typeof piece === 'string' ? Buffer.byteLength(piece) : piece.byteLength;
  if (length > ONE_SHOT_MAX) {
    const hmac = createHmac('sha256', key);
    for (const piece of pieces) hmac.update(piece);
    return hmac.digest('hex');
  }
  writePads(key);
  let at = BLOCK;
  for (const piece of pieces) {
    if (typeof piece === 'string') at += message.write(piece, at, 'utf8');
    else {
      // Any view (a Uint8Array from TextEncoder, a DataView), as createHmac took them.
      message.set(new Uint8Array(piece.buffer, piece.byteOffset, piece.byteLength), at);
      at += piece.byteLength;
    }
  }
  // The inner digest as a latin1 ('binary') string, written into place: with hash()'s 'buffer'
  // output a MAC cost 1.16x-1.19x this (bench/hmac.ts; Node 20).
  outer.write(hash('sha256', message.subarray(0, at), 'binary'), BLOCK, 'latin1');
  const mac = hash('sha256', outer, 'hex');
  message.fill(0, 0, at);
  outer.fill(0);
  return mac;
}

/**
 * v2 request MAC: hex HMAC-SHA256(K, "simpleapi-v2\n" + timestamp + "\n" + nonce + "\n" + body).
 *
 * @example signV2Request(key, '1795000000', 'Zm9vYmFyYmF6cXV4MTIz', Buffer.from(body))
 */
export function signV2Request(key: Buffer, timestamp: string, nonce: string, body: Buffer): string {
  return hmacSha256Hex(key, [V2_REQUEST_PREFIX, timestamp, NEWLINE, nonce, NEWLINE, body]);
}

/**
 * v2 retry MAC (docs/protocol.md §6, retries): hex HMAC-SHA256(K, "simpleapi-v2-retry\n" +
 * timestamp + "\n" + nonce + "\n" + retry timestamp + "\n" + retry-of nonce + "\n" + body). The
 * distinct prefix keeps a retry's MAC from ever equalling a plain request's.
 *
 * @example signV2Retry(key, '1795000007', 'cmV0cnktbm9uY2UtMDAwMDE', '1795000000', 'Zm9vYmFyYmF6cXV4MTIz', Buffer.from(body))
 */
export function signV2Retry(key: Buffer, timestamp: string, nonce: string, retryTimestamp: string, retryOf: string, body: Buffer): string {
  return createHmac('sha256', key)
    .update(V2_RETRY_PREFIX)
    .update(timestamp)
    .update(NEWLINE)
    .update(nonce)
    .update(NEWLINE)
    .update(retryTimestamp)
    .update(NEWLINE)
    .update(retryOf)
    .update(NEWLINE)
    .update(body)
    .digest('hex');
}

/** v2 response MAC: hex HMAC-SHA256(K, "simpleapi-v2-response\n" + request nonce + "\n" + body). */
export function signV2Response(key: Buffer, requestNonce: string, body: Buffer | string): string {
  return hmacSha256Hex(key, [V2_RESPONSE_PREFIX, requestNonce, NEWLINE, body]);
}

/**
 * The v2 response MAC begun over its prefix and nonce, for a body sent in pieces (a stream):
 * `update` each piece, then `digest('hex')`.
 */
export function startV2Response(key: Buffer, requestNonce: string): Hmac {
  return createHmac('sha256', key).update(V2_RESPONSE_PREFIX).update(requestNonce).update(NEWLINE);
}

/** The v1 MAC begun, for a body sent in pieces. */
export function startV1(userId: string): Hmac {
  return createHmac('sha1', Buffer.from(userId, 'utf8'));
}

/** v1 MAC, request and response alike: hex HMAC-SHA1(UTF-8 user_id, body). */
export function signV1(userId: string, body: Buffer | string): string {
  return createHmac('sha1', Buffer.from(userId, 'utf8')).update(body).digest('hex');
}

/**
 * Constant-time check of a received hex MAC against the expected one. A MAC of the wrong length or
 * with characters other than lowercase hex is simply wrong; the check of the bytes never
 * short-circuits.
 */
export function macMatches(expectedHex: string, receivedHex: string | undefined): boolean {
  if (receivedHex === undefined || receivedHex.length !== expectedHex.length) return false;
  const expected = Buffer.from(expectedHex, 'latin1');
  const received = Buffer.from(receivedHex, 'latin1');
  return received.length === expected.length && timingSafeEqual(expected, received);
}

export function isValidTimestamp(value: string): boolean {
  return TIMESTAMP_PATTERN.test(value);
}

/** Decodes a base64url session key (no padding); null when it is not 32 bytes. */
export function decodeSessionKey(text: string): Buffer | null {
  if (!/^[A-Za-z0-9_-]{43}$/.test(text)) return null;
  const key = Buffer.from(text, 'base64url');
  return key.length === 32 ? key : null;
}
