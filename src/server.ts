/**
 * The HTTP side: one Koa app with the POST endpoint and `GET /health`, listening on TCP, a Unix
 * socket, or both. Reading, parsing, authenticating, dispatching and signing happen here in that
 * order; every failure on the way becomes one answer from the §4 table.
 */
import { createServer as createHttpServer, type Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import { lstatSync, unlinkSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import Koa, { type Context } from 'koa';
import type { Logger } from 'pino';
import { AccountService } from './accounts.ts';
import { authenticate } from './auth.ts';
import { ClientGoneError, decodeUtf8, isJsonContentType, readBody } from './body.ts';
import type { Config } from './config.ts';
import { buildOpenRpc, discoverRecord } from './discover.ts';
import { Dispatcher, errorReply, type Reply } from './dispatch.ts';
import { parseEnvelope, rpcError, unparsableForm, type Envelope } from './envelope.ts';
import { ApiError, toApiError } from './errors.ts';
import { createAjv, discoverMethods, type MethodRecord, type MethodTable } from './registry.ts';
import { RequestScope } from './scope.ts';
import type { Store } from './store/types.ts';

export const VERSION = '0.1.0';
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

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

function envelopeForm(envelope: Envelope): 'simple' | 'rpc' {
  return envelope.kind === 'simple' || (envelope.kind === 'error' && envelope.form === 'simple') ? 'simple' : 'rpc';
}

/** Serialises a reply; a method result JSON cannot hold (a BigInt, a cycle) becomes InternalError. */
function serialize(reply: Reply, form: 'simple' | 'rpc', log: Logger, requestId: string): { status: number; text: string | undefined } {
  if (reply.body === undefined) return { status: reply.status, text: undefined };
  try {
    return { status: reply.status, text: JSON.stringify(reply.body) };
  } catch (err) {
    log.error({ reqId: requestId, err }, 'the result could not be serialised as JSON');
    const internal = new ApiError('InternalError');
    if (form === 'simple') return { status: 500, text: JSON.stringify(errorReply(internal, 'simple').body) };
    const entries = Array.isArray(reply.body) ? reply.body : [reply.body];
    const safe = entries.map((entry: { id: unknown }) => {
      try {
        return JSON.stringify(entry);
      } catch {
        return JSON.stringify(rpcError(internal, entry.id as never));
      }
    });
    return { status: reply.status, text: Array.isArray(reply.body) ? `[${safe.join(',')}]` : safe[0] };
  }
}

/**
 * Builds the Koa app for a configuration; `listen` is separate so tests can use `app.callback()`.
 *
 * @example const app = await buildApp({ config, store: new MemoryStore(), log })
 */
export async function buildApp(deps: ServerDeps): Promise<{ app: Koa; methods: MethodTable }> {
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

  const app = new Koa();
  app.silent = true;
  app.on('error', (err: Error) => log.error({ err }, 'unhandled error in the HTTP layer'));

  const handlePost = async (ctx: Context, scope: RequestScope): Promise<{ reply: Reply; form: 'simple' | 'rpc'; label: string }> => {
    const req = ctx.req;
    let body: Buffer;
    try {
      if (!isJsonContentType(req.headers['content-type'])) {
        const sniff = await readBody(req, config.bodyLimit).catch(() => Buffer.alloc(0));
        const form = unparsableForm(sniff);
        return { reply: errorReply(new ApiError('UnsupportedMediaType'), form), form, label: '-' };
      }
      body = await readBody(req, config.bodyLimit);
    } catch (err) {
      if (err instanceof ClientGoneError) throw err;
      ctx.set('Connection', 'close');
      return { reply: errorReply(toApiError(err), 'simple'), form: 'simple', label: '-' };
    }
    const text = decodeUtf8(body);
    let parsed: unknown;
    try {
      if (text === null) throw new ApiError('ParseError', 'The body is not valid UTF-8');
      parsed = JSON.parse(text);
    } catch (err) {
      const form = unparsableForm(body);
      const error = err instanceof ApiError ? err : new ApiError('ParseError', `The body is not valid JSON: ${(err as Error).message}`);
      return { reply: errorReply(error, form), form, label: '-' };
    }
    const envelope = parseEnvelope(parsed, config.batchLimit);
    const form = envelopeForm(envelope);
    const label = envelope.kind === 'simple' ? envelope.call.method : envelope.kind === 'rpc' && 'method' in envelope.entry ? envelope.entry.method : envelope.kind === 'batch' ? `batch(${envelope.entries.length})` : '-';
    try {
      await authenticate(scope, req.headers, body, store, authSettings);
    } catch (err) {
      return { reply: errorReply(toApiError(err), form), form, label };
    }
    return { reply: await dispatcher.reply(envelope, scope), form, label };
  };

  app.use(async (ctx) => {
    const started = process.hrtime.bigint();
    const incomingId = ctx.req.headers['x-request-id'];
    const requestId = typeof incomingId === 'string' && REQUEST_ID.test(incomingId) ? incomingId : randomUUID();
    ctx.set('x-request-id', requestId);
    const ip = ctx.req.socket.remoteAddress ?? '';
    let label = '-';
    try {
      if (ctx.path === '/health' && (ctx.method === 'GET' || ctx.method === 'HEAD')) {
        label = 'GET /health';
        const up = await store.ping().catch(() => false);
        ctx.status = up ? 200 : 503;
        ctx.type = 'json';
        ctx.body = up ? '{"status":"ok"}' : '{"status":"degraded","db":"down"}';
        return;
      }
      if (ctx.path !== config.path) {
        ctx.status = 404;
        ctx.type = 'json';
        ctx.body = JSON.stringify({ error: { code: 'NotFound', message: `No endpoint at ${ctx.path.slice(0, 200)}`, type: 'notFound' } });
        return;
      }
      if (ctx.method !== 'POST') {
        ctx.status = 405;
        ctx.set('Allow', 'POST');
        ctx.type = 'json';
        ctx.body = JSON.stringify({ error: { code: 'InvalidRequest', message: `Use POST ${config.path}`, type: 'invalidRequest' } });
        return;
      }
      const scope = new RequestScope(requestId, ip, ctx, config.hmac.scheme);
      const outcome = await handlePost(ctx, scope);
      label = outcome.label;
      const { status, text } = serialize(outcome.reply, outcome.form, log, requestId);
      ctx.status = status;
      if (outcome.reply.retryAfter !== undefined) ctx.set('Retry-After', String(Math.ceil(outcome.reply.retryAfter)));
      const mac = scope.signResponse(text ?? '');
      if (mac !== undefined) ctx.set('x-hmac', mac);
      if (text !== undefined) {
        ctx.type = 'json';
        ctx.body = text;
      }
    } catch (err) {
      if (err instanceof ClientGoneError) {
        ctx.respond = false;
        ctx.req.destroy();
        return;
      }
      log.error({ reqId: requestId, err }, 'request failed');
      ctx.status = 500;
      ctx.type = 'json';
      ctx.body = JSON.stringify(errorReply(new ApiError('InternalError'), 'simple').body);
    } finally {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      log.info({ reqId: requestId, method: label, status: ctx.status, ms: Math.round(ms * 1000) / 1000 }, 'request');
    }
  });
  return { app, methods };
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
  const { app, methods } = await buildApp(deps);
  const handler = app.callback();
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
