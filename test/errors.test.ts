/**
 * Every row of docs/protocol.md §4 over real HTTP, in both envelopes, asserting whole bodies. Rows that
 * need a real cause (a wrong password, a taken user_id, a large body) are caused for real; the
 * rest are thrown by a fixture method through ApiError, which is how methods raise them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS, type ErrorCode } from '../src/core/errors.ts';
import { rpc, call, post, startTestServer, type TestServer } from './helpers/server.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ bodyLimit: 1024, 'login.maxFailures': 2 });
});
afterAll(() => server.close());

const simple = call;

describe('§4 rows thrown by a method (ApiError)', () => {
  const thrown: ErrorCode[] = ['Forbidden', 'NotFound', 'Conflict', 'TooManyRequests', 'Unavailable', 'Unauthenticated', 'BadSignature', 'InvalidParams'];
  for (const code of thrown) {
    it(`${code}: HTTP ${ERRORS[code].status} in the simple form, ${ERRORS[code].rpcCode} in JSON-RPC`, async () => {
      const a = await post(server.url, simple('fail.code', { code }));
      expect(a.status).toBe(ERRORS[code].status);
      expect(a.json).toEqual({ error: { code, message: `thrown on purpose: ${code}`, type: ERRORS[code].type } });
      const b = await post(server.url, rpc('fail.code', { code }));
      expect(b.status).toBe(200);
      expect(b.json).toEqual({ jsonrpc: '2.0', error: { code: ERRORS[code].rpcCode, message: `thrown on purpose: ${code}`, data: { code, type: ERRORS[code].type } }, id: 1 });
    });
  }

  it('sends Retry-After when the error carries one', async () => {
    const a = await post(server.url, simple('fail.code', { code: 'Unavailable', retryAfter: 7 }));
    expect(a.status).toBe(503);
    expect(a.headers.get('retry-after')).toBe('7');
  });

  it("a method's own code keeps its status, JSON-RPC code and details", async () => {
    const a = await post(server.url, simple('fail.custom', {}));
    expect(a.status).toBe(402);
    expect(a.json).toEqual({ error: { code: 'QuotaExceeded', message: 'Out of credit', type: 'billing', details: [{ remaining: 0 }] } });
    const b = await post(server.url, rpc('fail.custom', {}));
    expect(b.json).toEqual({ jsonrpc: '2.0', error: { code: -32070, message: 'Out of credit', data: { code: 'QuotaExceeded', type: 'billing', details: [{ remaining: 0 }] } }, id: 1 });
  });
});

describe('§4 rows caused for real', () => {
  it('ParseError: invalid JSON and invalid UTF-8, 400 in both forms', async () => {
    const a = await post(server.url, '{"method": "echo", ');
    expect(a.status).toBe(400);
    expect(a.json).toMatchObject({ error: { code: 'ParseError', type: 'invalidRequest' } });
    expect(Object.keys((a.json as { error: object }).error).sort()).toEqual(['code', 'message', 'type']);
    const b = await post(server.url, Buffer.concat([Buffer.from('{"method":"echo","parameters":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]));
    expect(b.status).toBe(400);
    expect(b.json).toEqual({ error: { code: 'ParseError', message: 'The body is not valid UTF-8', type: 'invalidRequest' } });
    const c = await post(server.url, '{"jsonrpc":"2.0",');
    expect(c.status).toBe(400);
    expect(c.json).toMatchObject({ jsonrpc: '2.0', error: { code: -32700, data: { code: 'ParseError', type: 'invalidRequest' } }, id: null });
  });

  it('InvalidRequest: a body that is neither envelope', async () => {
    for (const body of ['42', '"text"', 'null', '{}', '{"parameters": {}}']) {
      const a = await post(server.url, body);
      expect(a.status, body).toBe(400);
      expect(a.json).toEqual({
        error: { code: 'InvalidRequest', message: 'The body must be {"method": ..., "parameters": ...} or a JSON-RPC 2.0 request', type: 'invalidRequest' },
      });
    }
    const b = await post(server.url, '{"method": 5}');
    expect(b.json).toEqual({ error: { code: 'InvalidRequest', message: 'method must be a string', type: 'invalidRequest' } });
  });

  it('MethodNotFound: 404', async () => {
    const a = await post(server.url, simple('no.such.method', {}));
    expect(a.status).toBe(404);
    expect(a.json).toEqual({ error: { code: 'MethodNotFound', message: 'No method named "no.such.method"', type: 'notFound' } });
  });

  it('InvalidParams: 400 with one detail per invalid parameter', async () => {
    const a = await post(server.url, simple('account.create', { user_id: '', password: 'short', extra: 1 }));
    expect(a.status).toBe(400);
    expect(a.json).toEqual({
      error: {
        code: 'InvalidParams',
        message: 'The parameters are not valid',
        type: 'invalidParams',
        details: [
          { path: '/extra', message: 'is not allowed' },
          { path: '/user_id', message: 'must NOT have fewer than 1 characters' },
          { path: '/password', message: 'must NOT have fewer than 8 characters' },
        ],
      },
    });
  });

  it('InternalError: generic message, no stack, the cause logged with the request id', async () => {
    const a = await post(server.url, simple('fail.internal', {}), { 'x-request-id': 'req-internal-1' });
    expect(a.status).toBe(500);
    expect(a.json).toEqual({ error: { code: 'InternalError', message: 'Internal error', type: 'server' } });
    expect(a.text).not.toContain('hunter2');
    const logged = server.logs.lines.find((l) => l.reqId === 'req-internal-1' && l.msg === 'method threw');
    expect(logged).toMatchObject({ level: 50, method: 'fail.internal', err: { message: 'secret internal detail: db password is hunter2' } });
    expect((logged!.err as { stack: string }).stack).toContain('internal.ts');
  });

  it('InternalError: a result JSON cannot hold', async () => {
    const a = await post(server.url, simple('fail.bigint', {}));
    expect(a.status).toBe(500);
    expect(a.json).toEqual({ error: { code: 'InternalError', message: 'Internal error', type: 'server' } });
    const b = await post(server.url, `[${rpc('fail.bigint', {}, 1)},${rpc('echo', [2], 2)}]`);
    expect(b.status).toBe(200);
    expect(b.json).toEqual([
      { jsonrpc: '2.0', error: { code: -32603, message: 'Internal error', data: { code: 'InternalError', type: 'server' } }, id: 1 },
      { jsonrpc: '2.0', result: [2], id: 2 },
    ]);
  });

  it('Unauthenticated: a session method without a session, and an unknown session', async () => {
    const a = await post(server.url, simple('whoami', {}));
    expect(a.status).toBe(401);
    expect(a.json).toEqual({ error: { code: 'Unauthenticated', message: 'whoami needs a signed-in session', type: 'auth' } });
    const b = await post(server.url, simple('echo', {}), {
      'x-session-id': '5f0c6b1e-8d0a-4c4e-9a53-0b7f3f1a2c11',
      'x-timestamp': String(Math.floor(Date.now() / 1000)),
      'x-nonce': 'Zm9vYmFyYmF6cXV4MTIz',
      'x-hmac': '00'.repeat(32),
    });
    expect(b.status).toBe(401);
    expect(b.json).toEqual({ error: { code: 'Unauthenticated', message: 'The session is unknown or has expired', type: 'auth' } });
  });

  it('BadSignature: a live session id with no x-hmac, 401 in both forms', async () => {
    // §6 step 1 looks the session up first: an unknown one is Unauthenticated, a live one without a MAC BadSignature.
    const created = await post(server.url, simple('account.create', { user_id: 'errors-no-hmac', password: 'password-one' }));
    const headers = { 'x-session-id': (created.json as { session_id: string }).session_id };
    const a = await post(server.url, simple('echo', {}), headers);
    expect(a.status).toBe(401);
    expect(a.json).toEqual({ error: { code: 'BadSignature', message: 'x-hmac is missing', type: 'auth' } });
    const b = await post(server.url, rpc('echo', {}), headers);
    expect(b.status).toBe(401);
    expect(b.json).toEqual({ jsonrpc: '2.0', error: { code: -32002, message: 'x-hmac is missing', data: { code: 'BadSignature', type: 'auth' } }, id: null });
  });

  it('Forbidden: account.password with a wrong old password', async () => {
    const { SimpleApiClient } = await import('../src/client/index.ts');
    const client = new SimpleApiClient({ url: server.url });
    await client.create('forbidden-user', 'password-one');
    await expect(client.call('account.password', { old_password: 'not-the-password', new_password: 'password-two' })).rejects.toMatchObject({
      code: 'Forbidden',
      status: 403,
      type: 'permission',
      message: 'old_password is wrong',
    });
    // The session itself stays valid.
    expect(await client.call('whoami')).toMatchObject({ userId: 'forbidden-user' });
  });

  it('Conflict: account.create with a taken user_id, in another case', async () => {
    await post(server.url, simple('account.create', { user_id: 'Taken@Example.com', password: 'password-one' }));
    const a = await post(server.url, simple('account.create', { user_id: 'taken@example.COM', password: 'password-two' }));
    expect(a.status).toBe(409);
    expect(a.json).toEqual({ error: { code: 'Conflict', message: 'That user_id is already taken', type: 'conflict' } });
  });

  it('TooManyRequests: repeated failed logins, with Retry-After', async () => {
    await post(server.url, simple('account.create', { user_id: 'throttled', password: 'password-one' }));
    for (let i = 0; i < 2; i++) {
      const wrong = await post(server.url, simple('account.login', { user_id: 'throttled', password: 'wrong-password' }));
      expect(wrong.status).toBe(401);
    }
    const before = Math.floor(Date.now() / 1000);
    const a = await post(server.url, simple('account.login', { user_id: 'throttled', password: 'password-one' }));
    const after = Math.floor(Date.now() / 1000);
    expect(a.status).toBe(429);
    expect(a.json).toMatchObject({ error: { code: 'TooManyRequests', type: 'rateLimit' } });
    // Failures are counted in fixed 900 s windows (login.window): the wait is to the window's end.
    const wait = Number(a.headers.get('retry-after'));
    expect(wait).toBeGreaterThanOrEqual(Math.max(1, 900 - (after % 900)) - 1);
    expect(wait).toBeLessThanOrEqual(Math.max(1, 900 - (before % 900)) + 1);
  });

  it('PayloadTooLarge: 413, from Content-Length and from a chunked body', async () => {
    const big = simple('echo', 'x'.repeat(2000));
    const a = await post(server.url, big);
    expect(a.status).toBe(413);
    expect(a.json).toEqual({ error: { code: 'PayloadTooLarge', message: 'The body is larger than the limit of 1024 bytes', type: 'invalidRequest' } });
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(big));
        controller.close();
      },
    });
    const res = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: stream, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(413);
    expect(res.headers.get('transfer-encoding')).toBeNull();
  });

  it('UnsupportedMediaType: 415 for any other content type, in the form the body looks like', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', 'application/jsonx']) {
      const a = await post(server.url, simple('echo', {}), { 'content-type': type });
      expect(a.status, type).toBe(415);
      expect(a.json).toEqual({ error: { code: 'UnsupportedMediaType', message: 'Content-Type must be application/json', type: 'invalidRequest' } });
    }
    const b = await post(server.url, rpc('echo', {}), { 'content-type': 'text/plain' });
    expect(b.status).toBe(415);
    expect(b.json).toEqual({ jsonrpc: '2.0', error: { code: -32600, message: 'Content-Type must be application/json', data: { code: 'UnsupportedMediaType', type: 'invalidRequest' } }, id: null });
    for (const type of ['application/json; charset=utf-8', 'Application/JSON; Charset="UTF-8"']) {
      expect((await post(server.url, simple('echo', 1), { 'content-type': type })).status, type).toBe(200);
    }
  });
});
