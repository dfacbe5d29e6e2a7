/**
 * What the core reports for operators, as an interface with no metrics library behind it: the
 * Prometheus implementation lives in src/http/metrics.ts and is loaded only with `--metrics`.
 * Without it the core holds `NO_METRICS`, and the hot path checks `on` once instead of paying for
 * timers and label lookups.
 *
 * Every label value the core passes is bounded: method names come from the method table (anything
 * else is `unknown`), codes from the error table or a method's own `ApiError` codes, routes and
 * store operations from the fixed lists below.
 */

/** The routes the core answers, as metric labels. */
export type Route = 'endpoint' | 'preflight' | 'jobs' | 'health' | 'health_live' | 'health_ready' | 'metrics';

/** Why a request's authentication was refused (§6 order). */
export type AuthFailureReason =
  | 'bad_session_id'
  | 'unknown_session'
  | 'missing_mac'
  | 'bad_timestamp'
  | 'bad_nonce'
  | 'bad_retry'
  | 'mac_mismatch'
  | 'clock_skew'
  | 'nonce_replayed'
  /** The store failed at step 4 (the nonce claim), after the MAC verified. */
  | 'store_unavailable'
  /** The embedded store holds as many nonces of this user as it may (store/index.ts). */
  | 'too_many_nonces'
  | 'session_required';

/** The label of a call to a name that is not in the method table. */
export const UNKNOWN_METHOD = 'unknown';

/** Job counts a runner can report when scraped. */
export interface JobGauges {
  /** Jobs waiting to run (this process's queue, or the database's for a shared runner). */
  queued(): number | Promise<number>;
}

export interface Metrics {
  /** False for the no-op: callers skip timing altogether. */
  readonly on: boolean;
  /** A request the core answered: its route, HTTP status and time to the response (headers, for a stream). */
  request(route: Route, status: number, ms: number): void;
  /** One call's outcome: `code` is `ok` or the error code; `method` a served name or `unknown`. */
  call(method: string, code: string, ms: number): void;
  /** A request answered with an error before any call ran (content type, body, JSON, §6, a limit). */
  refused(code: string): void;
  /** The number of entries of a JSON-RPC batch. */
  batch(size: number): void;
  authFailure(reason: AuthFailureReason): void;
  /** An answer replayed from a kept outcome (`x-retried: 1`) instead of running the call again. */
  retryAnswered(): void;
  /** One store operation: its name, time, and whether it threw. */
  store(op: string, ms: number, failed: boolean): void;
  streamOpened(): void;
  streamClosed(): void;
  jobStarted(method: string): void;
  /** A job's method returned (`done`) or threw (`failed`) in this process. */
  jobFinished(method: string, outcome: 'done' | 'failed'): void;
  /** Where to read the job queue's depth from at scrape time. */
  watchJobs(gauges: JobGauges): void;
}

const nothing = (): void => {};

/** Metrics off: every report is a function that does nothing. */
export const NO_METRICS: Metrics = {
  on: false,
  request: nothing,
  call: nothing,
  refused: nothing,
  batch: nothing,
  authFailure: nothing,
  retryAnswered: nothing,
  store: nothing,
  streamOpened: nothing,
  streamClosed: nothing,
  jobStarted: nothing,
  jobFinished: nothing,
  watchJobs: nothing,
};
