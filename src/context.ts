/**
 * The `ctx` each method call gets. Its parts that cost something (the child logger, the abort
 * signal, `ctx.session`, `ctx.accounts`) are made only when a method reads them.
 */
import type { Context as KoaContext } from 'koa';
import type { Db } from 'mongodb';
import type { Pool } from 'mysql2/promise';
import type { Logger } from 'pino';
import type { AccountService, Accounts } from './accounts.ts';
import { ApiError } from './errors.ts';
import type { MethodContext, Session } from './method.ts';
import type { JobRunner } from './jobs/types.ts';
import type { RequestScope } from './scope.ts';
import type { SessionRecord, Store } from './store/types.ts';
import { nowSeconds } from './clock.ts';
import { sqlOf } from './store/sql.ts';

export interface Services {
  store: Store;
  accounts: AccountService;
  log: Logger;
  /** Where background methods run; absent where nothing starts jobs (tools, benches). */
  jobs?: JobRunner;
}

function sessionHandle(record: SessionRecord, store: Store): Session {
  let version = record.version;
  const handle: Session = {
    userId: record.userId,
    sessionId: record.sessionId,
    expires: record.expires,
    state: record.state,
    async saveState() {
      const saved = await store.saveSessionState(record.sessionId, handle.state, version);
      if (saved !== null) {
        version = saved;
        return;
      }
      const current = await store.getSession(record.sessionId, nowSeconds());
      if (current === null) throw new ApiError('Unauthenticated', 'The session ended while this request ran');
      handle.state = current.state;
      version = current.version;
      throw new ApiError('Conflict', 'The session state was changed by another request; re-apply the change and save again');
    },
  };
  return handle;
}

const timeoutReason = () => new DOMException('The method ran past --method-timeout', 'TimeoutError');

export class CallContext implements MethodContext {
  readonly method: string;
  readonly #scope: RequestScope;
  readonly #services: Services;
  #log: Logger | undefined;
  #session: Session | null | undefined;
  #accounts: Accounts | undefined;
  /** Only for a call with a time limit: aborted when it runs out. */
  #timeout: AbortController | undefined;
  readonly #timed: boolean;
  #expired = false;
  #signal: AbortSignal | undefined;

  constructor(method: string, scope: RequestScope, services: Services, timed = false) {
    this.method = method;
    this.#scope = scope;
    this.#services = services;
    this.#timed = timed;
  }

  /** The call's time ran out: its signal aborts with a TimeoutError. */
  expire(): void {
    this.#expired = true;
    this.#timeout?.abort(timeoutReason());
  }

  get requestId(): string {
    return this.#scope.requestId;
  }
  get ip(): string {
    return this.#scope.ip;
  }
  get koa(): KoaContext {
    return this.#scope.koa;
  }
  get db(): Db | null {
    return this.#services.store.db;
  }
  get sql(): Pool | null {
    return sqlOf(this.#services.store);
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
    this.#log ??= this.#services.log.child({ reqId: this.#scope.requestId, method: this.method });
    return this.#log;
  }
  get session(): Session | null {
    if (this.#session === undefined) {
      const record = this.#scope.session;
      this.#session = record === null ? null : sessionHandle(record, this.#services.store);
    }
    return this.#session;
  }
  get accounts(): Accounts {
    this.#accounts ??= this.#services.accounts.bind(this.#scope);
    return this.#accounts;
  }
}
