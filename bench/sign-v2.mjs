// The benches' signed calls: the payload they echo, the v2 signature of a POST (docs/protocol.md
// §6) with a fresh timestamp and nonce each call, as a real client sends them, and the session to
// sign in. Plain JavaScript, so the drivers (and bench/ab.mjs) run without tsx.
import { createHmac, randomBytes } from 'node:crypto';

export const PAYLOAD = { message: 'hello world, this is a benchmark payload', n: 12345, list: [1, 2, 3, 4, 5], nested: { a: true, b: null, c: 'xyzxyzxyz' } };
/** The signed call every signed row makes. */
export const SIGNED_BODY = JSON.stringify({ method: 'secure_echo', parameters: PAYLOAD });

/** A new account and its session on the server at `url`: { session_id, session_key }. */
export async function createSession(url, userId) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ method: 'account.create', parameters: { user_id: userId, password: 'bench-password' } }),
  });
  if (res.status !== 200) throw new Error(`account.create: ${res.status} ${await res.text()}`);
  return res.json();
}

/** { timestamp, nonce, mac } for `body` under the session key (raw bytes). */
export function signV2(key, body) {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const nonce = randomBytes(16).toString('base64url');
  const mac = createHmac('sha256', key).update(`simpleapi-v2\n${timestamp}\n${nonce}\n`).update(body).digest('hex');
  return { timestamp, nonce, mac };
}
