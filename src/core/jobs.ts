/**
 * Background jobs, as the core sees them: a method exporting `background = true` is answered with 202 and a job id, and
 * runs on a job runner. The embedded store's runner lives in this process (`memory.ts`); on
 * MongoDB jobs run on Agenda (`agenda.ts`), so any instance may run or report any job.
 */
import { addressKeyOf } from './address.ts';

export type JobState = 'queued' | 'running' | 'done' | 'failed';

export interface JobError {
  code: string;
  message: string;
  type: string;
  details?: unknown[];
}

/** What GET /jobs/<id> reports. */
export interface JobView {
  job_id: string;
  method: string;
  state: JobState;
  progress: { fraction: number; note: string } | null;
  result?: unknown;
  error?: JobError;
  created: number;
  finished?: number;
}

export interface JobStart {
  method: string;
  params: unknown;
  /** The matched user_id (lower-cased) of the session that started it; null for a public start. */
  owner: string | null;
  /** The user_id as stored, for the job's ctx.session.userId. */
  ownerUserId: string | null;
  requestId: string;
  /** The W3C trace id of the request that started it; absent in jobs queued by older versions. */
  traceId?: string;
  /** The client address of the request that started it: a public job's caps count per address. */
  ip?: string;
  /** Seconds the method allows itself (its `timeout` export); never above jobs.timeout. */
  timeout?: number;
}

/** Runs one job's method to its result; a throw is the job's failure. Shared by every runner. */
export type JobExecutor = (job: JobStart & { id: string }, progress: (fraction: number, note: string) => void, signal: AbortSignal) => Promise<unknown>;

/** Whom a job counts against: its user, or for a public job the client address. */
export function capKeyOf(start: JobStart): string {
  return start.owner !== null ? `user:${start.owner}` : `ip:${addressKeyOf(start.ip ?? '')}`;
}

/** Most of one owner's jobs running at once: `ownerConcurrency`, never above `concurrency`. */
export function ownerShareOf(settings: JobSettings): number {
  return Math.min(settings.ownerConcurrency ?? settings.concurrency, settings.concurrency);
}

/** Seconds a job may run: the method's own limit, never above jobs.timeout. */
export function jobTimeoutOf(start: JobStart, settings: JobSettings): number {
  return start.timeout === undefined ? settings.timeout : Math.min(start.timeout, settings.timeout);
}

/** The Retry-After of a refused start: jobs end and make room, but not at once. */
export const JOB_CAP_RETRY_AFTER = 5;

export interface JobRunner {
  readonly kind: 'memory' | 'agenda';
  /** Queues a job and returns its id at once. */
  start(job: JobStart): Promise<string>;
  /** The job as its owner may see it; null when unknown or expired. */
  get(id: string): Promise<(JobView & { owner: string | null }) | null>;
  /** Stops taking jobs; running ones are left to finish within the grace period. */
  close(graceSeconds: number): Promise<void>;
  /** Jobs waiting to run, for metrics: this process's queue, or the database's for a shared runner. */
  queued?(): number | Promise<number>;
}

export interface JobSettings {
  /** Jobs run at once in this process; more wait in the queue. */
  concurrency: number;
  /** Seconds a finished job stays readable. */
  keep: number;
  /** Seconds a job may run before it is failed with Timeout. */
  timeout: number;
  /** MongoDB only: runs of a job whose process died before it is failed. */
  retries: number;
  /** Queued plus running jobs one user (or, for public jobs, one client address) may have; absent: no cap. */
  maxPerOwner?: number;
  /** Queued plus running jobs in all; absent: no cap. */
  maxTotal?: number;
  /** In-process runner: jobs of one owner running at once, so others' jobs find a free slot. Absent: jobs.concurrency. */
  ownerConcurrency?: number;
}
