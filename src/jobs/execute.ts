/**
 * Running one job's method: the part every runner shares. A job's ctx is a method's ctx without
 * the HTTP request (no `koa`), plus `progress(fraction, note)`.
 */
import type { Logger } from 'pino';
import { toApiError } from '../errors.ts';
import type { MethodContext } from '../method.ts';
import type { MethodTable } from '../registry.ts';
import type { Store } from '../store/types.ts';
import { sqlOf } from '../store/sql.ts';
import type { JobError, JobStart } from './types.ts';

export type JobExecutor = (job: JobStart & { id: string }, progress: (fraction: number, note: string) => void, signal: AbortSignal) => Promise<unknown>;

/** What a failed job reports: its §4 code, and no internal message for an unexpected throw. */
export function jobErrorOf(err: unknown): JobError {
  const e = toApiError(err);
  return { code: e.code, message: e.message, type: e.type, ...(e.details !== undefined && e.details.length > 0 ? { details: e.details } : {}) };
}

/** Makes the executor that runs a job's method with its own ctx. */
export function createJobExecutor(methods: () => MethodTable, store: Store, log: Logger): JobExecutor {
  return async (job, progress, signal) => {
    const record = methods()[job.method];
    if (record === undefined) throw new Error(`job ${job.id}: no method ${job.method} on this instance`);
    const jobLog = log.child({ job: job.id, method: job.method });
    const ctx = {
      method: job.method,
      requestId: job.requestId,
      ip: '',
      db: store.db,
      sql: sqlOf(store),
      signal,
      log: jobLog,
      session: job.ownerUserId === null ? null : { userId: job.ownerUserId, sessionId: '', expires: 0, state: {}, saveState: () => Promise.reject(new Error('a background job has no session state to save')) },
      get koa(): never {
        throw new Error('a background job has no HTTP request: ctx.koa is not available');
      },
      get accounts(): never {
        throw new Error('a background job cannot use ctx.accounts');
      },
      progress(fraction: number, note = '') {
        const clamped = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
        progress(clamped, String(note).slice(0, 500));
      },
    } satisfies MethodContext & { progress: (fraction: number, note?: string) => void };
    try {
      return await record.invoke(ctx, job.params);
    } catch (err) {
      const error = jobErrorOf(err);
      if (error.code === 'InternalError') jobLog.error({ err }, 'job threw');
      throw err;
    }
  };
}
