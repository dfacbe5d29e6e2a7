/**
 * Puts the core together from a configuration: the method table, accounts, the job runner the
 * store offers (or the in-process one), the dispatcher and the handler. Both transports (the
 * standalone server and the Koa middleware) serve what this returns.
 */
import type { Logger } from 'pino';
import { AccountService } from './core/accounts.ts';
import type { Config } from './config.ts';
import { Dispatcher } from './core/dispatch.ts';
import { createHandler, pathOf, type Handler } from './core/handler.ts';
import { MethodHolder } from './core/methods.ts';
import { createAjv, discoverMethods, type MethodTable } from './core/registry.ts';
import { createJobExecutor } from './jobs/execute.ts';
import { MemoryJobRunner } from './jobs/memory.ts';
import type { JobRunner } from './jobs/types.ts';
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
  /** From now on answers ask clients to close their connection. */
  drain(): void;
}

/** @example const core = await assembleCore({ config, store, log }); await core.handler(request) */
export async function assembleCore(deps: CoreDeps): Promise<Core> {
  const { config, store, log } = deps;
  const methods = new MethodHolder(deps.methods ?? (await discoverMethods(config.methodsDir, createAjv())), { title: 'simpleapi', version: VERSION });
  const accounts = new AccountService(store, {
    sessionTtl: config.session.ttl,
    maxFailures: config.login.maxFailures,
    maxFailuresPerIp: config.login.maxFailuresPerIp,
    window: config.login.window,
  });
  const services = { store, accounts, log };
  const jobs = deps.jobs ?? (await startJobs(config, store, methods, services, log));
  const dispatcher = new Dispatcher(methods, { ...services, jobs }, { batchConcurrency: config.batchConcurrency, methodTimeout: config.methodTimeout });
  let draining = false;
  const handler = createHandler({
    store,
    log,
    dispatcher,
    jobs,
    settings: {
      auth: { scheme: config.hmac.scheme, window: config.hmac.window, sessionTtl: config.session.ttl, touchFraction: config.session.touchFraction, keepOutcomes: config.retries.keep && config.hmac.scheme === 'v2' },
      maxOutcome: config.retries.maxOutcome,
      maxDepth: config.json.maxDepth,
      batchLimit: config.batchLimit,
      bodyLimit: config.bodyLimit,
      path: config.path,
      corsOrigins: config.cors.origins,
      consolePath: config.docs ? '/docs' : null,
    },
    draining: () => draining,
  });
  return {
    handler,
    claims: (method, target) => {
      const path = pathOf(target);
      return path === config.path || path === '/health' || (method === 'GET' && path.startsWith('/jobs/'));
    },
    methods,
    jobs,
    drain: () => {
      draining = true;
    },
  };
}

/** The store's job runner (Agenda on MongoDB), or one in this process, whose jobs die with it. */
async function startJobs(config: Config, store: Store, methods: MethodHolder, services: ConstructorParameters<typeof Dispatcher>[1], log: Logger): Promise<JobRunner> {
  const execute = createJobExecutor(() => methods.current, services);
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
