/**
 * The core's metrics in Prometheus form, with prom-client: loaded only with `--metrics`, so a
 * server without it neither imports the library nor pays for a report. `GET /metrics` answers on
 * the main port, or on `--metrics-port` alone; with `--workers` the primary process serves the sum
 * of its workers there (prom-client's AggregatorRegistry).
 */
import cluster from 'node:cluster';
import { createServer, type Server } from 'node:http';
import client from 'prom-client';
import type { JobGauges, Metrics } from '../core/metrics.ts';
import { FastCounter, FastHistogram } from './series.ts';

export interface PrometheusMetrics {
  readonly metrics: Metrics;
  readonly registry: client.Registry;
  /** The text of a scrape. */
  scrape(): Promise<{ contentType: string; text: string }>;
}

const SECONDS = 1000;
// From a sub-millisecond echo to a method near its default time limit.
const CALL_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const STORE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const BATCH_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];
/** A scrape does not wait longer than this for the database's job count. */
const QUEUE_COUNT_TIMEOUT_MS = 2000;

/**
 * The metrics and their registry. `defaults` adds prom-client's process and Node metrics (CPU,
 * memory, event-loop lag, GC, handles).
 *
 * @example const prom = createPrometheusMetrics(); prom.metrics.call('math.sum', 'ok', 0.4); await prom.scrape()
 */
export function createPrometheusMetrics(options: { defaults?: boolean } = {}): PrometheusMetrics {
  const registry = new client.Registry();
  const registers = [registry];
  if (options.defaults !== false) client.collectDefaultMetrics({ register: registry });

  // What every request touches is kept by the cheap series of ./series.ts; the rest is prom-client's own.
  const requests = new FastCounter(registry, 'simpleapi_http_requests_total', 'Requests the core answered, by route and HTTP status', ['route', 'status']);
  const requestSeconds = new FastHistogram(registry, 'simpleapi_http_request_duration_seconds', 'Time to answer a request (to the headers, for a stream), by route', ['route'], CALL_BUCKETS);
  const calls = new FastCounter(registry, 'simpleapi_calls_total', 'Method calls by method and outcome code (ok or the error code); batch entries count one each', ['method', 'code']);
  const callSeconds = new FastHistogram(registry, 'simpleapi_call_duration_seconds', 'Time a call took, by method', ['method'], CALL_BUCKETS);
  const refused = new client.Counter({ name: 'simpleapi_refused_requests_total', help: 'Requests answered with an error before any call ran (content type, body, JSON, signature), by code', labelNames: ['code'], registers });
  const batchSize = new FastHistogram(registry, 'simpleapi_batch_size', 'Entries in a JSON-RPC batch', [], BATCH_BUCKETS);
  const authFailures = new client.Counter({ name: 'simpleapi_auth_failures_total', help: 'Requests whose session or signature was refused, and session methods called without one, by reason', labelNames: ['reason'], registers });
  const rateLimited = new client.Counter({ name: 'simpleapi_rate_limited_total', help: 'Calls and requests refused with TooManyRequests (429)', registers });
  const retries = new client.Counter({ name: 'simpleapi_retries_answered_total', help: 'Answers replayed from a kept outcome (x-retried: 1) instead of running the call again', registers });
  const storeSeconds = new FastHistogram(registry, 'simpleapi_store_operation_duration_seconds', 'Time of a store operation, by operation', ['op'], STORE_BUCKETS);
  const storeErrors = new client.Counter({ name: 'simpleapi_store_errors_total', help: 'Store operations that failed, by operation', labelNames: ['op'], registers });
  const streams = new client.Gauge({ name: 'simpleapi_streams_open', help: 'Streaming answers being sent now', registers });
  const jobsRunning = new client.Gauge({ name: 'simpleapi_jobs_running', help: 'Background jobs running in this process', registers });
  const jobsFinished = new client.Counter({ name: 'simpleapi_jobs_finished_total', help: 'Background jobs that ended in this process, by method and outcome (done or failed)', labelNames: ['method', 'outcome'], registers });
  let jobGauges: JobGauges | undefined;
  new client.Gauge({
    name: 'simpleapi_jobs_queued',
    help: 'Background jobs waiting to run (on MongoDB: in the whole database)',
    registers,
    async collect() {
      if (jobGauges === undefined) return;
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), QUEUE_COUNT_TIMEOUT_MS)));
      try {
        const n = await Promise.race([Promise.resolve(jobGauges.queued()), late]);
        // A database that did not answer leaves the series out rather than reporting a wrong 0.
        if (n === null) this.reset();
        else this.set(n);
      } catch {
        this.reset();
      } finally {
        clearTimeout(timer);
      }
    },
  });
  if (cluster.isWorker) {
    // The primary of --workers asks each worker for this registry; prom-client's answering
    // listener is installed by the constructor.
    new client.AggregatorRegistry();
    client.AggregatorRegistry.setRegistries([registry]);
  }

  const metrics: Metrics = {
    on: true,
    request(route, status, ms) {
      requests.inc(route, String(status));
      requestSeconds.observe(route, ms / SECONDS);
    },
    call(method, code, ms) {
      calls.inc(method, code);
      callSeconds.observe(method, ms / SECONDS);
      if (code === 'TooManyRequests') rateLimited.inc();
    },
    refused(code) {
      refused.inc({ code });
      if (code === 'TooManyRequests') rateLimited.inc();
    },
    batch: (size) => batchSize.observe('', size),
    authFailure: (reason) => authFailures.inc({ reason }),
    retryAnswered: () => retries.inc(),
    store(op, ms, failed) {
      storeSeconds.observe(op, ms / SECONDS);
      if (failed) storeErrors.inc({ op });
    },
    streamOpened: () => streams.inc(),
    streamClosed: () => streams.dec(),
    jobStarted: () => jobsRunning.inc(),
    jobFinished(method, outcome) {
      jobsRunning.dec();
      jobsFinished.inc({ method, outcome });
    },
    watchJobs(gauges) {
      jobGauges = gauges;
    },
  };
  return {
    metrics,
    registry,
    scrape: async () => ({ contentType: registry.contentType, text: await registry.metrics() }),
  };
}

/**
 * A server of its own for `GET /metrics` (`--metrics-port`), so the scrape can stay on an internal
 * interface or port; anything else is 404.
 *
 * @example const server = await serveMetrics(prom.scrape, { port: 9464, host: '127.0.0.1' })
 */
export function serveMetrics(scrape: PrometheusMetrics['scrape'], at: { port: number; host: string }): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('Not found: metrics are at GET /metrics\n');
      return;
    }
    scrape().then(
      ({ contentType, text }) => res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(text),
      () => res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics could not be collected\n'),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

/**
 * The primary process of `--workers`: the sum of every worker's metrics on `--metrics-port`.
 *
 * @example await serveClusterMetrics({ port: 9464, host: '127.0.0.1' })
 */
export function serveClusterMetrics(at: { port: number; host: string }): Promise<Server> {
  const aggregator = new client.AggregatorRegistry();
  return serveMetrics(async () => ({ contentType: aggregator.contentType, text: await aggregator.clusterMetrics() }), at);
}
