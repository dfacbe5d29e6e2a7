/**
 * The simpleapi client for Node 20 and browsers: fetch and WebCrypto, no Node-only import on the
 * browser path (a Unix socket, Node only, loads `node:http` on demand).
 *
 * @example
 * const api = new SimpleApiClient({ url: 'http://127.0.0.1:8888/' });
 * await api.login('alice@example.com', 'correct horse');
 * const sum = await api.call('math.sum', [1, 2, 3]);
 */
import { HmacKey, newNonce, sameHex, v1Key, v2Key, v2RequestBytes, v2ResponseBytes, v2RetryBytes } from './signing.ts';

export interface SessionGrant {
  user_id: string;
  session_id: string;
  session_key: string;
  expires: number;
}

/** A map of method name to its params and result types, as `simpleapi types` writes it. */
export type MethodMap = Record<string, { params: unknown; result: unknown }>;
type AnyMethods = Record<string, { params: any; result: any }>;

export interface ClientOptions {
  /** The endpoint, e.g. `http://127.0.0.1:8888/`. */
  url?: string;
  /** Node only: a Unix domain socket the server listens on. */
  socketPath?: string;
  /** The endpoint path on the socket; `/` by default. */
  path?: string;
  /** The server's `hmac.scheme`; v2 by default. */
  scheme?: 'v1' | 'v2';
  fetch?: typeof fetch;
  /** The local clock in milliseconds; `Date.now` by default. */
  clock?: () => number;
  /**
   * How many times a signed call (v2) is sent again after a network error or an unsigned 502,
   * 503 or 504; 2 by default, 0 turns retrying off. A POST is retried as PROTOCOL.md §6 "v2
   * retries" says (`x-retry-of` naming the first attempt), so the method runs at most once; a
   * GET is simply signed anew. Unsigned calls (no session) are never retried.
   */
  retries?: number;
  /** Milliseconds before the first retry, doubled for each further one up to 5 s (with jitter); 250 by default. */
  retryDelayMs?: number;
  /** Milliseconds one attempt may take before it counts as lost (and is retried); no limit by default. */
  attemptTimeoutMs?: number;
  /**
   * Milliseconds a retried call waits, in all, while the server answers that its first attempt
   * is still running (409 with Retry-After), before it gives up with that Conflict; 60,000 by
   * default. Apart from `retries`.
   */
  runningWaitMs?: number;
}

/** How an answer came, for `CallOptions.onAnswer`. */
export interface AnswerInfo {
  status: number;
  /** Requests sent for this answer: 1 unless it was retried. */
  attempts: number;
  /**
   * The server answered from the kept outcome of an earlier attempt (`x-retried: 1`): the method
   * ran once, for that attempt, and not again.
   */
  retried: boolean;
}

/** An error answer from the server, with its §4 code, type and details. */
export class SimpleApiError extends Error {
  override readonly name = 'SimpleApiError';
  constructor(
    readonly code: string,
    message: string,
    readonly type: string,
    readonly details: unknown[] | undefined,
    readonly status: number,
    readonly rpcCode?: number,
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

/** A response whose `x-hmac` is missing or wrong: it did not come from the server unaltered. */
export class SignatureError extends Error {
  override readonly name = 'SignatureError';
}

export interface RawResponse {
  status: number;
  headers: { get(name: string): string | null };
  body: Uint8Array;
  /** The body went to CallOptions.onStream as it arrived; `body` is empty. */
  streamed?: boolean;
}

/** Receives a response that is not JSON (a streaming method's events) chunk by chunk. */
export type StreamHandler = (chunks: AsyncIterable<Uint8Array>, response: { status: number; headers: { get(name: string): string | null } }) => Promise<void>;

export interface BatchEntry {
  method: string;
  params?: unknown;
  /** A notification: run, never answered. */
  notify?: boolean;
}

export type BatchResult = { ok: true; result: unknown } | { ok: false; error: SimpleApiError };

/** What GET /jobs/<id> reports of a background job. */
export interface JobStatus {
  job_id: string;
  method: string;
  state: 'queued' | 'running' | 'done' | 'failed';
  progress: { fraction: number; note: string } | null;
  result?: unknown;
  error?: { code: string; message: string; type: string; details?: unknown[] };
}

export interface CallOptions {
  /** For a background method: poll until the job ends and return its result (throw its error). */
  wait?: boolean;
  /** Called with each state seen while waiting. */
  onProgress?: (status: JobStatus) => void;
  /** Longest wait in milliseconds; 10 minutes by default. */
  timeoutMs?: number;
  /** Called once the call's answer arrived, with how it came (retried or not). */
  onAnswer?: (info: AnswerInfo) => void;
  /**
   * A response that is not JSON (a streaming method's `text/event-stream` or NDJSON) is handed
   * here as it arrives, and call resolves undefined. A signed stream's MAC is an HTTP trailer,
   * which fetch does not expose: streamed events are not verified.
   */
  onStream?: StreamHandler;
}

/** What a background method answers when not waited for. */
export interface JobHandle {
  job_id: string;
  location: string;
}

interface ActiveSession {
  userId: string;
  sessionId: string;
  expires: number;
  key: HmacKey;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class SimpleApiClient<M extends MethodMap = AnyMethods> {
  readonly #options: ClientOptions;
  #session: ActiveSession | null = null;
  /** Seconds to add to the local clock; learnt once from a signed BadSignature's server_time. */
  #clockOffset = 0;
  #clockCorrected = false;

  constructor(options: ClientOptions) {
    if (options.url === undefined && options.socketPath === undefined) throw new TypeError('give url or socketPath');
    this.#options = { scheme: 'v2', path: '/', ...options };
  }

  get session(): { userId: string; sessionId: string; expires: number } | null {
    const s = this.#session;
    return s === null ? null : { userId: s.userId, sessionId: s.sessionId, expires: s.expires };
  }

  #now(): number {
    return (this.#options.clock ?? Date.now)();
  }

  get clockOffset(): number {
    return this.#clockOffset;
  }

  async create(userId: string, password: string): Promise<SessionGrant> {
    return this.#startSession('account.create', userId, password);
  }

  async login(userId: string, password: string): Promise<SessionGrant> {
    return this.#startSession('account.login', userId, password);
  }

  /** Uses a session obtained elsewhere (e.g. kept from an earlier login). */
  useSession(grant: SessionGrant): void {
    this.#session = {
      userId: grant.user_id,
      sessionId: grant.session_id,
      expires: grant.expires,
      key: this.#options.scheme === 'v2' ? v2Key(grant.session_key) : v1Key(grant.user_id),
    };
  }

  async logout(): Promise<void> {
    await this.call('account.logout', {} as never);
    this.#session = null;
  }

  /**
   * Calls a method in the simple envelope; throws SimpleApiError on an error answer. A background
   * method answers 202: with `{ wait: true }` the client polls its job (backing off from 100 ms
   * to 2 s) and returns the result; otherwise it returns the job handle.
   */
  async call<K extends keyof M & string>(method: K, params?: M[K]['params'], options: CallOptions = {}): Promise<M[K]['result']> {
    const body = JSON.stringify({ method, parameters: params === undefined ? {} : params });
    const { response, value } = await this.#send(body, undefined, options.onAnswer, options.onStream);
    if (response.streamed === true) return undefined as M[K]['result'];
    if (response.status === 202) {
      const handle: JobHandle = { job_id: (value as { job_id: string }).job_id, location: response.headers.get('location') ?? `/jobs/${(value as { job_id: string }).job_id}` };
      return (options.wait ? await this.waitForJob(handle, options) : handle) as M[K]['result'];
    }
    if (response.status >= 200 && response.status < 300) return value as M[K]['result'];
    throw errorFromSimple(value, response);
  }

  /** The state of a background job (signed when this client has a session). */
  async job(handle: JobHandle | string): Promise<JobStatus> {
    const location = typeof handle === 'string' ? `/jobs/${handle}` : handle.location;
    const { response, value } = await this.#send('', { method: 'GET', path: location });
    if (response.status === 200 || response.status === 202) return value as JobStatus;
    throw errorFromSimple(value, response);
  }

  /** Polls a job until it is done (its result) or failed (its error, thrown). */
  async waitForJob(handle: JobHandle | string, options: CallOptions = {}): Promise<unknown> {
    const deadline = Date.now() + (options.timeoutMs ?? 600_000);
    let delay = 100;
    for (;;) {
      const status = await this.job(handle);
      options.onProgress?.(status);
      if (status.state === 'done') return status.result;
      if (status.state === 'failed') {
        const e = status.error ?? { code: 'InternalError', message: 'The job failed', type: 'server' };
        throw new SimpleApiError(e.code, e.message, e.type, e.details, 200);
      }
      if (Date.now() + delay > deadline) throw new SimpleApiError('Timeout', 'Gave up waiting for the job', 'client', undefined, 0);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(2000, Math.round(delay * 1.5));
    }
  }

  /** Calls several methods in one JSON-RPC batch; results come back in the order asked. */
  async batch(entries: readonly BatchEntry[], options: Pick<CallOptions, 'onAnswer'> = {}): Promise<(BatchResult | undefined)[]> {
    const requests = entries.map((e, i) => ({ jsonrpc: '2.0', method: e.method, params: e.params ?? {}, ...(e.notify ? {} : { id: i }) }));
    const { response, value } = await this.#send(JSON.stringify(requests), undefined, options.onAnswer);
    if (response.status === 204) return entries.map(() => undefined);
    if (!Array.isArray(value)) throw errorFromRpc(value, response);
    const byId = new Map<unknown, { id: unknown; result?: unknown; error?: unknown }>(value.map((r: { id: unknown }) => [r.id, r]));
    return entries.map((e, i) => {
      if (e.notify) return undefined;
      const r = byId.get(i);
      if (r === undefined) return { ok: false, error: new SimpleApiError('InternalError', 'No answer for this entry', 'server', undefined, response.status) };
      return 'error' in r ? { ok: false, error: errorFromRpc(r, response) } : { ok: true, result: r.result };
    });
  }

  async #startSession(method: string, userId: string, password: string): Promise<SessionGrant> {
    const nonce = newNonce();
    const body = JSON.stringify({ method, parameters: { user_id: userId, password } });
    const response = await this.#transport(encoder.encode(body), { 'x-nonce': nonce });
    const value = parseJson(response);
    if (response.status !== 200) throw errorFromSimple(value, response);
    const grant = value as SessionGrant;
    // The response is signed with the key it carries (v2) or the user_id (v1): check before trusting it.
    const key = this.#options.scheme === 'v2' ? v2Key(grant.session_key) : v1Key(grant.user_id);
    await verify(key, this.#options.scheme === 'v2' ? v2ResponseBytes(nonce, response.body) : response.body, response);
    this.useSession(grant);
    return grant;
  }

  /**
   * Sends a request, signed when there is a session, and checks the answer's signature. A signed
   * v2 request is sent again after a network error or an unsigned 502/503/504 (and while the
   * server says the first attempt still runs); a POST's retries name its first attempt (§6).
   */
  async #send(body: string, target?: { method: 'GET'; path: string }, onAnswer?: (info: AnswerInfo) => void, onStream?: StreamHandler): Promise<{ response: RawResponse; value: unknown }> {
    const bytes = encoder.encode(body);
    const session = this.#session;
    if (session === null) {
      const response = await this.#transport(bytes, {}, target, onStream);
      onAnswer?.({ status: response.status, attempts: 1, retried: false });
      return { response, value: response.status === 204 || response.streamed === true ? undefined : parseJson(response) };
    }
    const v2 = this.#options.scheme === 'v2';
    const retries = v2 ? Math.max(0, this.#options.retries ?? 2) : 0;
    // §6: a POST signs its body; any other request signs its target, exactly as sent.
    const signed = target === undefined ? bytes : encoder.encode(target.path);
    let first: { nonce: string; timestamp: string } | undefined;
    let clockFixed = false;
    let waitedRunning = 0;
    for (let attempt = 1, retried = 0; ; attempt++) {
      const headers: Record<string, string> = { 'x-session-id': session.sessionId };
      let signedOver: (responseBody: Uint8Array) => Uint8Array = (b) => b;
      if (v2) {
        const timestamp = String(Math.floor(this.#now() / 1000) + this.#clockOffset);
        const nonce = newNonce();
        headers['x-timestamp'] = timestamp;
        headers['x-nonce'] = nonce;
        if (first === undefined || target !== undefined) {
          headers['x-hmac'] = await session.key.hex(v2RequestBytes(timestamp, nonce, signed));
          if (target === undefined) first = { nonce, timestamp };
        } else {
          headers['x-retry-of'] = first.nonce;
          headers['x-retry-timestamp'] = first.timestamp;
          headers['x-hmac'] = await session.key.hex(v2RetryBytes(timestamp, nonce, first.timestamp, first.nonce, signed));
        }
        signedOver = (b) => v2ResponseBytes(nonce, b);
      } else {
        headers['x-hmac'] = await session.key.hex(signed);
      }
      let response: RawResponse;
      try {
        response = await this.#transport(bytes, headers, target, onStream);
      } catch (err) {
        // No answer: the method may or may not have run. A retry of a POST names this first attempt.
        if (retried >= retries || !isNetworkError(err)) throw err;
        await sleep(this.#backoff(++retried));
        continue;
      }
      if (response.streamed === true) {
        onAnswer?.({ status: response.status, attempts: attempt, retried: false });
        return { response, value: undefined };
      }
      const isSigned = response.headers.get('x-hmac') !== null;
      if (!isSigned && (response.status === 502 || response.status === 503 || response.status === 504) && retried < retries) {
        // A proxy's answer, or the server's before it verified anything: not the method's.
        await sleep(Math.max(this.#backoff(++retried), Math.min(30, retryAfterOf(response) ?? 0) * 1000));
        continue;
      }
      const value = response.status === 204 ? undefined : parseJson(response);
      // §6: the server signs every answer once the request's MAC verified, and none before. An
      // unsigned 401 is the server refusing the session or the MAC, or someone on the path: either
      // way nothing in it is trusted, least of all a clock.
      if (response.status === 401 && !isSigned) {
        onAnswer?.({ status: response.status, attempts: attempt, retried: false });
        return { response, value };
      }
      await verify(session.key, signedOver(response.body), response);
      const serverTime = serverTimeHint(value);
      if (response.status === 401 && serverTime !== undefined && !clockFixed && !this.#clockCorrected) {
        // A wrong clock is corrected once from the signed hint, then the call is sent again. The
        // refused attempt ran nothing (§6 step 3), so a first attempt starts afresh.
        this.#clockCorrected = true;
        clockFixed = true;
        this.#clockOffset = serverTime - Math.floor(this.#now() / 1000);
        if (headers['x-retry-of'] === undefined) first = undefined;
        continue;
      }
      // The first attempt is still running on the server: waiting for its outcome is not a retry
      // of a lost answer, so it has a budget of its own (giving up here would leave the caller
      // no way to learn the outcome without running the method again).
      if (response.status === 409 && conflictReason(value) === 'first attempt still running' && waitedRunning < (this.#options.runningWaitMs ?? 60_000)) {
        const pause = Math.min(30, retryAfterOf(response) ?? 1) * 1000;
        waitedRunning += pause;
        await sleep(pause);
        continue;
      }
      onAnswer?.({ status: response.status, attempts: attempt, retried: response.headers.get('x-retried') === '1' });
      return { response, value };
    }
  }

  /** Milliseconds before retry `n` (1-based): doubling from retryDelayMs up to 5 s, with jitter. */
  #backoff(n: number): number {
    const base = Math.min(5000, (this.#options.retryDelayMs ?? 250) * 2 ** (n - 1));
    return base / 2 + Math.random() * (base / 2);
  }

  async #transport(body: Uint8Array, headers: Record<string, string>, target?: { method: 'GET'; path: string }, onStream?: StreamHandler): Promise<RawResponse> {
    const allHeaders: Record<string, string> = target === undefined ? { 'content-type': 'application/json', ...headers } : headers;
    const timeout = this.#options.attemptTimeoutMs;
    if (this.#options.socketPath !== undefined) {
      return unixRequest(this.#options.socketPath, target?.path ?? this.#options.path ?? '/', target === undefined ? body : undefined, allHeaders, target?.method ?? 'POST', timeout, onStream);
    }
    const doFetch = this.#options.fetch ?? globalThis.fetch;
    const url = target === undefined ? this.#options.url! : new URL(target.path, this.#options.url).href;
    const init: RequestInit = target === undefined ? { method: 'POST', headers: allHeaders, body: body as BodyInit } : { method: 'GET', headers: allHeaders };
    if (timeout !== undefined && timeout > 0) init.signal = AbortSignal.timeout(timeout);
    const res = await doFetch(url, init);
    if (onStream !== undefined && res.body !== null && !isJson(res.headers.get('content-type'))) {
      await onStream(chunksOf(res.body), res);
      return { status: res.status, headers: res.headers, body: new Uint8Array(0), streamed: true };
    }
    return { status: res.status, headers: res.headers, body: new Uint8Array(await res.arrayBuffer()) };
  }
}

/** JSON, or no content type at all (read whole and parsed as before). */
function isJson(contentType: string | null): boolean {
  return contentType === null || /[/+]json\b/i.test(contentType);
}

/** A fetch body's chunks; a reader loop, since not every browser can iterate a ReadableStream. */
async function* chunksOf(stream: ReadableStream<Uint8Array>): AsyncIterable<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

async function verify(key: HmacKey, signed: Uint8Array, response: RawResponse): Promise<void> {
  const expected = await key.hex(signed);
  if (!sameHex(expected, response.headers.get('x-hmac'))) {
    throw new SignatureError(response.headers.get('x-hmac') === null ? 'The response is not signed' : 'The response signature does not match');
  }
}

function parseJson(response: RawResponse): unknown {
  const text = decoder.decode(response.body);
  try {
    return JSON.parse(text);
  } catch {
    const what = text.trim() === '' ? 'an empty body' : `something that is not JSON: ${text.slice(0, 200)}`;
    throw new SimpleApiError('InvalidResponse', `The server answered HTTP ${response.status} with ${what}; is it a simpleapi server at this address?`, 'client', undefined, response.status);
  }
}

function serverTimeHint(value: unknown): number | undefined {
  const error = (value as { error?: { code?: unknown; details?: unknown; data?: { details?: unknown } } } | null)?.error;
  const details = error?.details ?? error?.data?.details;
  if (!Array.isArray(details)) return undefined;
  const hint = details.find((d) => typeof d?.server_time === 'number');
  return hint?.server_time;
}

/** An error that means no answer came (fetch's TypeError, a socket error, an attempt's timeout), not one the server sent. */
function isNetworkError(err: unknown): boolean {
  if (err instanceof TypeError) return true;
  if (!(err instanceof Error)) return false;
  return err.name === 'TimeoutError' || typeof (err as { code?: unknown }).code === 'string';
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The `reason` of a Conflict's details, in either envelope. */
function conflictReason(value: unknown): string | undefined {
  const error = (value as { error?: { details?: unknown; data?: { details?: unknown } } } | null)?.error;
  const details = error?.details ?? error?.data?.details;
  if (!Array.isArray(details)) return undefined;
  const reason = details.find((d) => typeof d?.reason === 'string')?.reason;
  return reason;
}

function retryAfterOf(response: RawResponse): number | undefined {
  const raw = response.headers.get('retry-after');
  return raw === null ? undefined : Number(raw);
}

function errorFromSimple(value: unknown, response: RawResponse): SimpleApiError {
  const e = (value as { error?: Record<string, unknown> } | null)?.error;
  if (e === undefined) return errorFromRpc(value, response);
  return new SimpleApiError(String(e.code), String(e.message), String(e.type), e.details as unknown[] | undefined, response.status, undefined, retryAfterOf(response));
}

function errorFromRpc(value: unknown, response: RawResponse): SimpleApiError {
  const e = (value as { error?: { code: number; message: string; data?: Record<string, unknown> } } | null)?.error;
  if (e === undefined) return new SimpleApiError('InvalidResponse', 'The server answered without an error object', 'client', undefined, response.status);
  const data = e.data ?? {};
  return new SimpleApiError(String(data.code ?? e.code), e.message, String(data.type ?? 'server'), data.details as unknown[] | undefined, response.status, e.code, retryAfterOf(response));
}

async function unixRequest(socketPath: string, path: string, body: Uint8Array | undefined, headers: Record<string, string>, method: string, timeoutMs?: number, onStream?: StreamHandler): Promise<RawResponse> {
  const http = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path, method, headers: { ...headers, 'content-length': String(body?.length ?? 0) } }, (res) => {
      const responseHeaders = { get: (name: string) => (res.headers[name.toLowerCase()] as string | undefined) ?? null };
      if (onStream !== undefined && !isJson(res.headers['content-type'] ?? null)) {
        onStream(res, { status: res.statusCode ?? 0, headers: responseHeaders }).then(
          () => resolve({ status: res.statusCode ?? 0, headers: responseHeaders, body: new Uint8Array(0), streamed: true }),
          reject,
        );
        return;
      }
      const chunks: Uint8Array[] = [];
      res.on('data', (c: Uint8Array) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const total = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
        let offset = 0;
        for (const c of chunks) {
          total.set(c, offset);
          offset += c.length;
        }
        resolve({
          status: res.statusCode ?? 0,
          headers: { get: (name) => (res.headers[name.toLowerCase()] as string | undefined) ?? null },
          body: total,
        });
      });
    });
    req.on('error', reject);
    if (timeoutMs !== undefined && timeoutMs > 0) req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.end(body);
  });
}
