/**
 * Verifying an authenticated request (PROTOCOL.md §6) before any method runs: the session must
 * exist and the signature must verify, else 401, whatever the method.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { validate as isUuid } from 'uuid';
import { ApiError } from './errors.ts';
import type { RequestScope } from '../scope.ts';
import { NONCE_PATTERN, isValidTimestamp, macMatches, signV1, signV2Request } from './signing.ts';
import type { Store } from '../store/types.ts';
import { nowSeconds } from './clock.ts';

export interface AuthSettings {
  window: number;
  sessionTtl: number;
  touchFraction: number;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  // A repeated header arrives as an array (or joined); either way it is not one clean value.
  return typeof value === 'string' ? value : undefined;
}

function badSignature(message: string, details?: unknown[]): ApiError {
  return new ApiError('BadSignature', message, details === undefined ? {} : { details });
}

/**
 * Verifies the request's session and signature and records it on `scope`; throws the 401 to
 * answer otherwise. A request without `x-session-id` is settled at once, with no promise (the
 * hot path of public methods): undefined is returned then.
 */
export function authenticate(scope: RequestScope, headers: IncomingHttpHeaders, body: Buffer, store: Store, settings: AuthSettings): Promise<void> | undefined {
  const sessionId = headers['x-session-id'];
  if (sessionId === undefined) {
    // §6: a create/login response is signed over the request's x-nonce when it sent one.
    const nonce = header(headers, 'x-nonce');
    if (nonce !== undefined && NONCE_PATTERN.test(nonce)) scope.nonce = nonce;
    return undefined;
  }
  return verifySession(scope, headers, sessionId, body, store, settings);
}

async function verifySession(
  scope: RequestScope,
  headers: IncomingHttpHeaders,
  sessionId: string | string[],
  body: Buffer,
  store: Store,
  settings: AuthSettings,
): Promise<void> {
  if (typeof sessionId !== 'string' || !isUuid(sessionId)) throw new ApiError('Unauthenticated', 'x-session-id is not a session id');
  const mac = header(headers, 'x-hmac');
  const now = nowSeconds();
  let timestamp = '';
  if (scope.scheme === 'v2') {
    timestamp = header(headers, 'x-timestamp') ?? '';
    const nonce = header(headers, 'x-nonce');
    if (mac === undefined) throw badSignature('x-hmac is missing');
    if (!isValidTimestamp(timestamp)) throw badSignature('x-timestamp must be Unix seconds', [{ server_time: now }]);
    if (Math.abs(Number(timestamp) - now) > settings.window) {
      throw badSignature(`x-timestamp is more than ${settings.window} s from the server clock`, [{ server_time: now }]);
    }
    if (nonce === undefined || !NONCE_PATTERN.test(nonce)) throw badSignature('x-nonce must be 16 to 64 characters of [A-Za-z0-9_-]');
    scope.nonce = nonce;
  } else if (mac === undefined) {
    throw badSignature('x-hmac is missing');
  }

  const session = await store.getSession(sessionId, now);
  if (session === null) throw new ApiError('Unauthenticated', 'The session is unknown or has expired');
  scope.useSessionKey(session);
  const expected = scope.scheme === 'v2' ? signV2Request(session.key, timestamp, scope.nonce, body) : signV1(session.userId, body);
  if (!macMatches(expected, mac)) throw badSignature('x-hmac does not match the request');
  if (scope.scheme === 'v2') {
    // A nonce lives as long as a timestamp could be accepted: past that, the window refuses it anyway.
    const fresh = await store.rememberNonce(session.sessionId, scope.nonce, Number(timestamp) + settings.window + 1, now);
    if (!fresh) throw badSignature('x-nonce was already used');
  }
  scope.session = session;

  const expires = now + settings.sessionTtl;
  if (expires - session.expires >= settings.touchFraction * settings.sessionTtl) {
    await store.touchSession(session.sessionId, expires);
  }
  session.expires = Math.max(session.expires, expires);
}
