/**
 * The HTTP side: one Koa app with the POST endpoint and `GET /health`, listening on TCP, a Unix
 * socket, or both. Reading, parsing, authenticating, dispatching and signing happen here in that
 * order; every failure on the way becomes one answer from the §4 table.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { lstatSync, unlinkSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import type { Logger } from 'pino';
import { AccountService } from './accounts.ts';
import type { Config } from './config.ts';
import { buildOpenRpc, discoverRecord } from './discover.ts';
import { Dispatcher } from './dispatch.ts';
import { createEndpoint, requestIdOf } from './endpoint.ts';
import { createAjv, discoverMethods, type MethodRecord, type MethodTable } from './registry.ts';
import type { Store } from './store/types.ts';

export const VERSION = '0.1.0';

export interface ServerDeps {
  config: Config;
  store: Store;
  log: Logger;
  /** Already discovered methods; discovered from `config.methodsDir` when absent. */
  methods?: MethodTable;
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
  close(): Promise<void>;
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
export async function buildApp(deps: ServerDeps): Promise<{ app: Koa; methods: MethodTable; listener: (req: IncomingMessage, res: ServerResponse) => void }> {
  const { config, store, log } = deps;
  const methods = withBuiltins(deps.methods ?? (await discoverMethods(config.methodsDir, createAjv())));
  const accounts = new AccountService(store, {
    sessionTtl: config.session.ttl,
    maxFailures: config.login.maxFailures,
    maxFailuresPerIp: config.login.maxFailuresPerIp,
    window: config.login.window,
  });
  const dispatcher = new Dispatcher(methods, { store, accounts, log }, { batchConcurrency: config.batchConcurrency });
  const authSettings = { window: config.hmac.window, sessionTtl: config.session.ttl, touchFraction: config.session.touchFraction };

  const endpoint = createEndpoint({
    store,
    log,
    dispatcher,
    auth: authSettings,
    scheme: config.hmac.scheme,
    bodyLimit: config.bodyLimit,
    batchLimit: config.batchLimit,
  });

  const app = new Koa();
  app.silent = true;
  app.on('error', (err: Error) => log.error({ err }, 'unhandled error in the HTTP layer'));

  app.use(async (ctx) => {
    if (ctx.path === config.path && ctx.method === 'POST') {
      // Reached through Koa only when other middleware was added before this one.
      ctx.respond = false;
      await endpoint(ctx.req, ctx.res, () => ctx);
      return;
    }
    const started = performance.now();
    const requestId = requestIdOf(ctx.req);
    ctx.set('x-request-id', requestId);
    try {
      if (ctx.path === '/health' && (ctx.method === 'GET' || ctx.method === 'HEAD')) {
        const up = await store.ping().catch(() => false);
        ctx.status = up ? 200 : 503;
        ctx.type = 'json';
        ctx.body = up ? '{"status":"ok"}' : '{"status":"degraded","db":"down"}';
      } else if (ctx.path !== config.path) {
        ctx.status = 404;
        ctx.type = 'json';
        ctx.body = JSON.stringify({ error: { code: 'NotFound', message: `No endpoint at ${ctx.path.slice(0, 200)}`, type: 'notFound' } });
      } else {
        ctx.status = 405;
        ctx.set('Allow', 'POST');
        ctx.type = 'json';
        ctx.body = JSON.stringify({ error: { code: 'InvalidRequest', message: `Use POST ${config.path}`, type: 'invalidRequest' } });
      }
    } finally {
      log.info({ reqId: requestId, method: `${ctx.method} ${ctx.path.slice(0, 200)}`, status: ctx.status, ms: Math.round((performance.now() - started) * 1000) / 1000 }, 'request');
    }
  });

  /**
   * The request listener. POST to the endpoint skips Koa while the app has only this module's
   * middleware (Koa's context, delegates and response handling cost more than the rest of the
   * hot path); with middleware of a user's, everything goes through Koa.
   */
  const ownMiddleware = app.middleware.length;
  const koaHandler = app.callback();
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    if (app.middleware.length === ownMiddleware && req.method === 'POST' && pathOf(req.url) === config.path) {
      void endpoint(req, res, () => app.createContext(req, res));
      return;
    }
    void koaHandler(req, res);
  };
  return { app, methods, listener };
}

/** The path of a request URL, without its query string. */
function pathOf(url: string | undefined): string {
  if (url === undefined) return '';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/** A socket file left by a process that died would make listen fail; anything else is left alone. */
function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // absent: nothing to remove
  }
}

function listen(server: Server, target: { port: number; host: string } | { path: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(target, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

/**
 * Builds the app and listens on TCP (unless `port` is -1) and on `socket` when set.
 *
 * @example const server = await startServer({ config, store, log }); console.log(server.url)
 */
export async function startServer(deps: ServerDeps): Promise<RunningServer> {
  const { config, store } = deps;
  const { app, methods, listener: handler } = await buildApp(deps);
  const servers: Server[] = [];
  let address: AddressInfo | null = null;
  let socketPath: string | null = null;
  const sweeper = setInterval(() => void store.sweep(Math.floor(Date.now() / 1000)).catch(() => {}), 60_000);
  sweeper.unref();
  try {
    if (config.port >= 0) {
      const tcp = createHttpServer(handler);
      await listen(tcp, { port: config.port, host: config.host });
      servers.push(tcp);
      address = tcp.address() as AddressInfo;
    }
    if (config.socket !== '') {
      removeStaleSocket(config.socket);
      const unix = createHttpServer(handler);
      await listen(unix, { path: config.socket });
      servers.push(unix);
      socketPath = config.socket;
    }
  } catch (err) {
    clearInterval(sweeper);
    await Promise.all(servers.map(closeServer));
    throw err;
  }
  if (servers.length === 0) throw new Error('nothing to listen on: --port=-1 needs --socket');
  const host = address === null ? null : address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    app,
    methods,
    store,
    address,
    url: address === null ? null : `http://${host}:${address.port}`,
    socketPath,
    async close() {
      clearInterval(sweeper);
      await Promise.all(servers.map(closeServer));
    },
  };
}
