/**
 * The one builder of a method's `ctx`, for calls and background jobs alike. Its parts that cost
 * something (the child logger, the abort signal, `ctx.session`, `ctx.accounts`) are made only
 * when a method reads them.
 */
import type { Db } from 'mongodb';
import type { Pool } from 'mysql2/promise';
import type { Logger } from 'pino';
import type { AccountService, Accounts } from './accounts.ts';
import { ApiError } from './errors.ts';
import type { MethodContext, NativeHttp, Session } from './method.ts';
import type { JobRunner } from './jobs.ts';
import type { SessionRecord, Store } from '../store/types.ts';
import { nowSeconds } from './clock.ts';
import type { Verdict } from './rate-limit.ts';

export interface Services {
  store: Store;
  accounts: AccountService;
  log: Logger;
  /** Where background methods run; absent where nothing starts jobs (tools, benches). */
  jobs?: JobRunner;
  /** Largest session state, in bytes of its JSON, that saveState() writes; absent: 64 KiB. */
  maxSessionState?: number;
}

export const DEFAULT_MAX_SESSION_STATE = 64 * 1024;

/** Who is calling and over what: everything a ctx is built from besides the services. */
export interface CallScope {
  readonly requestId: string;
  /** The request's W3C trace id (a job keeps the one of the request that started it). */
  readonly traceId: string;
  readonly ip: string;
  /** The verified session; null for a public request. */
  readonly session: SessionRecord | null;
  /** Fires when the client goes away. */
  readonly signal: AbortSignal;
  /** The transport's own request and response, when it has them (never for a job). */
  readonly http: NativeHttp | null;
  /**
   * The verdict on the user's rate-limit count taken with the request's nonce (one round trip on
   * MySQL), once: the request's first call uses it, and a batch's other calls count themselves.
   */
  takeVerdict?(): Verdict | undefined;
}

/** A job's view of the user who started it: who, but no state to save and no request. */
export interface JobOrigin {
  readonly userId: string | null;
  readonly progress: (fraction: number, note: string) => void;
}

/**
 * `ctx.session`. Its state is read from the record only when the method reads it (the embedded
 * store parses it then). saveState() refuses a state whose JSON is over `maxState` bytes: the
 * limit holds what every later signed request of the session reads and copies.
 */
function sessionHandle(record: SessionRecord, store: Store, maxState: number): Session {
  let version = record.version;
  let state: Record<string, unknown> | undefined;
  const handle: Session = {
    userId: record.userId,
    sessionId: record.sessionId,
    expires: record.expires,
    get state() {
      return (state ??= record.state);
    },
    set state(value) {
      state = value;
    },
    async saveState() {
      let size: number;
      try {
        size = Buffer.byteLength(JSON.stringify(handle.state) ?? '');
      } catch (err) {
        throw new ApiError('InvalidParams', `The session state cannot be saved as JSON: ${(err as Error).message.slice(0, 200)}`);
      }
      if (size > maxState) {
        throw new ApiError('PayloadTooLarge', `The session state would be ${size} bytes as JSON, over the limit of ${maxState} bytes (session.maxState); nothing was saved`, {
          details: [{ path: '', message: 'session state too large', size, limit: maxState }],
        });
      }
      const saved = await store.saveSessionState(record.sessionId, handle.state, version);
      if (saved !== null) {
        version = saved;
        return;
      }
      const current = await store.getSession(record.sessionId, nowSeconds());
      if (current === null) throw new ApiError('Unauthenticated', 'The session ended while this request ran');
      state = current.state;
      version = current.version;
      throw new ApiError('Conflict', 'The session state was changed by another request; re-apply the change and save again');
    },
  };
  return handle;
}

function jobSession(userId: string): Session {
  return { userId, sessionId: '', expires: 0, state: {}, saveState: () => Promise.reject(new Error('a background job has no session state to save')) };
}

const timeoutReason = () => new DOMException('The method ran past its time limit', 'TimeoutError');

/**
 * A method's `ctx`. Give `job` for a background job: it then has `progress()` and no request.
 *
 * @example const ctx = new CallContext('math.sum', scope, services, { timed: true })
 */
export class CallContext implements MethodContext {
  readonly method: string;
  readonly #scope: CallScope;
  readonly #services: Services;
  readonly #job: JobOrigin | undefined;
  #log: Logger | undefined;
  #session: Session | null | undefined;
  #accounts: Accounts | undefined;
  /** Only for a call with a time limit: aborted when it runs out. */
  #timeout: AbortController | undefined;
  readonly #timed: boolean;
  #expired = false;
  #signal: AbortSignal | undefined;

  constructor(method: string, scope: CallScope, services: Services, options: { timed?: boolean; job?: JobOrigin } = {}) {
    this.method = method;
    this.#scope = scope;
    this.#services = services;
    this.#timed = options.timed === true;
    this.#job = options.job;
    if (options.job !== undefined) this.progress = (fraction: number, note = '') => reportProgress(options.job!, fraction, note);
  }

  progress?: (fraction: number, note?: string) => void;

  /** The call's time ran out: its signal aborts with a TimeoutError. */
  expire(): void {
    this.#expired = true;
    this.#timeout?.abort(timeoutReason());
  }

  get requestId(): string {
    return this.#scope.requestId;
  }
  get traceId(): string {
    return this.#scope.traceId;
  }
  get ip(): string {
    return this.#scope.ip;
  }
  get http(): NativeHttp | null {
    return this.#scope.http;
  }
  get db(): Db | null {
    return this.#services.store.forMethods.db;
  }
  get sql(): Pool | null {
    return this.#services.store.forMethods.sql;
  }
  get signal(): AbortSignal {
    if (this.#signal === undefined) {
      if (!this.#timed) {
        this.#signal = this.#scope.signal;
      } else {
        this.#timeout = new AbortController();
        if (this.#expired) this.#timeout.abort(timeoutReason());
        this.#signal = AbortSignal.any([this.#scope.signal, this.#timeout.signal]);
      }
    }
    return this.#signal;
  }
  get log(): Logger {
    const { requestId: reqId, traceId } = this.#scope;
    this.#log ??= this.#services.log.child(this.#job === undefined ? { reqId, traceId, method: this.method } : { reqId, traceId, job: true, method: this.method });
    return this.#log;
  }
  get session(): Session | null {
    if (this.#session === undefined) {
      if (this.#job !== undefined) this.#session = this.#job.userId === null ? null : jobSession(this.#job.userId);
      else this.#session = this.#scope.session === null ? null : sessionHandle(this.#scope.session, this.#services.store, this.#services.maxSessionState ?? DEFAULT_MAX_SESSION_STATE);
    }
    return this.#session;
  }
  get accounts(): Accounts {
    if (this.#job !== undefined) throw new Error('a background job cannot use ctx.accounts');
    this.#accounts ??= this.#services.accounts.bind(this.#scope);
    return this.#accounts;
  }
}

function reportProgress(job: JobOrigin, fraction: number, note: string): void {
  const clamped = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  job.progress(clamped, String(note).slice(0, 500));
}
