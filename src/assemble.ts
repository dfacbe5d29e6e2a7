/**
 * Puts the core together from a configuration: the method table, accounts, the job runner the
 * store offers (or the in-process one), the dispatcher and the handler. Both transports (the
 * standalone server and the Koa middleware) serve what this returns.
 */
import type { Logger } from 'pino';
import { AccountService } from './core/accounts.ts';
import type { Config } from './config.ts';
import { Dispatcher } from './core/dispatch.ts';
import { createHandler, HEALTH_PATHS, pathOf, type Handler } from './core/handler.ts';
import { NO_METRICS, type Metrics } from './core/metrics.ts';
import { MethodHolder } from './core/methods.ts';
import { createAjv, discoverMethods, type MethodTable } from './core/registry.ts';
import { RateLimits } from './core/rate-limit.ts';
import { createJobExecutor } from './jobs/execute.ts';
import { MemoryJobRunner } from './jobs/memory.ts';
import type { JobRunner } from './core/jobs.ts';
import { measuredStore } from './store/measured.ts';
import type { Store } from './store/types.ts';

export const VERSION = '0.1.0';

export interface CoreDeps {
  config: Config;
  store: Store;
  log: Logger;
  /** Already discovered methods; discovered from `config.methodsDir` when absent. */
  methods?: MethodTable;
  /** The job runner; the store's, or the in-process one, when absent. */
  jobs?: JobRunner;
}

export interface Core {
  readonly handler: Handler;
  /** True for the requests the core answers: the transport reads their body and hands them over. */
  claims(method: string, target: string): boolean;
  readonly methods: MethodHolder;
  readonly jobs: JobRunner;
  /** From now on answers ask clients to close their connection, and /health/ready says draining. */
  drain(): void;
  /** What the core reports to; NO_METRICS without `--metrics`. */
  readonly metrics: Metrics;
  /** The Prometheus scrape with `--metrics`, else null; served at /metrics on the main port unless `--metrics-port` is set. */
  readonly scrape: Scrape | null;
}

/** The text of a Prometheus scrape. */
export type Scrape = () => Promise<{ contentType: string; text: string }>;

/** prom-client is imported only when metrics are on. */
async function metricsOf(config: Config): Promise<{ metrics: Metrics; scrape: Scrape | null }> {
  if (!config.metrics.enabled) return { metrics: NO_METRICS, scrape: null };
  const { createPrometheusMetrics } = await import('./http/metrics.ts');
  const prom = createPrometheusMetrics();
  return { metrics: prom.metrics, scrape: prom.scrape };
}

/** @example const core = await assembleCore({ config, store, log }); await core.handler(request) */
export async function assembleCore(deps: CoreDeps): Promise<Core> {
  const { config, log } = deps;
  const { metrics, scrape } = await metricsOf(config);
  // One measuring wrapper for every store; without metrics the store is used as it is.
  const store = metrics.on ? measuredStore(deps.store, metrics) : deps.store;
  const methods = new MethodHolder(deps.methods ?? (await discoverMethods(config.methodsDir, createAjv())), { title: 'simpleapi', version: VERSION });
  const accounts = new AccountService(store, {
    sessionTtl: config.session.ttl,
    maxFailures: config.login.maxFailures,
    maxFailuresPerIp: config.login.maxFailuresPerIp,
    maxFailuresPerUser: config.login.maxFailuresPerUser,
    window: config.login.window,
    maxSessionsPerUser: config.session.maxPerUser,
  });
  const services = { store, accounts, log, maxSessionState: config.session.maxState };
  const jobs = deps.jobs ?? (await startJobs(config, store, methods, services, log, metrics));
  const queued = jobs.queued?.bind(jobs);
  if (queued !== undefined) metrics.watchJobs({ queued });
  const limits = await RateLimits.create(store, config.rateLimit, log);
  log.debug(`rate limits: counted in ${limits.where}`);
  const dispatcher = new Dispatcher(methods, { ...services, jobs }, { batchConcurrency: config.batchConcurrency, methodTimeout: config.methodTimeout, limits, metrics });
  const scrapeHere = scrape !== null && config.metrics.port < 0;
  let draining = false;
  const handler = createHandler({
    store,
    log,
    dispatcher,
    jobs,
    settings: {
      auth: { scheme: config.hmac.scheme, window: config.hmac.window, sessionTtl: config.session.ttl, touchFraction: config.session.touchFraction, keepOutcomes: config.retries.keep && config.hmac.scheme === 'v2', ...(limits.countedClaim === undefined ? {} : { countedClaim: limits.countedClaim }) },
      maxOutcome: config.retries.maxOutcome,
      maxDepth: config.json.maxDepth,
      batchLimit: config.batchLimit,
      bodyLimit: config.bodyLimit,
      answerLimit: config.answerLimit,
      streams: { max: config.stream.maxConcurrent, perAddress: config.stream.maxPerAddress },
      path: config.path,
      corsOrigins: config.cors.origins,
      consolePath: config.docs ? '/docs' : null,
    },
    draining: () => draining,
    metrics,
    ...(scrapeHere ? { scrape } : {}),
  });
  const healthPaths: ReadonlySet<string> = new Set(HEALTH_PATHS);
  return {
    handler,
    claims: (method, target) => {
      const path = pathOf(target);
      return path === config.path || healthPaths.has(path) || (method === 'GET' && path.startsWith('/jobs/')) || (scrapeHere && path === '/metrics');
    },
    methods,
    jobs,
    drain: () => {
      draining = true;
    },
    metrics,
    scrape,
  };
}

/** The store's job runner (Agenda on MongoDB), or one in this process, whose jobs die with it. */
async function startJobs(config: Config, store: Store, methods: MethodHolder, services: ConstructorParameters<typeof Dispatcher>[1], log: Logger, metrics: Metrics): Promise<JobRunner> {
  const execute = createJobExecutor(() => methods.current, services, metrics);
  if (store.startJobRunner !== undefined) {
    const runner = await store.startJobRunner(config.jobs, execute, log);
    log.info('jobs: background methods run on the database; any instance may run or report any job');
    return runner;
  }
  log.info(
    store.shared
      ? // No MySQL-backed job queue for Node fits (README, "Many instances"), and none is made here.
        `jobs: background methods run in this process: the ${store.description} store has no shared job queue, so a job runs on the instance that accepted it, /jobs/<id> answers there only, and queued and running jobs do not survive its restart`
      : 'jobs: background methods run in this process; queued and running jobs do not survive a restart',
  );
  return new MemoryJobRunner(config.jobs, execute);
}
