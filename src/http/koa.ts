/**
 * The core as a Koa middleware, to mount in a Koa app beside its own routes. Requests the core
 * does not claim go on to `next()`.
 *
 * Behind koa-bodyparser the body stream is already consumed: the middleware then takes the bytes
 * from `ctx.request.rawBody`, the text koa-bodyparser kept. That text was decoded leniently, so a
 * body that was not valid UTF-8 arrives with U+FFFD in it: it cannot be told apart from one that
 * sent U+FFFD, and its signature (over the original bytes) will not verify.
 */
import type { Context, Middleware } from 'koa';
import type { Core } from '../assemble.ts';
import type { CoreRequest } from '../core/request.ts';
import { readBody } from './read-body.ts';
import { writeStream, type StreamLimits } from './write-stream.ts';

export interface KoaAdapterOptions {
  bodyLimit: number;
  stream: StreamLimits;
}

async function bodyOf(ctx: Context, limit: number): Promise<Buffer | null> {
  if (ctx.method !== 'POST') return Buffer.alloc(0);
  const kept = (ctx.request as { rawBody?: unknown }).rawBody;
  if (typeof kept === 'string') {
    const bytes = Buffer.from(kept, 'utf8');
    return bytes.length > limit ? null : bytes;
  }
  if (ctx.req.readableEnded) return Buffer.alloc(0);
  return readBody(ctx.req, limit);
}

/**
 * @example app.use(koaMiddleware(core, { bodyLimit: 1 << 20, stream: { maxDuration: 600, idleTimeout: 30 } }))
 */
export function koaMiddleware(core: Core, options: KoaAdapterOptions): Middleware {
  return async (ctx, next) => {
    if (!core.claims(ctx.method, ctx.url)) return next();
    const abort = new AbortController();
    ctx.res.once('close', () => !ctx.res.writableFinished && abort.abort(new Error('client disconnected')));
    const request: CoreRequest = {
      method: ctx.method,
      target: ctx.url,
      headers: ctx.req.headers,
      body: await bodyOf(ctx, options.bodyLimit),
      // Koa's own rule, not --trust-proxy: X-Forwarded-For only when the app sets `app.proxy`, and
      // then the left-most of its last `app.maxIpsCount` entries; behind one proxy set
      // `app.proxy = true; app.maxIpsCount = 1` so the client cannot choose its address.
      ip: ctx.ip,
      signal: abort.signal,
      http: { req: ctx.req, res: ctx.res },
    };
    const response = await core.handler(request);
    if (response === null) return next();
    if (response.taken === true) {
      ctx.respond = false;
      return;
    }
    if (response.close === true) response.headers.connection = 'close';
    if (response.stream !== undefined) {
      ctx.respond = false;
      await writeStream(ctx.res, response.status, response.headers, response.stream, options.stream, () => abort.abort(new Error('the stream ended')));
      return;
    }
    ctx.status = response.status;
    ctx.set(response.headers);
    if (response.body !== undefined) ctx.body = response.body;
    else if (response.status === 204) ctx.body = null;
  };
}
