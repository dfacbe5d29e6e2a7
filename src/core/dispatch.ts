/**
 * Running calls: name lookup, per-call authorisation, parameter validation, `invoke`, and turning
 * whatever happened into the envelope's reply. No HTTP here: a reply is a status and a JSON value
 * (or a stream of events), which the endpoint serialises and signs.
 */
import { mapLimited } from './concurrency.ts';
import { isThenable } from './thenable.ts';
import { ApiError, simpleErrorBody, toApiError } from './errors.ts';
import { isRejected, rpcError, rpcResult, type Call, type Envelope, type RejectedEntry, type RpcResponse } from './envelope.ts';
import { CallContext, type CallScope, type Services } from './context.ts';
import { issuedBy } from './accounts.ts';
import type { IssuedSession } from './auth.ts';
import { explainable, isValidMethodName, validationDetails, type MethodRecord } from './registry.ts';
import type { MethodHolder } from './methods.ts';
import { closest } from './nearest.ts';
import { NO_METRICS, UNKNOWN_METHOD, type Metrics } from './metrics.ts';
import type { RateLimits } from './rate-limit.ts';

/** A streaming method's events, and how the transport frames them. */
export interface EventStream {
  readonly events: AsyncIterable<unknown>;
  /** The SSE event name of every event, when the method set one. */
  readonly event?: string;
}

/** What one call came to. `job`: a background method was accepted; `taken`: a raw method answered itself. */
export type CallOutcome =
  | { ok: true; result: unknown; job?: string; issued?: IssuedSession; stream?: EventStream; taken?: boolean }
  | { ok: false; error: ApiError };

/** What the endpoint sends: a status and a JSON value, no body (204), a stream, or nothing (taken). */
export interface Reply {
  status: number;
  body?: unknown;
  /** `Location` of an accepted background job. */
  location?: string;
  /** Seconds for `Retry-After`, when an error asks for it. */
  retryAfter?: number;
  /** A create/login started this session: on a request without one, its key signs the answer. */
  issued?: IssuedSession;
  stream?: EventStream;
  /** A raw method wrote the response itself: nothing more is sent. */
  taken?: boolean;
}

export interface DispatchSettings {
  batchConcurrency: number;
  /** Seconds an asynchronous method may run; 0 for no limit. */
  methodTimeout: number;
  /** Counts every call against its caller (and its method's own rule); absent: no rate limit. */
  limits?: RateLimits;
  /** Where call outcomes are counted; NO_METRICS (the default) when metrics are off. */
  metrics?: Metrics;
}

function asEvents(value: unknown): AsyncIterable<unknown> | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  if (typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') return value as AsyncIterable<unknown>;
  return undefined;
}

export class Dispatcher {
  readonly #methods: MethodHolder;
  readonly #services: Services;
  readonly #settings: DispatchSettings;
  readonly #metrics: Metrics;

  constructor(methods: MethodHolder, services: Services, settings: DispatchSettings) {
    this.#methods = methods;
    this.#services = services;
    this.#settings = settings;
    this.#metrics = settings.metrics ?? NO_METRICS;
  }

  /**
   * Runs one call to its outcome; never throws. Every call counts against the rate limit first
   * (each entry of a batch too, and a call of an unknown method); without a limit, a method that
   * answers synchronously costs no promise.
   */
  run(call: Call, scope: CallScope, inBatch = false): CallOutcome | Promise<CallOutcome> {
    // §3: names are looked up, never turned into paths. The table has no prototype and holds only
    // well-formed names, so a name that is not one finds nothing without being checked first.
    const record = this.#methods.current[call.method];
    if (!this.#metrics.on) return this.#limited(record, call, scope, inBatch);
    const started = performance.now();
    const outcome = this.#limited(record, call, scope, inBatch);
    if (!(outcome instanceof Promise)) return this.#counted(record, outcome, started);
    return outcome.then((o) => this.#counted(record, o, started));
  }

  /** Counts an outcome under the method's name when it is served (else `unknown`: names are unbounded). */
  #counted(record: MethodRecord | undefined, outcome: CallOutcome, started: number): CallOutcome {
    this.#metrics.call(record === undefined ? UNKNOWN_METHOD : record.name, outcome.ok ? 'ok' : outcome.error.code, performance.now() - started);
    return outcome;
  }

  #limited(record: MethodRecord | undefined, call: Call, scope: CallScope, inBatch: boolean): CallOutcome | Promise<CallOutcome> {
    const limits = this.#settings.limits;
    if (limits === undefined) return this.#run(record, call, scope, inBatch);
    const caller = { ip: scope.ip, userKey: scope.session?.userKey ?? null };
    const counted = limits.check(record?.name ?? '', record?.rateLimit, caller, scope.takeVerdict?.());
    if (counted instanceof Promise) return counted.then((refused) => (refused === null ? this.#run(record, call, scope, inBatch) : { ok: false, error: refused }));
    return counted === null ? this.#run(record, call, scope, inBatch) : { ok: false, error: counted };
  }

  #run(record: MethodRecord | undefined, call: Call, scope: CallScope, inBatch: boolean): CallOutcome | Promise<CallOutcome> {
    if (record === undefined) return { ok: false, error: this.#notFound(call.method) };
    if (record.auth === 'session' && scope.session === null) {
      this.#metrics.authFailure('session_required');
      return { ok: false, error: new ApiError('Unauthenticated', `${record.name} needs a signed-in session`) };
    }
    if (record.validate !== undefined && !record.validate(call.params)) {
      // Every error for small params (§4: one detail each); the first for large ones (bounded work).
      const explain = record.explain;
      const errors = explain !== undefined && explainable(call.params) && !explain(call.params) ? explain.errors : record.validate.errors;
      return { ok: false, error: new ApiError('InvalidParams', undefined, { details: validationDetails(errors) }) };
    }
    if (record.background === true) return this.#startJob(record, call.params, scope);
    if (inBatch && (record.raw === true || record.stream === true)) {
      return { ok: false, error: new ApiError('InvalidRequest', `${record.name} ${record.stream === true ? 'streams' : 'writes'} its own response and cannot be called in a batch`) };
    }
    if (record.raw === true && scope.http === null) {
      return { ok: false, error: new ApiError('InvalidRequest', `${record.name} writes the HTTP response itself, and this transport does not hand it over`) };
    }
    const ctx = new CallContext(record.name, scope, this.#services, { timed: this.#settings.methodTimeout > 0 });
    try {
      const result = record.invoke(ctx, call.params);
      if (!isThenable(result)) return this.#settled(record, result, scope);
      const settled = Promise.resolve(result).then(
        (value) => this.#settled(record, value, scope),
        (thrown: unknown) => this.#failed(thrown, record.name, scope),
      );
      return this.#settings.methodTimeout > 0 ? this.#withTimeout(settled, ctx, scope) : settled;
    } catch (thrown) {
      return this.#failed(thrown, record.name, scope);
    }
  }

  #settled(record: MethodRecord, value: unknown, scope: CallScope): CallOutcome {
    if (record.raw === true) return { ok: true, result: undefined, taken: true };
    if (record.stream === true) {
      const events = value instanceof ReadableStream ? (value as unknown as AsyncIterable<unknown>) : asEvents(value);
      if (events === undefined) return this.#failed(new TypeError(`${record.name} is a streaming method but returned no async iterable`), record.name, scope);
      return { ok: true, result: undefined, stream: record.event === undefined ? { events } : { events, event: record.event } };
    }
    const issued = issuedBy(value);
    return issued === undefined ? { ok: true, result: value } : { ok: true, result: value, issued };
  }

  #notFound(method: string): ApiError {
    const shown = JSON.stringify(method.slice(0, 300));
    const near = isValidMethodName(method) ? closest(method, Object.keys(this.#methods.current)) : [];
    if (near.length === 0) return new ApiError('MethodNotFound', `No method named ${shown}`);
    return new ApiError('MethodNotFound', `No method named ${shown}; did you mean ${near.map((n) => `'${n}'`).join(' or ')}?`, {
      details: [{ did_you_mean: near }],
    });
  }

  /** A throw as the caller sees it; an unexpected one is logged in full with the request id. */
  #failed(thrown: unknown, method: string, scope: CallScope): CallOutcome {
    const error = toApiError(thrown);
    if (error.code === 'InternalError' && error.cause !== undefined) {
      this.#services.log.error({ reqId: scope.requestId, traceId: scope.traceId, method, err: error.cause }, 'method threw');
    }
    return { ok: false, error };
  }

  /**
   * Answers Timeout when the method has not settled in time, and aborts its ctx.signal so it can
   * stop. What it returns afterwards is dropped.
   */
  #withTimeout(settled: Promise<CallOutcome>, ctx: CallContext, scope: CallScope): Promise<CallOutcome> {
    const seconds = this.#settings.methodTimeout;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        ctx.expire();
        this.#services.log.warn({ reqId: scope.requestId, traceId: scope.traceId, method: ctx.method, seconds }, 'method timed out');
        resolve({ ok: false, error: new ApiError('Timeout', `${ctx.method} did not finish within ${seconds} s`) });
      }, seconds * 1000);
      void settled.then((outcome) => {
        clearTimeout(timer);
        resolve(outcome);
      });
    });
  }

  /** Queues a background call; past the runner's caps (per owner, in total) it is TooManyRequests. */
  async #startJob(record: MethodRecord, params: unknown, scope: CallScope): Promise<CallOutcome> {
    const jobs = this.#services.jobs;
    if (jobs === undefined) return { ok: false, error: new ApiError('InternalError') };
    try {
      const session = scope.session;
      const start = { method: record.name, params, owner: session?.userKey ?? null, ownerUserId: session?.userId ?? null, requestId: scope.requestId, ip: scope.ip, traceId: scope.traceId };
      const id = await jobs.start(record.timeout === undefined ? start : { ...start, timeout: record.timeout });
      return { ok: true, result: { job_id: id }, job: id };
    } catch (err) {
      return { ok: false, error: toApiError(err) };
    }
  }

  /**
   * Answers a whole envelope; synchronously when its call settles synchronously, so a plain call
   * costs no promise on its way back (the endpoint and the transport keep it that way).
   */
  reply(envelope: Envelope, scope: CallScope): Reply | Promise<Reply> {
    switch (envelope.kind) {
      case 'simple': {
        const outcome = this.run(envelope.call, scope);
        return outcome instanceof Promise ? outcome.then(simpleReply) : simpleReply(outcome);
      }
      case 'rpc': {
        const entry = envelope.entry;
        if (isRejected(entry)) return { status: 200, body: rpcError(entry.error, entry.id) };
        const outcome = this.run(entry, scope);
        return outcome instanceof Promise ? outcome.then((o) => rpcReply(o, entry)) : rpcReply(outcome, entry);
      }
      case 'batch':
        return this.#batch(envelope.entries, scope);
      case 'error':
        return errorReply(envelope.error, envelope.form);
    }
  }

  async #batch(entries: (Call | RejectedEntry)[], scope: CallScope): Promise<Reply> {
    const outcomes = await mapLimited(entries, this.#settings.batchConcurrency, (e) => this.#batchEntry(e, scope));
    const answered = outcomes.filter((r) => r !== undefined);
    const issued = outcomes.find((r) => r?.issued !== undefined)?.issued;
    if (answered.length === 0) return issued === undefined ? { status: 204 } : { status: 204, issued };
    const retryAfter = Math.max(0, ...answered.map((r) => r.error?.retryAfter ?? 0));
    return { status: 200, body: answered.map((r) => r.response), ...(retryAfter > 0 ? { retryAfter } : {}), ...(issued === undefined ? {} : { issued }) };
  }

  async #batchEntry(entry: Call | RejectedEntry, scope: CallScope): Promise<{ response: RpcResponse; error?: ApiError; issued?: IssuedSession } | undefined> {
    if (isRejected(entry)) return { response: rpcError(entry.error, entry.id), error: entry.error };
    const outcome = await this.run(entry, scope, true);
    if (entry.id === undefined) return undefined;
    if (!outcome.ok) return { response: rpcError(outcome.error, entry.id), error: outcome.error };
    return { response: rpcResult(outcome.result, entry.id), ...(outcome.issued === undefined ? {} : { issued: outcome.issued }) };
  }
}

function simpleReply(outcome: CallOutcome): Reply {
  if (!outcome.ok) return errorReply(outcome.error, 'simple');
  return single(outcome, 200, outcome.result === undefined ? null : outcome.result);
}

function rpcReply(outcome: CallOutcome, entry: Call): Reply {
  if (outcome.ok && (outcome.stream !== undefined || outcome.taken === true)) return single(outcome, 200, null);
  if (entry.id === undefined) return { status: 204 }; // a notification: run, never answered
  if (!outcome.ok) return { status: 200, body: rpcError(outcome.error, entry.id), ...retry(outcome.error) };
  return single(outcome, 200, rpcResult(outcome.result, entry.id));
}

/** The reply of one successful call: a job's 202 (simple form) and Location, a stream, a raw answer. */
function single(outcome: Extract<CallOutcome, { ok: true }>, status: number, body: unknown): Reply {
  if (outcome.taken === true) return { status: 0, taken: true };
  if (outcome.stream !== undefined) return { status: 200, stream: outcome.stream };
  const reply: Reply = { status, body };
  if (outcome.job !== undefined) {
    reply.location = `/jobs/${outcome.job}`;
    // §7: 202 in the simple form; JSON-RPC keeps 200 with the result {job_id}.
    if (!isRpcBody(body)) reply.status = 202;
  }
  if (outcome.issued !== undefined) reply.issued = outcome.issued;
  return reply;
}

function isRpcBody(body: unknown): boolean {
  return body !== null && typeof body === 'object' && (body as { jsonrpc?: unknown }).jsonrpc === '2.0';
}

function retry(error: ApiError | undefined): { retryAfter?: number } {
  return error?.retryAfter === undefined ? {} : { retryAfter: error.retryAfter };
}

/**
 * The reply for an error answered as a whole: in the simple form its own status; in the JSON-RPC
 * form 200, except the transport-level ones (§2b) that keep their status.
 */
export function errorReply(error: ApiError, form: 'simple' | 'rpc'): Reply {
  if (form === 'simple') return { status: error.status, body: simpleErrorBody(error), ...retry(error) };
  const keepsStatus = TRANSPORT_CODES.has(error.code);
  return { status: keepsStatus ? error.status : 200, body: rpcError(error, null), ...retry(error) };
}

/** §2b: errors that are about the HTTP request itself, not a JSON-RPC call, keep their HTTP status. */
const TRANSPORT_CODES = new Set(['ParseError', 'PayloadTooLarge', 'UnsupportedMediaType', 'BadSignature', 'Unauthenticated', 'Unavailable']);
