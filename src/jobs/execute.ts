/**
 * Running one job's method: the part every runner shares. A job's ctx is a method's ctx without
 * the HTTP request (`ctx.http` is null), plus `progress(fraction, note)`.
 */
import { CallContext, type CallScope, type Services } from '../core/context.ts';
import { toApiError } from '../core/errors.ts';
import type { MethodTable } from '../core/registry.ts';
import { NO_METRICS, type Metrics } from '../core/metrics.ts';
import { traceOf } from '../core/trace.ts';
import type { JobError, JobExecutor } from '../core/jobs.ts';

export type { JobExecutor } from '../core/jobs.ts';


/** What a failed job reports: its §4 code, and no internal message for an unexpected throw. */
export function jobErrorOf(err: unknown): JobError {
  const e = toApiError(err);
  return { code: e.code, message: e.message, type: e.type, ...(e.details !== undefined && e.details.length > 0 ? { details: e.details } : {}) };
}

/** Makes the executor that runs a job's method with its own ctx (the same builder as calls). */
export function createJobExecutor(methods: () => MethodTable, services: Services, metrics: Metrics = NO_METRICS): JobExecutor {
  return async (job, progress, signal) => {
    const record = methods()[job.method];
    if (record === undefined) throw new Error(`job ${job.id}: no method ${job.method} on this instance`);
    const traceId = job.traceId ?? traceOf({}).traceId;
    const scope: CallScope = { requestId: job.requestId, traceId, ip: '', session: null, signal, http: null };
    const ctx = new CallContext(job.method, scope, services, { job: { userId: job.ownerUserId, progress } });
    metrics.jobStarted(record.name);
    try {
      const result = await record.invoke(ctx, job.params);
      metrics.jobFinished(record.name, 'done');
      return result;
    } catch (err) {
      metrics.jobFinished(record.name, 'failed');
      const error = jobErrorOf(err);
      if (error.code === 'InternalError') services.log.error({ job: job.id, reqId: job.requestId, traceId, method: job.method, err }, 'job threw');
      throw err;
    }
  };
}
