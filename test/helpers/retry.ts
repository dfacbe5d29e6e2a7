/**
 * Signed calls and their retries by hand, from PROTOCOL.md §6 ("v2 retries"), independent of the
 * project's client: the tests choose every header.
 */
import { createHmac } from 'node:crypto';
import { jsonOrUndefined } from './server.ts';
import { freshNonce, nowSeconds, type Grant } from './signed.ts';

export interface Attempt {
  nonce: string;
  timestamp: string;
}

export interface RetryPostOptions {
  nonce?: string;
  timestamp?: string;
  /** Makes it a retry of this first attempt (x-retry-of, x-retry-timestamp, the retry string to sign). */
  retryOf?: Attempt;
  /** Headers set as given, after the computed ones (to break them). */
  headers?: Record<string, string | undefined>;
  /** Sign the plain v2 string even with retry headers. */
  signPlain?: boolean;
  signal?: AbortSignal;
}

export interface SignedAnswer {
  status: number;
  headers: Headers;
  text: string;
  json: any;
  nonce: string;
  timestamp: string;
  /** The answer's x-hmac verifies over this request's nonce. */
  signed: boolean;
  /** `x-retried: 1`: the kept outcome of the first attempt. */
  retried: boolean;
}

export const newAttempt = (): Attempt => ({ nonce: freshNonce(), timestamp: String(nowSeconds()) });

/** POSTs `body` signed with v2 under `grant`; a retry when `retryOf` is given. */
export async function postSigned(url: string, grant: Grant, body: string, o: RetryPostOptions = {}): Promise<SignedAnswer> {
  const key = Buffer.from(grant.session_key, 'base64url');
  const timestamp = o.timestamp ?? String(nowSeconds());
  const nonce = o.nonce ?? freshNonce();
  const toSign =
    o.retryOf === undefined || o.signPlain === true
      ? `simpleapi-v2\n${timestamp}\n${nonce}\n${body}`
      : `simpleapi-v2-retry\n${timestamp}\n${nonce}\n${o.retryOf.timestamp}\n${o.retryOf.nonce}\n${body}`;
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'x-session-id': grant.session_id,
    'x-timestamp': timestamp,
    'x-nonce': nonce,
    'x-hmac': createHmac('sha256', key).update(toSign, 'utf8').digest('hex'),
  };
  if (o.retryOf !== undefined) {
    headers['x-retry-of'] = o.retryOf.nonce;
    headers['x-retry-timestamp'] = o.retryOf.timestamp;
  }
  for (const [name, value] of Object.entries(o.headers ?? {})) {
    if (value === undefined) delete headers[name];
    else headers[name] = value;
  }
  const res = await fetch(url, { method: 'POST', headers, body, ...(o.signal === undefined ? {} : { signal: o.signal }) });
  const text = await res.text();
  const json = jsonOrUndefined(text);
  const expected = createHmac('sha256', key).update(`simpleapi-v2-response\n${nonce}\n${text}`, 'utf8').digest('hex');
  return { status: res.status, headers: res.headers, text, json, nonce, timestamp, signed: res.headers.get('x-hmac') === expected, retried: res.headers.get('x-retried') === '1' };
}

/**
 * Retries `first` until the answer is not "first attempt still running" (the outcome is written
 * just after the first answer goes out); each retry is signed anew.
 */
export async function retryUntilSettled(url: string, grant: Grant, body: string, first: Attempt, limit = 200): Promise<SignedAnswer> {
  for (let i = 0; ; i++) {
    const answer = await postSigned(url, grant, body, { retryOf: first });
    const reason = answer.json?.error?.details?.[0]?.reason ?? answer.json?.error?.data?.details?.[0]?.reason;
    if (answer.status !== 409 || reason !== 'first attempt still running' || i >= limit) return answer;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits until `check` is true, polling; the test's own timeout bounds it. */
export async function until(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 20));
}

export const call = (method: string, parameters: unknown = {}) => JSON.stringify({ method, parameters });
