/**
 * Running calls: name lookup, per-call authorisation, parameter validation, `invoke`, and turning
 * whatever happened into the envelope's answer.
 */
import { mapLimited } from './concurrency.ts';
import { ApiError, simpleErrorBody, toApiError } from './errors.ts';
import { isRejected, rpcError, rpcResult, type Call, type Envelope, type RejectedEntry, type RpcResponse } from './envelope.ts';
import { CallContext, type Services } from './context.ts';
import { isValidMethodName, validationDetails, type MethodTable } from './registry.ts';
import type { RequestScope } from '../scope.ts';

/** `job` is set when a background method was accepted: the result is `{job_id}`. */
export type Outcome = { ok: true; result: unknown; job?: string } | { ok: false; error: ApiError };

/** What the transport sends: a status, and a JSON value or no body at all (204). */
export interface Reply {
  status: number;
  body?: unknown;
  /** `Location` of an accepted background job. */
  location?: string;
  /** A raw method answered the request itself: nothing more is written. */
  raw?: boolean;
  /** Seconds for `Retry-After`, when an error asks for it. */
  retryAfter?: number;
}

export interface DispatchSettings {
  batchConcurrency: number;
  /** Seconds an asynchronous method may run; 0 for no limit. */
  methodTimeout: number;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function';
}

export class Dispatcher {
  #methods: MethodTable;
  readonly #services: Services;
  readonly #settings: DispatchSettings;

  constructor(methods: MethodTable, services: Services, settings: DispatchSettings) {
    this.#methods = methods;
    this.#services = services;
    this.#settings = settings;
  }

  /** Serves another method table from now on (watch mode); calls already running keep theirs. */
  setMethods(methods: MethodTable): void {
    this.#methods = methods;
  }

  /** Runs one call to its outcome; never throws. A method that answers synchronously costs no promise. */
  run(call: Call, scope: RequestScope, inBatch = false): Outcome | Promise<Outcome> {
    // §3: names are looked up, never turned into paths; the table has no prototype.
    const record = isValidMethodName(call.method) ? this.#methods[call.method] : undefined;
    if (record === undefined) return { ok: false, error: new ApiError('MethodNotFound', `No method named ${JSON.stringify(call.method.slice(0, 300))}`) };
    if (record.auth === 'session' && scope.session === null) {
      return { ok: false, error: new ApiError('Unauthenticated', `${record.name} needs a signed-in session`) };
    }
    if (record.validate !== undefined && !record.validate(call.params)) {
      return { ok: false, error: new ApiError('InvalidParams', undefined, { details: validationDetails(record.validate.errors) }) };
    }
    if (record.background === true) return this.#startJob(record.name, call.params, scope);
    const ctx = new CallContext(record.name, scope, this.#services, this.#settings.methodTimeout > 0);
    if (record.raw === true) {
      if (inBatch) return { ok: false, error: new ApiError('InvalidRequest', `${record.name} writes its own response and cannot be called in a batch`) };
      return scope.respondRaw(() => record.invoke(ctx, call.params)).then(
        (): Outcome => ({ ok: true, result: undefined }),
        (thrown: unknown) => this.#failed(thrown, record.name, scope),
      );
    }
    try {
      const result = record.invoke(ctx, call.params);
      if (!isThenable(result)) return { ok: true, result };
      const settled = Promise.resolve(result).then(
        (value): Outcome => ({ ok: true, result: value }),
        (thrown: unknown) => this.#failed(thrown, record.name, scope),
      );
      return this.#settings.methodTimeout > 0 ? this.#withTimeout(settled, ctx, scope) : settled;
    } catch (thrown) {
      return this.#failed(thrown, record.name, scope);
    }
  }

  /** A throw as the caller sees it; an unexpected one is logged in full with the request id. */
  #failed(thrown: unknown, method: string, scope: RequestScope): Outcome {
    const error = toApiError(thrown);
    if (error.code === 'InternalError' && error.cause !== undefined) {
      this.#services.log.error({ reqId: scope.requestId, method, err: error.cause }, 'method threw');
    }
    return { ok: false, error };
  }

  /**
   * Answers Timeout when the method has not settled in time, and aborts its ctx.signal so it can
   * stop. What it returns afterwards is dropped.
   */
  #withTimeout(settled: Promise<Outcome>, ctx: CallContext, scope: RequestScope): Promise<Outcome> {
    const seconds = this.#settings.methodTimeout;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        ctx.expire();
        this.#services.log.warn({ reqId: scope.requestId, method: ctx.method, seconds }, 'method timed out');
        resolve({ ok: false, error: new ApiError('Timeout', `${ctx.method} did not finish within ${seconds} s`) });
      }, seconds * 1000);
      void settled.then((outcome) => {
        clearTimeout(timer);
        resolve(outcome);
      });
    });
  }

  async #startJob(method: string, params: unknown, scope: RequestScope): Promise<Outcome> {
    const jobs = this.#services.jobs;
    if (jobs === undefined) return { ok: false, error: new ApiError('InternalError') };
    try {
      const session = scope.session;
      const id = await jobs.start({ method, params, owner: session?.userKey ?? null, ownerUserId: session?.userId ?? null, requestId: scope.requestId });
      return { ok: true, result: { job_id: id }, job: id };
    } catch (err) {
      return { ok: false, error: toApiError(err) };
    }
  }

  /** Answers a whole envelope. */
  async reply(envelope: Envelope, scope: RequestScope): Promise<Reply> {
    switch (envelope.kind) {
      case 'simple': {
        const outcome = await this.run(envelope.call, scope);
        if (scope.rawAnswered) return { status: 0, raw: true };
        if (outcome.ok && outcome.job !== undefined) return { status: 202, body: outcome.result, location: `/jobs/${outcome.job}` };
        if (outcome.ok) return { status: 200, body: outcome.result === undefined ? null : outcome.result };
        return errorReply(outcome.error, 'simple');
      }
      case 'rpc': {
        const response = await this.#rpcEntry(envelope.entry, scope, false);
        if (scope.rawAnswered) return { status: 0, raw: true };
        if (response === undefined) return { status: 204 };
        return { status: 200, body: response.response, ...retry(response.error), ...(response.job === undefined ? {} : { location: `/jobs/${response.job}` }) };
      }
      case 'batch': {
        const responses = await mapLimited(envelope.entries, this.#settings.batchConcurrency, (e) => this.#rpcEntry(e, scope, true));
        const answered = responses.filter((r) => r !== undefined);
        if (answered.length === 0) return { status: 204 };
        const retryAfter = Math.max(0, ...answered.map((r) => r.error?.retryAfter ?? 0));
        return { status: 200, body: answered.map((r) => r.response), ...(retryAfter > 0 ? { retryAfter } : {}) };
      }
      case 'error':
        return errorReply(envelope.error, envelope.form);
    }
  }

  async #rpcEntry(entry: Call | RejectedEntry, scope: RequestScope, inBatch: boolean): Promise<{ response: RpcResponse; error?: ApiError; job?: string } | undefined> {
    if (isRejected(entry)) return { response: rpcError(entry.error, entry.id), error: entry.error };
    const outcome = await this.run(entry, scope, inBatch);
    if (entry.id === undefined) return undefined; // a notification: run, never answered
    return outcome.ok ? { response: rpcResult(outcome.result, entry.id), job: outcome.job } : { response: rpcError(outcome.error, entry.id), error: outcome.error };
  }
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
