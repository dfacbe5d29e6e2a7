/**
 * The standalone server: the core on node:http (src/http/node.ts), with the console and the 404
 * answer on a small Koa app composed once at start-up, listening on TCP or TLS, a Unix socket, or
 * both. To serve the core inside an existing Koa app instead, use `createKoaMiddleware`.
 */
import cluster from 'node:cluster';
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import type { Logger } from 'pino';
import { assembleCore, VERSION, type Core, type CoreDeps } from './assemble.ts';
import { ConfigError, type Config } from './config.ts';
import { nowSeconds } from './core/clock.ts';
import { requestIdOf } from './core/handler.ts';
import type { MethodTable } from './core/registry.ts';
import { createConsole } from './docs.ts';
import { koaMiddleware } from './http/koa.ts';
import { createNodeListener } from './http/node.ts';
import { closeServer, createNodeServer, listen, removeStaleSocket } from './http/node-server.ts';
import type { JobRunner } from './jobs/types.ts';
import { createRequestLine } from './log.ts';
import type { Store } from './store/types.ts';

export { VERSION };
export type ServerDeps = CoreDeps;

export interface RunningServer {
  /** Every method served now, built-ins included (it follows watch-mode reloads). */
  readonly methods: MethodTable;
  readonly store: Store;
  /** The TCP address when serving TCP. */
  readonly address: AddressInfo | null;
  /** `http://host:port` when serving TCP. */
  readonly url: string | null;
  readonly socketPath: string | null;
  /** `http://host:port/metrics` when metrics have a port of their own (`--metrics-port`). */
  readonly metricsUrl: string | null;
  readonly jobs: JobRunner;
  /** Serves another discovered method table (the built-ins are added); calls already running keep theirs. */
  setMethods(table: MethodTable): void;
  /** Stops accepting and waits up to `graceSeconds` (default: config.shutdownGrace) for open requests. */
  close(graceSeconds?: number): Promise<void>;
}

const streamLimits = (config: Config) => ({ maxDuration: config.stream.maxDuration, idleTimeout: config.stream.idleTimeout });

/** The client address: the socket's, or with --trust-proxy the first of X-Forwarded-For. */
export function clientIpOf(config: Config): (req: IncomingMessage) => string {
  const socketIp = (req: IncomingMessage) => req.socket.remoteAddress ?? '';
  if (!config.trustProxy) return socketIp;
  return (req) => {
    const header = req.headers['x-forwarded-for'];
    const first = (Array.isArray(header) ? header[0] : header)?.split(',')[0]?.trim();
    return first !== undefined && first !== '' ? first : socketIp(req);
  };
}

/** What the core does not answer: the console, then a §4-shaped 404; one request line each. */
function fallbackApp(config: Config, store: Store, log: Logger): Koa {
  const app = new Koa();
  app.silent = true;
  app.on('error', (err: Error) => log.error({ err }, 'unhandled error in the HTTP layer'));
  const docs = config.docs
    ? createConsole({
        path: config.path,
        scheme: config.hmac.scheme,
        window: config.hmac.window,
        sessionTtl: config.session.ttl,
        store: store.description,
        shared: store.shared,
        jobs: store.startJobRunner === undefined ? 'in-process' : 'database',
        version: VERSION,
      })
    : undefined;
  const requestLine = createRequestLine(log);
  app.use(async (ctx) => {
    const started = performance.now();
    const requestId = requestIdOf(ctx.req.headers);
    ctx.set('x-request-id', requestId);
    try {
      if (docs !== undefined && (await docs(ctx))) return;
      ctx.status = 404;
      ctx.type = 'json';
      ctx.body = JSON.stringify({ error: { code: 'NotFound', message: `No endpoint at ${ctx.path.slice(0, 200)}`, type: 'notFound' } });
    } finally {
      requestLine(requestId, `${ctx.method} ${ctx.path.slice(0, 200)}`, ctx.status, performance.now() - started);
    }
  });
  return app;
}

/**
 * Builds the core and listens on TCP (unless `port` is -1) and on `socket` when set.
 *
 * @example const server = await startServer({ config, store, log }); console.log(server.url)
 */
export async function startServer(deps: ServerDeps): Promise<RunningServer> {
  const { config, store, log } = deps;
  const core = await assembleCore(deps);
  const listener = createNodeListener({
    handler: core.handler,
    claims: core.claims,
    bodyLimit: config.bodyLimit,
    clientIp: clientIpOf(config),
    fallback: fallbackApp(config, store, log).callback(),
    log,
    stream: streamLimits(config),
  });
  const servers: Server[] = [];
  let address: AddressInfo | null = null;
  let socketPath: string | null = null;
  let metricsServer: Server | null = null;
  // Nonces live as long as the signing window: sweeping at least that often keeps the embedded
  // store's memory level under steady signed traffic.
  const sweepEvery = Math.min(60, config.hmac.window) * 1000;
  const sweeper = setInterval(() => void store.sweep(nowSeconds()).catch(() => {}), sweepEvery);
  sweeper.unref();
  try {
    if (config.port >= 0) {
      const tcp = createNodeServer(config, listener);
      await listen(tcp, { port: config.port, host: config.host });
      servers.push(tcp);
      address = tcp.address() as AddressInfo;
    }
    if (config.socket !== '') {
      removeStaleSocket(config.socket);
      const unix = createNodeServer({ ...config, tls: { cert: '', key: '' } }, listener);
      await listen(unix, { path: config.socket });
      servers.push(unix);
      socketPath = config.socket;
    }
    // Under --workers the primary serves the workers' sum on the metrics port (src/cli.ts).
    if (core.scrape !== null && config.metrics.port >= 0 && !cluster.isWorker) {
      const { serveMetrics } = await import('./http/metrics.ts');
      metricsServer = await serveMetrics(core.scrape, { port: config.metrics.port, host: config.host });
    }
  } catch (err) {
    clearInterval(sweeper);
    await Promise.all([...servers.map((s) => closeServer(s, 0)), core.jobs.close(0)]);
    throw err;
  }
  if (servers.length === 0) throw new ConfigError('nothing to listen on: --port=-1 needs --socket');
  if (metricsServer !== null) servers.push(metricsServer);
  const metricsAddress = metricsServer === null ? null : (metricsServer.address() as AddressInfo);
  const scheme = config.tls.cert !== '' ? 'https' : 'http';
  const host = address === null ? null : address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    get methods() {
      return core.methods.current;
    },
    store,
    address,
    url: address === null ? null : `${scheme}://${host}:${address.port}`,
    socketPath,
    metricsUrl: metricsAddress === null ? null : `http://${metricsAddress.family === 'IPv6' ? `[${metricsAddress.address}]` : metricsAddress.address}:${metricsAddress.port}/metrics`,
    jobs: core.jobs,
    setMethods: (table) => core.methods.swap(table),
    async close(graceSeconds = config.shutdownGrace) {
      clearInterval(sweeper);
      core.drain();
      await Promise.all([...servers.map((s) => closeServer(s, graceSeconds)), core.jobs.close(graceSeconds)]);
    },
  };
}

/**
 * The core as middleware for an existing Koa app: the endpoint, `/jobs/<id>` and `/health`;
 * anything else goes on to the app's own middleware. Works behind koa-bodyparser (see
 * src/http/koa.ts for what that changes). Client addresses follow the app's `proxy` setting.
 *
 * @example
 * const api = await createKoaMiddleware({ config: loadConfig(), store: new MemoryStore(), log });
 * app.use(bodyParser()); app.use(api.middleware); app.use(myRoutes);
 */
export async function createKoaMiddleware(deps: CoreDeps): Promise<{ middleware: Koa.Middleware; core: Core; close(graceSeconds?: number): Promise<void> }> {
  const core = await assembleCore(deps);
  return {
    middleware: koaMiddleware(core, { bodyLimit: deps.config.bodyLimit, stream: streamLimits(deps.config) }),
    core,
    async close(graceSeconds = deps.config.shutdownGrace) {
      core.drain();
      await core.jobs.close(graceSeconds);
    },
  };
}
