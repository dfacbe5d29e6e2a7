// The v2 signature of a POST (docs/protocol.md §6), for the load drivers: a fresh timestamp and
// nonce each call, as a real client sends them. Plain JavaScript, so the drivers run without tsx.
import { createHmac, randomBytes } from 'node:crypto';

/** { timestamp, nonce, mac } for `body` under the session key (raw bytes). */
export function signV2(key, body) {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const nonce = randomBytes(16).toString('base64url');
  const mac = createHmac('sha256', key).update(`simpleapi-v2\n${timestamp}\n${nonce}\n`).update(body).digest('hex');
  return { timestamp, nonce, mac };
}
