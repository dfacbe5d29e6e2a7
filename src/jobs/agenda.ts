/**
 * Jobs on MongoDB, run by Agenda (with @agendajs/mongo-backend) over the project's own database:
 * Agenda queues and locks, so any instance may run any job, and a job whose process died is
 * picked up again once its lock expires. What a job reports lives in `simpleapi_job_status`, one
 * document per job, so any instance answers GET /jobs/<id> with one read.
 *
 * At-least-once: a job whose process died runs again, up to `jobs.retries` times, then fails.
 * The method's own failures are final (a result, not a crash) and are not retried.
 */
import { Agenda, type Job } from 'agenda';
import { MongoBackend } from '@agendajs/mongo-backend';
import type { Collection } from 'mongodb';
import type { Logger } from 'pino';
import { ApiError } from '../core/errors.ts';
import type { Db } from 'mongodb';
import { jobErrorOf, type JobExecutor } from './execute.ts';
import { capKeyOf, JOB_CAP_RETRY_AFTER, jobTimeoutOf, ownerShareOf, type JobError, type JobRunner, type JobSettings, type JobStart, type JobView } from '../core/jobs.ts';
import { nowSeconds as now } from '../core/clock.ts';

const JOB_NAME = 'simpleapi.method';
/** How long a job whose owner has its share running waits before it is looked at again. */
const OWNER_BUSY_DELAY_MS = 1000;
export const JOB_COLLECTIONS = { agenda: 'simpleapi_agenda_jobs', status: 'simpleapi_job_status' } as const;

/** What GET /jobs reports, stored under the job id, with what only the runner needs. */
interface StatusDoc extends Omit<JobView, 'job_id'> {
  _id: string;
  owner: string | null;
  /** Whom the job counts against (`user:…`, `ip:…`), for the caps. */
  capKey?: string;
  /** Runs started so far; more than 1 means a process died under it. */
  attempts: number;
  /** When this run took the job (ms): the order in which an owner's running jobs keep their slots. */
  runningSince?: number;
  expiresAt?: Date;
}

interface JobData extends JobStart {
  id: string;
}


export interface AgendaSettings extends JobSettings {
  /** Seconds a running job's lock lasts without a renewal; a dead process's job waits this long. */
  lock: number;
}

export class AgendaJobRunner implements JobRunner {
  readonly kind = 'agenda' as const;
  readonly #agenda: Agenda;
  readonly #status: Collection<StatusDoc>;
  /** The store's own rule: a database that does not answer is Unavailable (503). */
  readonly #mapError: (err: unknown) => unknown;
  readonly #settings: AgendaSettings;
  readonly #execute: JobExecutor;
  readonly #log: Logger;
  #sweeper: NodeJS.Timeout | undefined;

  private constructor(db: Db, settings: AgendaSettings, execute: JobExecutor, log: Logger, mapError: (err: unknown) => unknown) {
    this.#mapError = mapError;
    this.#settings = settings;
    this.#execute = execute;
    this.#log = log;
    this.#status = db.collection<StatusDoc>(JOB_COLLECTIONS.status);
    this.#agenda = new Agenda({
      backend: new MongoBackend({ mongo: db, collection: JOB_COLLECTIONS.agenda }),
      name: `simpleapi-${process.pid}`,
      processEvery: '1 second',
      maxConcurrency: settings.concurrency,
      defaultConcurrency: settings.concurrency,
      defaultLockLifetime: settings.lock * 1000,
      removeOnComplete: true,
    });
    this.#agenda.on('error', (err: Error) => log.warn({ err: { message: err.message } }, 'job engine error'));
    this.#agenda.define<JobData>(JOB_NAME, (job) => this.#run(job), { lockLifetime: settings.lock * 1000, concurrency: settings.concurrency });
  }

  /** Starts Agenda on the store's database; jobs begin to run here. */
  static async start(db: Db, settings: AgendaSettings, execute: JobExecutor, log: Logger, mapError: (err: unknown) => unknown): Promise<AgendaJobRunner> {
    const runner = new AgendaJobRunner(db, settings, execute, log, mapError);
    // The caps count a key's active jobs on every start: an index keeps that a range read.
    await runner.#status.createIndex({ capKey: 1, state: 1 }).catch(() => {});
    await runner.#status.createIndex({ state: 1 }).catch(() => {});
    await runner.#agenda.start();
    runner.#sweeper = setInterval(() => void runner.#sweep().catch(() => {}), 30_000);
    runner.#sweeper.unref();
    return runner;
  }

  /**
   * Queues a job once the caps allow it, counted in the database so they hold across instances.
   * Count, then insert: starts that race past the count together may pass a cap by as many as
   * raced (FerretDB has no transactions to close that gap).
   */
  async start(start: JobStart): Promise<string> {
    const id = crypto.randomUUID();
    const capKey = capKeyOf(start);
    const { maxPerOwner, maxTotal } = this.#settings;
    const active = { state: { $in: ['queued', 'running'] as JobView['state'][] } };
    try {
      if (maxTotal !== undefined && (await this.#status.countDocuments(active, { limit: maxTotal })) >= maxTotal) {
        throw new ApiError('TooManyRequests', `The job queue is full (${maxTotal} queued or running, --jobs-max-total); try again later`, { retryAfter: JOB_CAP_RETRY_AFTER });
      }
      if (maxPerOwner !== undefined && (await this.#status.countDocuments({ ...active, capKey }, { limit: maxPerOwner })) >= maxPerOwner) {
        const who = start.owner !== null ? 'this user has' : 'this address has';
        throw new ApiError('TooManyRequests', `Too many jobs: ${who} ${maxPerOwner} queued or running (--jobs-max-per-owner); try again when some have finished`, { retryAfter: JOB_CAP_RETRY_AFTER });
      }
      await this.#status.insertOne({ _id: id, method: start.method, owner: start.owner, capKey, state: 'queued', progress: null, created: now(), attempts: 0 });
      await this.#agenda.now<JobData>(JOB_NAME, { ...start, id });
    } catch (err) {
      if (err instanceof ApiError) throw err;
      throw this.#mapError(err);
    }
    return id;
  }

  /** Jobs queued on the database, by every instance: for metrics, read at scrape time. */
  queued(): Promise<number> {
    return this.#status.countDocuments({ state: 'queued' }, { maxTimeMS: 2000 });
  }

  async get(id: string): Promise<(JobView & { owner: string | null }) | null> {
    let doc: StatusDoc | null;
    try {
      doc = await this.#status.findOne({ _id: id });
    } catch (err) {
      throw this.#mapError(err);
    }
    if (doc === null || (doc.expiresAt !== undefined && doc.expiresAt.getTime() <= Date.now())) return null;
    const view: JobView & { owner: string | null } = { job_id: doc._id, method: doc.method, state: doc.state, progress: doc.progress, created: doc.created, owner: doc.owner };
    if (doc.result !== undefined) view.result = doc.result;
    if (doc.error !== undefined) view.error = doc.error;
    if (doc.finished !== undefined) view.finished = doc.finished;
    return view;
  }

  async close(graceSeconds: number): Promise<void> {
    clearInterval(this.#sweeper);
    // Agenda's stop waits for running jobs and unlocks the rest, so another instance takes them.
    await Promise.race([this.#agenda.stop(), new Promise((r) => setTimeout(r, graceSeconds * 1000).unref())]).catch(() => {});
  }

  /**
   * Agenda takes jobs in the order they were queued, so one owner's long jobs could fill every
   * slot. Like the in-process runner, at most `ownerConcurrency` of one owner's jobs run at once,
   * counted in the database across instances: of the owner's running jobs, the first by
   * (`runningSince`, id) keep their slots, and a job past them goes back to the queue a moment
   * later, behind the others, with its attempt given back. Claim first, then look: two instances
   * starting one owner's jobs together see the same order, so one of them yields (claims in the
   * same millisecond, or clocks apart, can still let both run: the share is kept, not guaranteed).
   * True when the job was put back.
   */
  async #putBackIfOwnerBusy(data: JobData): Promise<boolean> {
    const perOwner = ownerShareOf(this.#settings);
    try {
      const first = await this.#status.find({ capKey: capKeyOf(data), state: 'running' }, { projection: { _id: 1 } }).sort({ runningSince: 1, _id: 1 }).limit(perOwner).toArray();
      if (first.some((doc) => doc._id === data.id)) return false;
      // Queued again first: if that fails the job runs now, and its status stays true.
      await this.#agenda.schedule<JobData>(new Date(Date.now() + OWNER_BUSY_DELAY_MS), JOB_NAME, data);
      await this.#status.updateOne({ _id: data.id, state: 'running' }, { $set: { state: 'queued' }, $inc: { attempts: -1 }, $unset: { runningSince: '' } }).catch(() => {});
      return true;
    } catch {
      // The database did not answer: run it rather than risk losing it.
      return false;
    }
  }

  async #run(job: Job<JobData>): Promise<void> {
    const data = job.attrs.data;
    const claimed = await this.#status.findOneAndUpdate({ _id: data.id, state: { $in: ['queued', 'running'] } }, { $set: { state: 'running', runningSince: Date.now() }, $inc: { attempts: 1 } }, { returnDocument: 'after' });
    if (claimed === null) return; // already finished (a late duplicate run): nothing to do
    if (claimed.attempts > this.#settings.retries + 1) {
      const stops = claimed.attempts - 1;
      await this.#finish(data.id, { error: { code: 'InternalError', message: `The job's process stopped before it finished (${stops} time${stops === 1 ? '' : 's'})`, type: 'server' } });
      return;
    }
    if (await this.#putBackIfOwnerBusy(data)) return;
    const controller = new AbortController();
    // The lock is renewed while the job runs: only a dead process lets it expire.
    const renew = setInterval(() => void job.touch().catch(() => {}), Math.max(500, (this.#settings.lock * 1000) / 3));
    const seconds = jobTimeoutOf(data, this.#settings);
    const timeout = setTimeout(() => controller.abort(new DOMException('The job ran past its time limit', 'TimeoutError')), seconds * 1000);
    // Progress writes go one after another, and the final write waits for them: FerretDB 1.x
    // updates a document by reading and rewriting it whole, so two writes in flight lose one.
    let writes = Promise.resolve();
    const progress = (fraction: number, note: string) => {
      writes = writes.then(() => this.#status.updateOne({ _id: data.id, state: 'running' }, { $set: { progress: { fraction, note } } })).then(
        () => {},
        () => {},
      );
    };
    try {
      const result = await Promise.race([
        this.#execute(data, progress, controller.signal),
        new Promise<never>((_, reject) => controller.signal.addEventListener('abort', () => reject(new ApiError('Timeout', `${data.method} did not finish within ${seconds} s`)))),
      ]);
      await writes;
      await this.#finish(data.id, { result: result === undefined ? null : result });
    } catch (err) {
      await writes;
      await this.#finish(data.id, { error: jobErrorOf(err) });
    } finally {
      clearInterval(renew);
      clearTimeout(timeout);
    }
  }

  async #finish(id: string, outcome: { result: unknown } | { error: JobError }): Promise<void> {
    const finished = now();
    const set: Partial<StatusDoc> = { state: 'error' in outcome ? 'failed' : 'done', finished, expiresAt: new Date((finished + this.#settings.keep) * 1000) };
    if ('error' in outcome) set.error = outcome.error;
    else set.result = outcome.result;
    await this.#status.updateOne({ _id: id }, { $set: set }).catch((err: Error) => this.#log.error({ job: id, err: { message: err.message } }, 'could not record a finished job'));
  }

  async #sweep(): Promise<void> {
    await this.#status.deleteMany({ expiresAt: { $lte: new Date() } });
  }
}
