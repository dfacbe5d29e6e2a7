/**
 * PROTOCOL.md §6 on WebCrypto, for the client: the same strings to sign as `src/signing.ts`, with
 * no Node-only import, so it runs in browsers as it does in Node 20.
 */

const encoder = new TextEncoder();

function subtle(): SubtleCrypto {
  const c = globalThis.crypto;
  if (c?.subtle === undefined) throw new Error('WebCrypto (crypto.subtle) is not available: use HTTPS or localhost in a browser, Node 20+ elsewhere');
  return c.subtle;
}

export function toHex(bytes: ArrayBuffer | Uint8Array): string {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let out = '';
  for (const b of view) out += b.toString(16).padStart(2, '0');
  return out;
}

export function concatBytes(...parts: (Uint8Array | string)[]): Uint8Array {
  const arrays = parts.map((p) => (typeof p === 'string' ? encoder.encode(p) : p));
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let offset = 0;
  for (const a of arrays) {
    out.set(a, offset);
    offset += a.length;
  }
  return out;
}

export function base64urlToBytes(text: string): Uint8Array {
  const b64 = text.replaceAll('-', '+').replaceAll('_', '/') + '='.repeat((4 - (text.length % 4)) % 4);
  const bin = atob(b64);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

export function bytesToBase64url(bytes: Uint8Array): string {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

/** A fresh v2 nonce: 16 random bytes, base64url (22 characters). */
export function newNonce(): string {
  return bytesToBase64url(globalThis.crypto.getRandomValues(new Uint8Array(16)));
}

/** An HMAC key imported once and reused for every request of a session. */
export class HmacKey {
  readonly #key: Promise<CryptoKey>;

  constructor(raw: Uint8Array, hash: 'SHA-256' | 'SHA-1') {
    this.#key = subtle().importKey('raw', raw as BufferSource, { name: 'HMAC', hash }, false, ['sign']);
  }

  async hex(data: Uint8Array): Promise<string> {
    return toHex(await subtle().sign('HMAC', await this.#key, data as BufferSource));
  }
}

/** v2 request: "simpleapi-v2\n" + timestamp + "\n" + nonce + "\n" + body. */
export function v2RequestBytes(timestamp: string, nonce: string, body: Uint8Array): Uint8Array {
  return concatBytes(`simpleapi-v2\n${timestamp}\n${nonce}\n`, body);
}

/**
 * v2 retry: "simpleapi-v2-retry\n" + timestamp + "\n" + nonce + "\n" + retry timestamp + "\n" +
 * retry-of nonce + "\n" + body, the string a retry of an unanswered request signs.
 */
export function v2RetryBytes(timestamp: string, nonce: string, retryTimestamp: string, retryOf: string, body: Uint8Array): Uint8Array {
  return concatBytes(`simpleapi-v2-retry\n${timestamp}\n${nonce}\n${retryTimestamp}\n${retryOf}\n`, body);
}

/** v2 response: "simpleapi-v2-response\n" + request nonce + "\n" + body. */
export function v2ResponseBytes(requestNonce: string, body: Uint8Array): Uint8Array {
  return concatBytes(`simpleapi-v2-response\n${requestNonce}\n`, body);
}

export function v1Key(userId: string): HmacKey {
  return new HmacKey(encoder.encode(userId), 'SHA-1');
}

export function v2Key(sessionKey: string): HmacKey {
  return new HmacKey(base64urlToBytes(sessionKey), 'SHA-256');
}

/** Compares two hex strings without stopping at the first difference. */
export function sameHex(a: string, b: string | null): boolean {
  if (b === null || a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
