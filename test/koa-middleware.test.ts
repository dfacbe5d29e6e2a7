/**
 * The core mounted in a user's own Koa app (createKoaMiddleware), behind koa-bodyparser and beside
 * the app's own routes, called over real HTTP with the project's client.
 */
import type { Server } from 'node:http';
import Koa from 'koa';
import bodyParser from 'koa-bodyparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimpleApiClient } from '../src/client/index.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { createKoaMiddleware } from '../src/server.ts';
import { MemoryStore } from '../src/store/memory.ts';
import { FIXTURE_METHODS, LogCapture, post, ROOT } from './helpers/server.ts';

describe('createKoaMiddleware in a Koa app behind koa-bodyparser', () => {
  let server: Server;
  let url: string;
  let close: () => Promise<void>;
  const seenByUserMiddleware: string[] = [];

  beforeAll(async () => {
    const config = loadConfig({ argvOptions: { methodsDir: FIXTURE_METHODS }, cwd: ROOT, env: {} });
    const api = await createKoaMiddleware({ config, store: new MemoryStore(), log: createLogger({ level: 'warn', destination: new LogCapture() }) });
    close = () => api.close(0);
    const app = new Koa();
    app.use(async (ctx, next) => {
      seenByUserMiddleware.push(`${ctx.method} ${ctx.path}`);
      await next();
      ctx.set('x-user-middleware', 'ran');
    });
    app.use(bodyParser());
    app.use(api.middleware);
    app.use(async (ctx) => {
      if (ctx.path === '/hello') ctx.body = { hello: 'from the app' };
    });
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const address = server.address() as { port: number };
    url = `http://127.0.0.1:${address.port}/`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    await close();
  });

  it('answers a signed call through the middleware, verified by the client, and the app still runs', async () => {
    const client = new SimpleApiClient({ url });
    const grant = await client.create('koa-user', 'password-one');
    expect(grant.user_id).toBe('koa-user');
    // whoami needs a session: the request is signed and its answer's x-hmac checked by the client.
    expect(await client.call('whoami', {})).toEqual({ userId: 'koa-user', sessionId: grant.session_id, expires: expect.any(Number) });
    const [sum] = await client.batch([{ method: 'sum', params: [2, 3] }]);
    expect(sum).toEqual({ ok: true, result: 5 });
    expect(seenByUserMiddleware).toContain('POST /');
  });

  it("leaves the app's own routes and 404s to the app", async () => {
    const hello = await fetch(new URL('/hello', url));
    expect(hello.status).toBe(200);
    expect(await hello.json()).toEqual({ hello: 'from the app' });
    expect(hello.headers.get('x-user-middleware')).toBe('ran');
    expect((await fetch(new URL('/nowhere', url))).status).toBe(404);
  });

  it('keeps the protocol errors: a bad signature is 401 and unsigned, health answers', async () => {
    const a = await post(url, '{"method":"whoami"}', { 'x-session-id': '9b2f3c1e-2a4b-4c5d-8e6f-7a8b9c0d1e2f', 'x-timestamp': '1', 'x-nonce': 'abcdefghijklmnop', 'x-hmac': '00' });
    expect(a.status).toBe(401);
    expect(a.json).toMatchObject({ error: { code: 'Unauthenticated' } });
    expect(a.headers.get('x-hmac')).toBeNull();
    const health = await fetch(new URL('/health', url));
    expect(await health.json()).toEqual({ status: 'ok' });
  });
});
