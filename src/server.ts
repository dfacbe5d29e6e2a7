/**
 * The HTTP side: the Koa app (`/health`, `/jobs/<id>`, `/docs`, CORS preflight, and the endpoint
 * when a user added middleware), the request listener that sends POSTs to the endpoint
 * (endpoint.ts) directly otherwise, and listening on TCP or TLS, a Unix socket, or both.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import type { Logger } from 'pino';
import { AccountService } from './accounts.ts';
import { ConfigError, type Config } from './config.ts';
import { buildOpenRpc, discoverRecord } from './discover.ts';
import { Dispatcher } from './dispatch.ts';
import { createConsole } from './docs.ts';
import { createEndpoint, requestIdOf } from './endpoint.ts';
import { createRequestLine } from './log.ts';
import { listenSocket, listenTcp } from './http/listen.ts';
import { authenticate, type AuthSettings } from './auth.ts';
import { ApiError, simpleErrorBody, toApiError } from './errors.ts';
import { createJobExecutor } from './jobs/execute.ts';
import { MemoryJobRunner } from './jobs/memory.ts';
import type { JobRunner } from './jobs/types.ts';
import { createAjv, discoverMethods, type MethodRecord, type MethodTable } from './registry.ts';
import { RequestScope } from './scope.ts';
import type { Scheme } from './signing.ts';
import type { Store } from './store/types.ts';
import type { MongoStore } from './store/mongo.ts';
import { nowSeconds } from './clock.ts';

export const VERSION = '0.1.0';

export interface ServerDeps {
  config: Config;
  store: Store;
  log: Logger;
  /** Already discovered methods; discovered from `config.methodsDir` when absent. */
  methods?: MethodTable;
  /** The job runner; the in-process one when absent. */
  jobs?: JobRunner;
}

export interface RunningServer {
  readonly app: Koa;
  readonly methods: MethodTable;
  readonly store: Store;
  /** The TCP address when serving TCP. */
  readonly address: AddressInfo | null;
  /** `http://host:port` when serving TCP. */
  readonly url: string | null;
  readonly socketPath: string | null;
  readonly jobs: JobRunner;
  /** Serves another method table (the built-ins are added); calls already running keep theirs. */
  setMethods(table: MethodTable): void;
  /** Stops accepting and waits up to `graceSeconds` (default: config.shutdownGrace) for open requests. */
  close(graceSeconds?: number): Promise<void>;
}

function withBuiltins(methods: MethodTable): MethodTable {
  const table: Record<string, MethodRecord> = Object.assign(Object.create(null), methods);
  let document: unknown;
  table['rpc.discover'] = discoverRecord(() => (document ??= buildOpenRpc(table, { title: 'simpleapi', version: VERSION })));
  return table;
}

/**
 * Builds the Koa app for a configuration; `listen` is separate so tests can use `app.callback()`.
 *
 * @example const app = await buildApp({ config, store: new MemoryStore(), log })
 */
export async function buildApp(deps: ServerDeps): Promise<{
  app: Koa;
  methods: MethodTable;
  listener: (req: IncomingMessage, res: ServerResponse) => void;
  drain: () => void;
  jobs: JobRunner;
  setMethods: (table: MethodTable) => void;
}> {
  const { config, store, log } = deps;
  const methods = withBuiltins(deps.methods ?? (await discoverMethods(config.methodsDir, createAjv())));
  const accounts = new AccountService(store, {
    sessionTtl: config.session.ttl,
    maxFailures: config.login.maxFailures,
    maxFailuresPerIp: config.login.maxFailuresPerIp,
    window: config.login.window,
  });
  let current = methods;
  const jobs = deps.jobs ?? (await startJobRunner(config, store, () => current, log));
  const dispatcher = new Dispatcher(methods, { store, accounts, log, jobs }, { batchConcurrency: config.batchConcurrency, methodTimeout: config.methodTimeout });
  const cors = corsPolicy(config.cors.origins);
  let draining = false;
  const authSettings = { window: config.hmac.window, sessionTtl: config.session.ttl, touchFraction: config.session.touchFraction };

  const clientIp = config.trustProxy ? forwardedIp : socketIp;
  const endpoint = createEndpoint({
    store,
    log,
    dispatcher,
    auth: authSettings,
    scheme: config.hmac.scheme,
    bodyLimit: config.bodyLimit,
    batchLimit: config.batchLimit,
    maxDepth: config.json.maxDepth,
    clientIp,
    corsHeaders: cors.headers,
    draining: () => draining,
    respondRaw: (koa, invoke) => respondRaw(app, log, koa, invoke),
  });

  const docs = config.docs ? createConsole(config.path) : undefined;
  const app = new Koa();
  app.silent = true;
  app.on('error', (err: Error) => log.error({ err }, 'unhandled error in the HTTP layer'));

  const requestLine = createRequestLine(log);
  app.use(async (ctx, next) => {
    if (ctx.path === config.path && ctx.method === 'POST') {
      // Reached through Koa only when a user's middleware was put before this one.
      ctx.respond = false;
      ctx.state[IN_KOA] = true;
      await endpoint(ctx.req, ctx.res, () => ctx);
      return;
    }
    const started = performance.now();
    const requestId = requestIdOf(ctx.req);
    ctx.set('x-request-id', requestId);
    try {
      if (ctx.path === config.path && ctx.method === 'OPTIONS') {
        cors.preflight(ctx);
      } else if (docs !== undefined && ctx.path.startsWith('/docs') && (await docs(ctx))) {
        // the console's page or one of its files
      } else if (ctx.path.startsWith('/jobs/') && ctx.method === 'GET') {
        await answerJob(ctx, jobs, requestId, { store, authSettings, scheme: config.hmac.scheme, clientIp });
      } else if (ctx.path === '/health' && (ctx.method === 'GET' || ctx.method === 'HEAD')) {
        const up = await store.ping().catch(() => false);
        ctx.status = up ? 200 : 503;
        ctx.type = 'json';
        ctx.body = up ? '{"status":"ok"}' : '{"status":"degraded","db":"down"}';
      } else if (ctx.path === config.path) {
        ctx.status = 405;
        ctx.set('Allow', 'POST');
        ctx.type = 'json';
        ctx.body = JSON.stringify({ error: { code: 'InvalidRequest', message: `Use POST ${config.path}`, type: 'invalidRequest' } });
      } else {
        // Not ours: a user's routes added with app.use() come next; 404 when none answers.
        await next();
        if (ctx.body === undefined && ctx.status === 404) {
          ctx.status = 404; // set explicitly, or Koa makes it 200 when the body is assigned
          ctx.type = 'json';
          ctx.body = JSON.stringify({ error: { code: 'NotFound', message: `No endpoint at ${ctx.path.slice(0, 200)}`, type: 'notFound' } });
        }
      }
    } finally {
      requestLine(requestId, `${ctx.method} ${ctx.path.slice(0, 200)}`, ctx.status, performance.now() - started);
    }
  });

  /**
   * The request listener. POST to the endpoint skips Koa while no middleware of a user's stands
   * before this module's (Koa's context, delegates and response handling cost more than the rest
   * of the hot path); otherwise everything goes through Koa. Koa composes its middleware when
   * callback() is called, so the handler is made again whenever the list has changed.
   */
  const own = app.middleware[0];
  let composed = app.middleware.length;
  let koaHandler = app.callback();
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    if (app.middleware.length !== composed) {
      composed = app.middleware.length;
      koaHandler = app.callback();
    }
    if (app.middleware[0] === own && req.method === 'POST' && pathOf(req.url) === config.path) {
      void endpoint(req, res, () => app.createContext(req, res));
      return;
    }
    void koaHandler(req, res);
  };
  return {
    app,
    methods,
    listener,
    drain: () => {
      draining = true;
    },
    jobs,
    setMethods: (table: MethodTable) => {
      current = withBuiltins(table);
      dispatcher.setMethods(current);
    },
  };
}

// Marks a Koa context whose request runs inside Koa's own pipeline (user middleware present).
const IN_KOA = '__simpleapiInKoa';

/** Agenda on MongoDB; on the embedded store, a runner in this process (its jobs die with it). */
async function startJobRunner(config: Config, store: Store, methods: () => MethodTable, log: Logger): Promise<JobRunner> {
  const execute = createJobExecutor(methods, store, log);
  if (store.kind === 'mongo') {
    const { AgendaJobRunner } = await import('./jobs/agenda.ts');
    const runner = await AgendaJobRunner.start(store as MongoStore, config.jobs, execute, log);
    log.info('jobs: background methods run on Agenda over the database; any instance may run or report any job');
    return runner;
  }
  log.info('jobs: background methods run in this process on the embedded store; queued and running jobs do not survive a restart');
  return new MemoryJobRunner(config.jobs, execute);
}

/**
 * A raw method's turn: it sets ctx.koa's status, headers and body (or writes ctx.koa.res itself),
 * and Koa sends that. A throw before anything was sent still gets the §4 error body.
 */
async function respondRaw(app: Koa, log: Logger, koa: Koa.Context, invoke: () => unknown): Promise<void> {
  const run = async (ctx: Koa.Context) => {
    try {
      await invoke();
    } catch (err) {
      const error = toApiError(err);
      if (error.code === 'InternalError') log.error({ err }, 'raw method threw');
      if (!ctx.headerSent) {
        ctx.status = error.status;
        ctx.type = 'json';
        ctx.body = JSON.stringify(simpleErrorBody(error));
      }
    }
  };
  if (koa.state[IN_KOA] === true) {
    koa.respond = true;
    await run(koa);
    return;
  }
  // Koa's own request handling around the method, so ctx.body is sent as Koa sends it.
  await (app as unknown as { handleRequest(ctx: Koa.Context, fn: (ctx: Koa.Context) => Promise<void>): Promise<void> }).handleRequest(koa, run);
}

interface JobAuth {
  store: Store;
  authSettings: AuthSettings;
  scheme: Scheme;
  clientIp: (req: IncomingMessage) => string;
}

/**
 * GET /jobs/<id>: 202 with the state while it is queued or running, 200 once it is done or
 * failed. A job started with a session is readable only by a signed request of the same user
 * (signed like any call, over an empty body), and the answer is signed back.
 */
async function answerJob(ctx: Koa.Context, jobs: JobRunner, requestId: string, auth: JobAuth): Promise<void> {
  const id = ctx.path.slice('/jobs/'.length);
  const scope = new RequestScope(requestId, auth.clientIp(ctx.req), ctx.req, ctx.res, () => ctx, auth.scheme);
  let status: number;
  let body: unknown;
  try {
    const pending = authenticate(scope, ctx.req.headers, Buffer.alloc(0), auth.store, auth.authSettings);
    if (pending !== undefined) await pending;
    const job = /^[A-Za-z0-9-]{1,64}$/.test(id) ? await jobs.get(id) : null;
    if (job === null) throw new ApiError('NotFound', 'No job with that id (finished jobs are kept for --jobs-keep seconds)');
    const { owner, ...view } = job;
    if (owner !== null) {
      if (scope.session === null) throw new ApiError('Unauthenticated', 'This job was started with a session: sign the request');
      if (scope.session.userKey !== owner) throw new ApiError('Forbidden', 'This job belongs to another user');
    }
    status = view.state === 'queued' || view.state === 'running' ? 202 : 200;
    body = view;
  } catch (err) {
    const error = toApiError(err);
    status = error.status;
    body = simpleErrorBody(error);
  }
  const text = JSON.stringify(body);
  ctx.status = status;
  ctx.type = 'json';
  ctx.body = text;
  const mac = scope.signResponse(text);
  if (mac !== undefined) ctx.set('x-hmac', mac);
}

function socketIp(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? '';
}

/** With --trust-proxy: the first address of X-Forwarded-For (the client, as the proxy saw it). */
function forwardedIp(req: IncomingMessage): string {
  const header = req.headers['x-forwarded-for'];
  const first = (Array.isArray(header) ? header[0] : header)?.split(',')[0]?.trim();
  return first !== undefined && first !== '' ? first : socketIp(req);
}

const CORS_ALLOWED_HEADERS = 'content-type, x-session-id, x-timestamp, x-nonce, x-hmac, x-request-id';
const CORS_EXPOSED_HEADERS = 'x-hmac, x-request-id, retry-after';

/** CORS for the origins listed in --cors-origins, exactly; off (no headers at all) when none are. */
function corsPolicy(origins: string): {
  headers: (req: IncomingMessage) => Record<string, string> | undefined;
  preflight: (ctx: Koa.Context) => void;
} {
  const allowed = new Set(origins.split(',').filter((o) => o !== ''));
  const headers = (req: IncomingMessage): Record<string, string> | undefined => {
    if (allowed.size === 0) return undefined;
    const origin = req.headers.origin;
    if (origin === undefined || !allowed.has(origin)) return undefined;
    return { 'access-control-allow-origin': origin, 'access-control-expose-headers': CORS_EXPOSED_HEADERS, vary: 'Origin' };
  };
  return {
    headers,
    preflight(ctx) {
      const h = headers(ctx.req);
      ctx.status = 204;
      if (h === undefined) return;
      ctx.set(h);
      ctx.set({ 'access-control-allow-methods': 'POST', 'access-control-allow-headers': CORS_ALLOWED_HEADERS, 'access-control-max-age': '600' });
    },
  };
}

/** The path of a request URL, without its query string. */
function pathOf(url: string | undefined): string {
  if (url === undefined) return '';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/** Stops accepting, lets open requests finish for `graceSeconds`, then cuts what is left. */
function closeServer(server: Server, graceSeconds: number): Promise<void> {
  return new Promise((resolve) => {
    const cut = setTimeout(() => server.closeAllConnections(), graceSeconds * 1000);
    cut.unref();
    // A keep-alive connection that goes idle after its last answer is closed too.
    const idle = setInterval(() => server.closeIdleConnections(), 100);
    server.close(() => {
      clearTimeout(cut);
      clearInterval(idle);
      resolve();
    });
    server.closeIdleConnections();
  });
}

/** An HTTP or, with tls.cert and tls.key, an HTTPS server with the configured limits. */
function createNodeServer(config: Config, handler: (req: IncomingMessage, res: ServerResponse) => void): Server {
  const options = {
    headersTimeout: config.http.headersTimeout * 1000,
    requestTimeout: Math.max(config.http.requestTimeout, config.http.headersTimeout) * 1000,
    keepAliveTimeout: config.http.keepAliveTimeout * 1000,
    // Node checks the two timeouts above on this interval (30 s by default).
    connectionsCheckingInterval: 1000,
  };
  let server: Server;
  if (config.tls.cert !== '' || config.tls.key !== '') {
    if (config.tls.cert === '' || config.tls.key === '') throw new ConfigError('--tls-cert and --tls-key go together');
    let tls: { cert: Buffer; key: Buffer };
    try {
      tls = { cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) };
    } catch (err) {
      throw new ConfigError(`cannot read the TLS certificate or key: ${(err as Error).message}`);
    }
    server = createHttpsServer({ ...options, ...tls }, handler) as unknown as Server;
  } else {
    server = createHttpServer(options, handler);
  }
  server.maxConnections = config.http.maxConnections;
  return server;
}

/**
 * Builds the app and listens on TCP (unless `port` is -1) and on `socket` when set.
 *
 * @example const server = await startServer({ config, store, log }); console.log(server.url)
 */
export async function startServer(deps: ServerDeps): Promise<RunningServer> {
  const { config, store } = deps;
  const { app, methods, listener: handler, drain, jobs, setMethods } = await buildApp(deps);
  const servers: Server[] = [];
  let address: AddressInfo | null = null;
  let socketPath: string | null = null;
  let releaseSocket = () => {};
  // Nonces live as long as the signing window: sweeping at least that often keeps the embedded
  // store's memory level under steady signed traffic.
  const sweepEvery = Math.min(60, config.hmac.window) * 1000;
  const sweeper = setInterval(() => void store.sweep(nowSeconds()).catch(() => {}), sweepEvery);
  sweeper.unref();
  try {
    if (config.port >= 0) {
      const tcp = createNodeServer(config, handler);
      await listenTcp(tcp, config.port, config.host);
      servers.push(tcp);
      address = tcp.address() as AddressInfo;
    }
    if (config.socket !== '') {
      const unix = createNodeServer({ ...config, tls: { cert: '', key: '' } }, handler);
      releaseSocket = await listenSocket(unix, config.socket);
      servers.push(unix);
      socketPath = config.socket;
    }
  } catch (err) {
    clearInterval(sweeper);
    // The job runner too: Agenda's poll timer would keep a process that failed to listen alive.
    await Promise.all([...servers.map((s) => closeServer(s, 0)), jobs.close(0)]);
    releaseSocket();
    throw err;
  }
  if (servers.length === 0) throw new ConfigError('nothing to listen on: --port=-1 needs --socket');
  const scheme = config.tls.cert !== '' ? 'https' : 'http';
  const host = address === null ? null : address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    app,
    methods,
    store,
    address,
    url: address === null ? null : `${scheme}://${host}:${address.port}`,
    socketPath,
    jobs,
    setMethods,
    async close(graceSeconds = config.shutdownGrace) {
      clearInterval(sweeper);
      drain();
      await Promise.all([...servers.map((s) => closeServer(s, graceSeconds)), jobs.close(graceSeconds)]);
      releaseSocket();
    },
  };
}
