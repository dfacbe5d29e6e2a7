/**
 * Verifying an authenticated request (docs/protocol.md §6) and deciding what signs its answer.
 * Both are values: `authenticate` says who the request is and which key may sign back, and
 * `responseSigner` picks the key from that and from what a create/login issued. Nothing here
 * writes to the request or keeps state between calls.
 */
import { validate as isUuid } from 'uuid';
import { ApiError, toApiError } from './errors.ts';
import type { AuthFailureReason } from './metrics.ts';
import { NONCE_PATTERN, isValidTimestamp, macMatches, signV1, signV2Request, signV2Response, signV2Retry, startV1, startV2Response, type Scheme } from './signing.ts';
import type { CallClaim, SessionRecord, Store } from '../store/types.ts';
import { nowSeconds } from './clock.ts';
import { isThenable } from './thenable.ts';
import type { Verdict } from './rate-limit.ts';

export interface AuthSettings {
  scheme: Scheme;
  /** Seconds a v2 timestamp may differ from the server clock. */
  window: number;
  sessionTtl: number;
  touchFraction: number;
  /**
   * v2: record each signed call's timestamp and body hash with its nonce, so its outcome can be
   * kept for retries (§6 v2 retries). Off, a retry of a call that arrived is "outcome not kept".
   */
  keepOutcomes: boolean;
  /**
   * Step 4's write for a call's first attempt when the rate limiter counts the call with it, in
   * the same round trip (RateLimits.countedClaim, MySQL); absent, the store's rememberNonce.
   */
  countedClaim?: CountedClaim;
}

/** Claims a nonce (`fresh`: never seen) and, with it, counts the call against its user. */
export type CountedClaim = (session: SessionRecord, nonce: string, expires: number, now: number, claim: CallClaim | undefined) => Promise<{ fresh: boolean; verdict?: Verdict }>;

/** A verified v2 POST, as §6's retries need it. */
export interface SignedCall {
  readonly nonce: string;
  readonly timestamp: string;
  /**
   * The v2 MAC of the first attempt: this request's own, or for a retry the one its first attempt
   * carried if it is the same request (over x-retry-timestamp, x-retry-of and this body).
   */
  readonly mac: string;
  /** The first attempt this request retries (`x-retry-of`, `x-retry-timestamp`). */
  readonly retryOf?: { readonly nonce: string; readonly timestamp: string };
}

/** Signs a response; made only for a key the request proved it holds (or just received). */
export interface ResponseSigner {
  /** The `x-hmac` of a whole body. */
  sign(body: string | Buffer): string;
  /** For a body sent in pieces: feed each piece, then take the MAC (sent as a trailer). */
  begin(): { update(piece: string | Buffer): void; digest(): string };
}

export type AuthResult =
  /** No `x-session-id`: only public methods. `nonce` is its well-formed `x-nonce`, else ''. */
  | { readonly kind: 'anonymous'; readonly nonce: string }
  /**
   * `call`: a v2 POST to the endpoint (its nonce claimed in step 4); absent for GET and v1.
   * `verdict`: on the user's rate-limit count, taken with the nonce (AuthSettings.countedClaim).
   */
  | { readonly kind: 'verified'; readonly session: SessionRecord; readonly sign: ResponseSigner; readonly call?: SignedCall; readonly verdict?: Verdict }
  /** `sign` is there when the MAC verified and a later check failed (§6 steps 3 and 4); `reason` is for metrics. */
  | { readonly kind: 'refused'; readonly error: ApiError; readonly reason: AuthFailureReason; readonly sign?: ResponseSigner };

export type Headers = Readonly<Record<string, string | string[] | undefined>>;

/** One clean value of a header; a repeated header (an array) is not one. */
export function headerValue(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  return typeof value === 'string' ? value : undefined;
}

function badSignature(message: string, details?: unknown[]): ApiError {
  return new ApiError('BadSignature', message, details === undefined ? {} : { details });
}

/** A session's key (or v1's user id) and the nonce an answer is signed over. */
class SessionSigner implements ResponseSigner {
  constructor(
    readonly scheme: Scheme,
    readonly session: Pick<SessionRecord, 'key' | 'userId'>,
    readonly nonce: string,
  ) {}

  sign(body: string | Buffer): string {
    return this.scheme === 'v2' ? signV2Response(this.session.key, this.nonce, body) : signV1(this.session.userId, body);
  }

  begin(): { update(piece: string | Buffer): void; digest(): string } {
    const hmac = this.scheme === 'v2' ? startV2Response(this.session.key, this.nonce) : startV1(this.session.userId);
    return { update: (piece) => void hmac.update(piece), digest: () => hmac.digest('hex') };
  }
}

function signerFor(scheme: Scheme, session: Pick<SessionRecord, 'key' | 'userId'>, nonce: string): ResponseSigner {
  return new SessionSigner(scheme, session, nonce);
}

/**
 * §6 in its order: (1) a live session and well-formed headers, (2) the MAC, (3) the timestamp
 * window, (4) a fresh nonce. `signed` is what the client signed: the body of a POST, the request
 * target of any other request. `call` is true for a POST to the endpoint: only there do the
 * retry headers count (§6: GET ignores them) and is the call claimed for its retries. `runs`: the
 * body holds a call that will run, so its rate-limit count may ride on the nonce's claim
 * (AuthSettings.countedClaim); a body that runs nothing is not counted. A request without
 * `x-session-id` is settled without a promise, which keeps public calls cheap.
 *
 * @example const auth = await authenticate(headers, body, store, settings, true); if (auth.kind === 'refused') ...
 */
export function authenticate(headers: Headers, signed: Buffer, store: Store, settings: AuthSettings, call = false, runs = false): AuthResult | Promise<AuthResult> {
  const sessionId = headers['x-session-id'];
  if (sessionId === undefined) {
    // §6: a create/login answer is signed over the request's x-nonce when it sent a well-formed one.
    const nonce = headerValue(headers, 'x-nonce');
    return { kind: 'anonymous', nonce: nonce !== undefined && NONCE_PATTERN.test(nonce) ? nonce : '' };
  }
  return verify(headers, sessionId, signed, store, settings, call, runs);
}

/** §6 step 1 for the retry headers: both or neither, well-formed, and not naming the request itself. */
function retryHeaders(headers: Headers, nonce: string): { nonce: string; timestamp: string } | ApiError | undefined {
  const of = headers['x-retry-of'];
  const timestamp = headers['x-retry-timestamp'];
  if (of === undefined && timestamp === undefined) return undefined;
  if (typeof of !== 'string' || typeof timestamp !== 'string') return badSignature('x-retry-of and x-retry-timestamp go together, once each');
  if (!NONCE_PATTERN.test(of)) return badSignature('x-retry-of must be the first attempt\'s nonce: 16 to 64 characters of [A-Za-z0-9_-]');
  if (!isValidTimestamp(timestamp)) return badSignature('x-retry-timestamp must be Unix seconds');
  if (of === nonce) return badSignature('x-retry-of names this request\'s own nonce: a retry has a fresh one');
  return { nonce: of, timestamp };
}

function refuse(reason: AuthFailureReason, error: ApiError, sign?: ResponseSigner): AuthResult {
  return sign === undefined ? { kind: 'refused', error, reason } : { kind: 'refused', error, reason, sign };
}

/**
 * §6 for a request with `x-session-id`. Without a promise when the store answers at once (the
 * embedded store): a signed call then costs no turn of the microtask queue for its session and
 * nonce. A database's answers are promises, and each step waits for them.
 */
function verify(headers: Headers, sessionId: string | string[], signed: Buffer, store: Store, settings: AuthSettings, call: boolean, runs: boolean): AuthResult | Promise<AuthResult> {
  const now = nowSeconds();
  // Step 1: the session, then the headers' form. Nothing up to step 2 is signed.
  if (typeof sessionId !== 'string' || !isUuid(sessionId)) return refuse('bad_session_id', new ApiError('Unauthenticated', 'x-session-id is not a session id'));
  const found = store.getSession(sessionId, now);
  if (isThenable(found)) return Promise.resolve(found).then((session) => verifySession(headers, session, signed, store, settings, call, runs, now));
  return verifySession(headers, found, signed, store, settings, call, runs, now);
}

function verifySession(headers: Headers, session: SessionRecord | null, signed: Buffer, store: Store, settings: AuthSettings, call: boolean, runs: boolean, now: number): AuthResult | Promise<AuthResult> {
  if (session === null) return refuse('unknown_session', new ApiError('Unauthenticated', 'The session is unknown or has expired'));
  const mac = headerValue(headers, 'x-hmac');
  if (mac === undefined) return refuse('missing_mac', badSignature('x-hmac is missing'));
  let expected: string;
  let timestamp = '';
  let nonce = '';
  let retryOf: { nonce: string; timestamp: string } | undefined;
  if (settings.scheme === 'v2') {
    timestamp = headerValue(headers, 'x-timestamp') ?? '';
    nonce = headerValue(headers, 'x-nonce') ?? '';
    if (!isValidTimestamp(timestamp)) return refuse('bad_timestamp', badSignature('x-timestamp must be Unix seconds'));
    if (!NONCE_PATTERN.test(nonce)) return refuse('bad_nonce', badSignature('x-nonce must be 16 to 64 characters of [A-Za-z0-9_-]'));
    if (call) {
      const retry = retryHeaders(headers, nonce);
      if (retry instanceof ApiError) return refuse('bad_retry', retry);
      retryOf = retry;
    }
    expected = retryOf === undefined ? signV2Request(session.key, timestamp, nonce, signed) : signV2Retry(session.key, timestamp, nonce, retryOf.timestamp, retryOf.nonce, signed);
  } else {
    expected = signV1(session.userId, signed);
  }
  // Step 2: from here on the request proved it holds the key, so every answer is signed.
  if (!macMatches(expected, mac)) return refuse('mac_mismatch', badSignature('x-hmac does not match the request'));
  const sign = signerFor(settings.scheme, session, nonce);
  if (settings.scheme !== 'v2') return renewed(session, sign, undefined, store, settings, now);
  // Step 3, with the server's clock for the client to correct its own from (a signed answer).
  if (Math.abs(Number(timestamp) - now) > settings.window) {
    return refuse('clock_skew', badSignature(`x-timestamp is more than ${settings.window} s from the server clock`, [{ server_time: now }]), sign);
  }
  // Step 4. A nonce lives as long as its timestamp could be accepted; past that step 3 refuses it.
  // A call's record also says it is running, in the same write, for its retries to find.
  let claim: CallClaim | undefined;
  let signedCall: SignedCall | undefined;
  if (call) {
    if (retryOf === undefined) {
      signedCall = { nonce, timestamp, mac: expected };
      if (settings.keepOutcomes) claim = { mac: expected };
    } else {
      signedCall = { nonce, timestamp, mac: signV2Request(session.key, retryOf.timestamp, retryOf.nonce, signed), retryOf };
      if (settings.keepOutcomes) claim = { mac: '', retry: true };
    }
  }
  const expires = Number(timestamp) + settings.window + 1;
  // A retry is not counted with its claim: it may be answered from its first attempt's outcome.
  if (runs && signedCall !== undefined && signedCall.retryOf === undefined && settings.countedClaim !== undefined) {
    return settings.countedClaim(session, nonce, expires, now, claim).then(
      ({ fresh, verdict }) => claimed(fresh, session, sign, signedCall, store, settings, now, verdict),
      (err: unknown) => storeFailed(err, sign),
    );
  }
  let fresh: boolean | Promise<boolean>;
  try {
    fresh = store.rememberNonce(session.sessionId, nonce, expires, now, claim);
  } catch (err) {
    return storeFailed(err, sign);
  }
  if (!isThenable(fresh)) return claimed(fresh, session, sign, signedCall, store, settings, now);
  return Promise.resolve(fresh).then(
    (f) => claimed(f, session, sign, signedCall, store, settings, now),
    (err: unknown) => storeFailed(err, sign),
  );
}

/** Step 4's answer: a nonce seen before is refused (signed); a fresh one verifies the request. */
function claimed(fresh: boolean, session: SessionRecord, sign: ResponseSigner, signedCall: SignedCall | undefined, store: Store, settings: AuthSettings, now: number, verdict?: Verdict): AuthResult | Promise<AuthResult> {
  return fresh ? renewed(session, sign, signedCall, store, settings, now, verdict) : refuse('nonce_replayed', badSignature('x-nonce was already used'), sign);
}

/**
 * The store failed, or refused one more nonce of this user, after the MAC verified: the answer is
 * signed like every other from here on.
 */
function storeFailed(err: unknown, sign: ResponseSigner): AuthResult {
  const error = toApiError(err);
  return refuse(error.code === 'TooManyRequests' ? 'too_many_nonces' : 'store_unavailable', error, sign);
}

/** Verified: the session's expiry moved on when enough of it has passed (a write now and then). */
function renewed(session: SessionRecord, sign: ResponseSigner, signedCall: SignedCall | undefined, store: Store, settings: AuthSettings, now: number, verdict?: Verdict): AuthResult | Promise<AuthResult> {
  let result: AuthResult = signedCall === undefined ? { kind: 'verified', session, sign } : { kind: 'verified', session, sign, call: signedCall };
  if (verdict !== undefined) result = { ...result, verdict };
  const expires = now + settings.sessionTtl;
  if (expires - session.expires < settings.touchFraction * settings.sessionTtl) return result;
  // Renewal is best effort: the nonce is claimed, and failing the call now would leave its
  // retries a "still running" record for nothing. The next signed call renews it.
  return Promise.resolve()
    .then(() => store.touchSession(session.sessionId, expires))
    .then(
      () => {
        session.expires = expires;
        return result;
      },
      () => result, // left as it was
    );
}

/** A session a create or login just started; its key may sign the answer (§6). */
export interface IssuedSession {
  readonly key: Buffer;
  readonly userId: string;
}

/**
 * Which key signs the response, from what authentication found and what the call issued: the
 * verified session's (errors included, §6 steps 3-4); else, on a request without a session, the
 * key a create/login just issued, over the request's nonce; else none.
 */
export function responseSigner(auth: AuthResult, issued: IssuedSession | undefined, scheme: Scheme): ResponseSigner | undefined {
  if (auth.kind === 'verified' || auth.kind === 'refused') return auth.sign;
  return issued === undefined ? undefined : signerFor(scheme, issued, auth.nonce);
}
