/**
 * The in-process job runner of the embedded store: the same behaviour as on MongoDB within one
 * process, and nothing survives a restart (the start-up log says so).
 */
import { v4 as uuidv4 } from 'uuid';
import { ApiError } from '../core/errors.ts';
import type { JobRunner, JobSettings, JobStart, JobView } from './types.ts';
import { jobErrorOf, type JobExecutor } from './execute.ts';
import { nowSeconds as now } from '../core/clock.ts';

interface Entry {
  view: JobView;
  owner: string | null;
  start: JobStart;
  controller: AbortController;
  /** When the finished job is forgotten (Unix seconds). */
  expires?: number;
}


export class MemoryJobRunner implements JobRunner {
  readonly kind = 'memory' as const;
  readonly #jobs = new Map<string, Entry>();
  readonly #queue: Entry[] = [];
  readonly #settings: JobSettings;
  readonly #execute: JobExecutor;
  #running = new Set<Promise<void>>();
  #closed = false;

  constructor(settings: JobSettings, execute: JobExecutor) {
    this.#settings = settings;
    this.#execute = execute;
  }

  async start(start: JobStart): Promise<string> {
    if (this.#closed) throw new ApiError('Unavailable', 'The server is shutting down', { retryAfter: 5 });
    const id = uuidv4();
    const entry: Entry = {
      view: { job_id: id, method: start.method, state: 'queued', progress: null, created: now() },
      owner: start.owner,
      start,
      controller: new AbortController(),
    };
    this.#jobs.set(id, entry);
    this.#queue.push(entry);
    this.#pump();
    return id;
  }

  queued(): number {
    return this.#queue.length;
  }

  async get(id: string): Promise<(JobView & { owner: string | null }) | null> {
    this.#forgetExpired();
    const entry = this.#jobs.get(id);
    return entry === undefined ? null : { ...structuredClone(entry.view), owner: entry.owner };
  }

  async close(graceSeconds: number): Promise<void> {
    this.#closed = true;
    for (const entry of this.#queue.splice(0)) this.#finish(entry, { code: 'Unavailable', message: 'The server shut down before the job ran', type: 'server' });
    const all = Promise.all(this.#running);
    const cut = new Promise<void>((resolve) => setTimeout(resolve, graceSeconds * 1000).unref());
    await Promise.race([all, cut]);
    for (const entry of this.#jobs.values()) if (entry.view.state === 'running') entry.controller.abort(new Error('shutdown'));
  }

  #pump(): void {
    while (!this.#closed && this.#running.size < this.#settings.concurrency && this.#queue.length > 0) {
      const entry = this.#queue.shift()!;
      const run = this.#run(entry).finally(() => {
        this.#running.delete(run);
        this.#pump();
      });
      this.#running.add(run);
    }
  }

  async #run(entry: Entry): Promise<void> {
    entry.view.state = 'running';
    // No job stays "running" forever: past the job timeout it is failed and its signal aborted.
    const timer = setTimeout(() => {
      entry.controller.abort(new DOMException('The job ran past its time limit', 'TimeoutError'));
      this.#finish(entry, { code: 'Timeout', message: `${entry.view.method} did not finish within ${this.#settings.timeout} s`, type: 'server' });
    }, this.#settings.timeout * 1000);
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
    }
  }

  #finish(entry: Entry, error?: ReturnType<typeof jobErrorOf>): void {
    if (error !== undefined) {
      entry.view.state = 'failed';
      entry.view.error = error;
    }
    entry.view.finished = now();
    entry.expires = entry.view.finished + this.#settings.keep;
  }

  #forgetExpired(): void {
    const t = now();
    for (const [id, entry] of this.#jobs) if (entry.expires !== undefined && entry.expires <= t) this.#jobs.delete(id);
  }
}
