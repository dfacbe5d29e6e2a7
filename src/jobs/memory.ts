/**
 * The in-process job runner of the embedded store: the same behaviour as on MongoDB within one
 * process, and nothing survives a restart (the start-up log says so).
 *
 * Bounded and fair: queued plus running jobs are capped per owner (a user, or a client address
 * for public jobs) and in total; each owner has its own queue and the runner takes from the
 * owners in turn (round-robin), with at most `ownerConcurrency` of one owner's jobs running, so
 * one user's long jobs cannot hold every slot while another's wait.
 */
import { v4 as uuidv4 } from 'uuid';
import { ApiError } from '../core/errors.ts';
import { Turns } from '../core/concurrency.ts';
import { capKeyOf, JOB_CAP_RETRY_AFTER, jobTimeoutOf, ownerShareOf, type JobRunner, type JobSettings, type JobStart, type JobView } from '../core/jobs.ts';
import { jobErrorOf, type JobExecutor } from './execute.ts';
import { nowSeconds as now } from '../core/clock.ts';

interface Entry {
  view: JobView;
  owner: string | null;
  capKey: string;
  start: JobStart;
  controller: AbortController;
  /** When the finished job is forgotten (Unix seconds). */
  expires?: number;
}

export class MemoryJobRunner implements JobRunner {
  readonly kind = 'memory' as const;
  readonly #jobs = new Map<string, Entry>();
  /** Jobs waiting, by owner (cap key), served in turns. */
  readonly #waiting = new Turns<Entry>();
  /** Jobs running, by owner; an owner is here while it has one running. */
  readonly #runningBy = new Map<string, number>();
  /** Finished jobs in the order they finish, which (one `keep` for all) is the order they expire. */
  #finished: Entry[] = [];
  #finishedHead = 0;
  #active = 0;
  readonly #settings: JobSettings;
  readonly #execute: JobExecutor;
  #running = new Set<Promise<void>>();
  #closed = false;

  constructor(settings: JobSettings, execute: JobExecutor) {
    this.#settings = settings;
    this.#execute = execute;
  }

  /** Jobs waiting to run (for metrics): the owners' queues together. */
  queued(): number {
    return this.#waiting.size;
  }

  /** Queued plus running jobs, in all and of one owner (for tests and the abuse bench). */
  load(capKey?: string): number {
    if (capKey === undefined) return this.#active;
    return (this.#runningBy.get(capKey) ?? 0) + this.#waiting.sizeOf(capKey);
  }

  async start(start: JobStart): Promise<string> {
    if (this.#closed) throw new ApiError('Unavailable', 'The server is shutting down', { retryAfter: 5 });
    this.#forgetExpired();
    const capKey = capKeyOf(start);
    const { maxPerOwner, maxTotal } = this.#settings;
    if (maxTotal !== undefined && this.#active >= maxTotal) {
      throw new ApiError('TooManyRequests', `The job queue is full (${maxTotal} queued or running, --jobs-max-total); try again later`, { retryAfter: JOB_CAP_RETRY_AFTER });
    }
    if (maxPerOwner !== undefined && this.load(capKey) >= maxPerOwner) {
      const who = start.owner !== null ? 'this user has' : 'this address has';
      throw new ApiError('TooManyRequests', `Too many jobs: ${who} ${maxPerOwner} queued or running (--jobs-max-per-owner); try again when some have finished`, { retryAfter: JOB_CAP_RETRY_AFTER });
    }
    const id = uuidv4();
    const entry: Entry = {
      view: { job_id: id, method: start.method, state: 'queued', progress: null, created: now() },
      owner: start.owner,
      capKey,
      start,
      controller: new AbortController(),
    };
    this.#jobs.set(id, entry);
    this.#waiting.push(capKey, entry);
    this.#active++;
    this.#pump();
    return id;
  }

  /** One map lookup, and the expired jobs at the front of the finished list dropped: O(1) amortised. */
  async get(id: string): Promise<(JobView & { owner: string | null }) | null> {
    this.#forgetExpired();
    const entry = this.#jobs.get(id);
    return entry === undefined ? null : { ...structuredClone(entry.view), owner: entry.owner };
  }

  async close(graceSeconds: number): Promise<void> {
    this.#closed = true;
    for (const entry of this.#waiting.drain()) this.#finish(entry, { code: 'Unavailable', message: 'The server shut down before the job ran', type: 'server' });
    const all = Promise.all(this.#running);
    const cut = new Promise<void>((resolve) => setTimeout(resolve, graceSeconds * 1000).unref());
    await Promise.race([all, cut]);
    for (const entry of this.#jobs.values()) if (entry.view.state === 'running') entry.controller.abort(new Error('shutdown'));
  }

  /** The next job by turns: the first owner that has one waiting and a running slot of its own free. */
  #next(): Entry | undefined {
    const perOwner = ownerShareOf(this.#settings);
    const entry = this.#waiting.next((key) => (this.#runningBy.get(key) ?? 0) < perOwner);
    if (entry !== undefined) this.#runningBy.set(entry.capKey, (this.#runningBy.get(entry.capKey) ?? 0) + 1);
    return entry;
  }

  #pump(): void {
    while (!this.#closed && this.#running.size < this.#settings.concurrency) {
      const entry = this.#next();
      if (entry === undefined) return;
      const run = this.#run(entry).finally(() => {
        this.#running.delete(run);
        this.#pump();
      });
      this.#running.add(run);
    }
  }

  async #run(entry: Entry): Promise<void> {
    entry.view.state = 'running';
    const seconds = jobTimeoutOf(entry.start, this.#settings);
    // No job stays "running" forever: past its time limit it is failed and its signal aborted.
    const timer = setTimeout(() => {
      entry.controller.abort(new DOMException('The job ran past its time limit', 'TimeoutError'));
      this.#finish(entry, { code: 'Timeout', message: `${entry.view.method} did not finish within ${seconds} s`, type: 'server' });
    }, seconds * 1000);
    try {
      const result = await this.#execute({ ...entry.start, id: entry.view.job_id }, (fraction, note) => {
        if (entry.view.state === 'running') entry.view.progress = { fraction, note };
      }, entry.controller.signal);
      if (entry.view.state === 'running') {
        entry.view.state = 'done';
        entry.view.result = result === undefined ? null : structuredClone(result);
        this.#finish(entry);
      }
    } catch (err) {
      if (entry.view.state === 'running') this.#finish(entry, jobErrorOf(err));
    } finally {
      clearTimeout(timer);
      this.#release(entry);
    }
  }

  /** The job no longer runs for its owner; an owner with none running is forgotten. */
  #release(entry: Entry): void {
    const running = (this.#runningBy.get(entry.capKey) ?? 1) - 1;
    if (running > 0) this.#runningBy.set(entry.capKey, running);
    else this.#runningBy.delete(entry.capKey);
  }

  #finish(entry: Entry, error?: ReturnType<typeof jobErrorOf>): void {
    if (entry.expires !== undefined) return;
    if (error !== undefined) {
      entry.view.state = 'failed';
      entry.view.error = error;
    }
    entry.view.finished = now();
    entry.expires = entry.view.finished + this.#settings.keep;
    this.#active--;
    this.#finished.push(entry);
    this.#forgetExpired();
  }

  /** Expired jobs go, and past `maxTotal` finished ones the oldest go early: results take memory too. */
  #forgetExpired(): void {
    const t = now();
    const keepAtMost = this.#settings.maxTotal ?? Infinity;
    while (this.#finishedHead < this.#finished.length && (this.#finished[this.#finishedHead]!.expires! <= t || this.#finished.length - this.#finishedHead > keepAtMost)) {
      this.#jobs.delete(this.#finished[this.#finishedHead]!.view.job_id);
      this.#finishedHead++;
    }
    if (this.#finishedHead > 1024 && this.#finishedHead * 2 > this.#finished.length) {
      this.#finished = this.#finished.slice(this.#finishedHead);
      this.#finishedHead = 0;
    }
  }
}
