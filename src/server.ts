/**
 * The standalone server: the core on node:http (src/http/node.ts), with the console and the 404
 * answer on a small Koa app composed once at start-up, listening on TCP or TLS, a Unix socket, or
 * both. To serve the core inside an existing Koa app instead, use `createKoaMiddleware`.
 */
import cluster from 'node:cluster';
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import proxyaddr from 'proxy-addr';
import type { Logger } from 'pino';
import { assembleCore, VERSION, type Core, type CoreDeps } from './assemble.ts';
import { ConfigError, type Config } from './config.ts';
import { nowSeconds } from './core/clock.ts';
import { requestIdOf } from './core/handler.ts';
import type { MethodTable } from './core/registry.ts';
import { createConsole } from './http/console.ts';
import { koaMiddleware } from './http/koa.ts';
import { createNodeListener } from './http/node.ts';
import { closeServer, createNodeServer, listenSocket, listenTcp } from './http/listen.ts';
import type { JobRunner } from './core/jobs.ts';
import { createRequestLine } from './log.ts';
import { hostCheck, misdirectedBody, type HostCheck } from './http/host-check.ts';
import type { Handler } from './core/handler.ts';
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

/**
 * The client address: the socket's, or with --trust-proxy the right-most address of
 * X-Forwarded-For that is not a trusted proxy (proxy-addr). Entries left of it were written by
 * whoever sent the request and prove nothing. `true` trusts one hop: the socket's peer only.
 */
export function clientIpOf(config: Pick<Config, 'trustProxy'>): (req: IncomingMessage) => string {
  const socketIp = (req: IncomingMessage) => req.socket.remoteAddress ?? '';
  const { trustProxy } = config;
  if (trustProxy === false || trustProxy === 0) return socketIp;
  const hops = trustProxy === true ? 1 : trustProxy;
  const trust = typeof hops === 'number' ? (_addr: string, i: number) => i < hops : proxyaddr.compile(hops.split(','));
  return (req) => proxyaddr(req, trust);
}

/** The core behind the Host check: a refused Host gets 421 before anything else runs. */
function guardHosts(handler: Handler, check: HostCheck | null): Handler {
  if (check === null) return handler;
  return (request) => {
    if (check.allows(request.headers.host)) return handler(request);
    return Promise.resolve({ status: 421, headers: { 'content-type': 'application/json; charset=utf-8' }, body: misdirectedBody(request.headers.host, check), close: true, label: 'misdirected' });
  };
}

/** What the core does not answer: the console, then a §4-shaped 404; one request line each. */
function fallbackApp(config: Config, store: Store, log: Logger, hosts: HostCheck | null): Koa {
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
      if (hosts !== null && !hosts.allows(ctx.req.headers.host)) {
        ctx.status = 421;
        ctx.type = 'json';
        ctx.body = misdirectedBody(ctx.req.headers.host, hosts);
        return;
      }
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
  // Only the standalone server knows where it is bound; a Koa app checks its own Host.
  const hosts = hostCheck(config.host, config.allowedHosts);
  const listener = createNodeListener({
    handler: guardHosts(core.handler, hosts),
    claims: core.claims,
    bodyLimit: config.bodyLimit,
    clientIp: clientIpOf(config),
    fallback: fallbackApp(config, store, log, hosts).callback(),
    log,
    stream: streamLimits(config),
  });
  const servers: Server[] = [];
  let address: AddressInfo | null = null;
  let socketPath: string | null = null;
  let releaseSocket = () => {};
  let metricsServer: Server | null = null;
  // Nonces live as long as the signing window: sweeping at least that often keeps the embedded
  // store's memory level under steady signed traffic.
  const sweepEvery = Math.min(60, config.hmac.window) * 1000;
  // A failed sweep is tried again next time; said once, not every minute of an outage.
  let sweepFailing = false;
  const sweeper = setInterval(
    () =>
      void store.sweep(nowSeconds()).then(
        () => void (sweepFailing = false),
        (err: Error) => {
          if (!sweepFailing) log.warn({ err: { message: err.message } }, 'the store sweep of expired sessions and nonces failed; it runs again at the next interval');
          sweepFailing = true;
        },
      ),
    sweepEvery,
  );
  sweeper.unref();
  try {
    if (config.port >= 0) {
      const tcp = createNodeServer(config, listener);
      await listenTcp(tcp, config.port, config.host);
      servers.push(tcp);
      address = tcp.address() as AddressInfo;
    }
    if (config.socket !== '') {
      const unix = createNodeServer({ ...config, tls: { cert: '', key: '' } }, listener);
      releaseSocket = await listenSocket(unix, config.socket);
      servers.push(unix);
      socketPath = config.socket;
    }
    // Under --workers the primary serves the workers' sum on the metrics port (src/cli/main.ts).
    if (core.scrape !== null && config.metrics.port >= 0 && !cluster.isWorker) {
      const { serveMetrics } = await import('./http/metrics.ts');
      metricsServer = await serveMetrics(core.scrape, { port: config.metrics.port, host: config.host });
    }
  } catch (err) {
    clearInterval(sweeper);
    // The job runner too: Agenda's poll timer would keep a process that failed to listen alive.
    await Promise.all([...servers.map((s) => closeServer(s, 0)), core.jobs.close(0)]);
    releaseSocket();
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
      releaseSocket();
    },
  };
}

/**
 * The core as middleware for an existing Koa app: the endpoint, `/jobs/<id>` and `/health`;
 * anything else goes on to the app's own middleware. Works behind koa-bodyparser (see
 * src/http/koa.ts for what that changes). Client addresses are Koa's `ctx.ip`: they follow the
 * app's `proxy` and `maxIpsCount` (behind one proxy: `app.proxy = true; app.maxIpsCount = 1`),
 * not --trust-proxy; the Host check is the app's own business too.
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
