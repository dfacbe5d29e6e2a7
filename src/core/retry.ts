/**
 * PROTOCOL.md §6 "v2 retries": what a verified retry comes to, and keeping each signed call's
 * outcome for the retries that may follow it. The outcome lives in the store beside the call's
 * nonce (the nonce's own write said "running"), so every instance on the database sees it.
 */
import type { Logger } from 'pino';
import type { SignedCall } from './auth.ts';
import { rpcError } from './envelope.ts';
import { ApiError, simpleErrorBody } from './errors.ts';
import { macMatches } from './signing.ts';
import type { Form } from './envelope.ts';
import type { CoreResponse } from './request.ts';
import type { CallRecord, KeptOutcome, Store } from '../store/types.ts';

export interface RetrySettings {
  /** Seconds a v2 timestamp may differ from the server clock (the signing window). */
  window: number;
  keepOutcomes: boolean;
  /** Largest answer body in bytes that is kept; a retry of a larger one is "outcome not kept". */
  maxOutcome: number;
}

/** Seconds a retry is asked to wait while the first attempt runs. */
export const RUNNING_RETRY_AFTER = 1;

/** What a retry comes to: the kept answer, a Conflict, or a run as the first attempt (whose nonce it now holds). */
export type RetryDecision = { kind: 'replay'; outcome: KeptOutcome } | { kind: 'refuse'; error: ApiError } | { kind: 'run' };

const conflict = (reason: string, message: string, retryAfter?: number) =>
  new ApiError('Conflict', message, retryAfter === undefined ? { details: [{ reason }] } : { details: [{ reason }], retryAfter });

const notKept = () => conflict('outcome not kept', 'The outcome of the first attempt was not kept, so whether it ran cannot be told; nothing was run');

/** §6's cases 1 and 2 (and "answered like case 3") for a first attempt the store has a record of. */
function fromRecord(record: CallRecord, call: SignedCall & { retryOf: NonNullable<SignedCall['retryOf']> }): RetryDecision {
  switch (record.state) {
    case 'unkept':
      return { kind: 'refuse', error: notKept() };
    case 'running':
      return { kind: 'refuse', error: conflict('first attempt still running', 'The first attempt is still running: retry again after Retry-After', RUNNING_RETRY_AFTER) };
    case 'done':
      // The first attempt's MAC covers its timestamp and body: equal MACs, the same request.
      if (macMatches(record.claim.mac, call.mac)) return { kind: 'replay', outcome: record.outcome };
      return { kind: 'refuse', error: conflict('retry differs from the first attempt', 'This retry does not repeat the request it names (another body or x-retry-timestamp); nothing was run') };
  }
}

/**
 * Decides a verified retry, in §6's order: the first attempt finished (its answer, or Conflict
 * when this is another request), is running (Conflict with Retry-After), is out of the window
 * (Conflict, never a run), or never arrived (run now, its nonce claimed so a late original is a
 * replay). The claim is an insert that one request wins, so of a late original and a retry
 * racing, exactly one runs.
 *
 * @example const decision = await decideRetry(store, session.sessionId, call, settings, nowSeconds())
 */
export async function decideRetry(store: Store, sessionId: string, call: SignedCall & { retryOf: NonNullable<SignedCall['retryOf']> }, settings: RetrySettings, now: number): Promise<RetryDecision> {
  const first = call.retryOf;
  const found = await store.findCall(sessionId, first.nonce, now);
  if (found !== null) return fromRecord(found, call);
  if (Math.abs(Number(first.timestamp) - now) > settings.window) return { kind: 'refuse', error: notKept() };
  const claim = settings.keepOutcomes ? { mac: call.mac } : undefined;
  if (await store.rememberNonce(sessionId, first.nonce, Number(first.timestamp) + settings.window + 1, now, claim)) return { kind: 'run' };
  // The first attempt arrived between the look-up and the claim.
  const arrived = await store.findCall(sessionId, first.nonce, now);
  return arrived === null ? { kind: 'refuse', error: notKept() } : fromRecord(arrived, call);
}

/** A retry's Conflict: about the whole HTTP request, so 409 in both forms (JSON-RPC with id null). */
export function conflictReply(error: ApiError, form: Form): { status: number; body: unknown; retryAfter?: number } {
  const body = form === 'simple' ? simpleErrorBody(error) : rpcError(error, null);
  return error.retryAfter === undefined ? { status: error.status, body } : { status: error.status, body, retryAfter: error.retryAfter };
}

/** The first attempt's answer again, as it was sent, with `x-retried: 1`; the caller signs it over the retry's nonce. */
export function replayResponse(outcome: KeptOutcome, requestId: string, label: string): CoreResponse {
  const headers: Record<string, string> = { 'x-request-id': requestId, 'x-retried': '1' };
  if (outcome.retryAfter !== undefined) headers['retry-after'] = String(outcome.retryAfter);
  if (outcome.location !== undefined) headers.location = outcome.location;
  if (outcome.body === '') return { status: outcome.status, headers, label };
  headers['content-type'] = 'application/json; charset=utf-8';
  return { status: outcome.status, headers, body: outcome.body, label };
}

/**
 * What of an answer is kept: null for what a retry must not or cannot be given again (a stream,
 * a raw method's own answer, a new session's key, a body past `maxOutcome`).
 */
export function outcomeOf(response: CoreResponse, issuedSession: boolean, maxOutcome: number): KeptOutcome | null {
  if (response.taken === true || response.stream !== undefined || issuedSession) return null;
  const body = response.body === undefined ? '' : typeof response.body === 'string' ? response.body : response.body.toString('utf8');
  // A UTF-8 byte is at most 3 per UTF-16 unit: most bodies are decided without counting.
  if (body.length * 3 > maxOutcome && Buffer.byteLength(body) > maxOutcome) return null;
  const outcome: { status: number; body: string; location?: string; retryAfter?: number } = { status: response.status, body };
  const location = response.headers.location;
  if (location !== undefined) outcome.location = location;
  const retryAfter = response.headers['retry-after'];
  if (retryAfter !== undefined) outcome.retryAfter = Number(retryAfter);
  return outcome;
}

interface PendingOutcome {
  store: Store;
  sessionId: string;
  nonce: string;
  outcome: KeptOutcome | null;
  log: Logger;
  requestId: string;
}

let pending: PendingOutcome[] = [];

function flush(): void {
  const batch = pending;
  pending = [];
  for (const p of batch) {
    p.store.keepOutcome(p.sessionId, p.nonce, p.outcome).catch((err: unknown) => {
      p.log.warn({ reqId: p.requestId, err }, 'the outcome of a signed call could not be kept for its retries');
    });
  }
}

/**
 * Keeps a call's outcome after its answer has gone out (off the answer's path; the answers of one
 * turn of the event loop share one callback); a failure is logged, and the call's retries then
 * hear "still running" until its record expires.
 */
export function keepLater(store: Store, sessionId: string, nonce: string, outcome: KeptOutcome | null, log: Logger, requestId: string): void {
  if (pending.length === 0) setImmediate(flush);
  pending.push({ store, sessionId, nonce, outcome, log, requestId });
}
