/** docs/protocol.md §1 and the HTTP surface around the endpoint, over real HTTP. */
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readBodyThen } from '../src/http/read-body.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, startTestServer, type TestServer } from './helpers/server.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ batchLimit: 5, batchConcurrency: 2, bodyLimit: 4096 });
});
afterAll(() => server.close());

const entry = (id: number, method = 'echo') => ({ jsonrpc: '2.0', method, params: [id], id });

describe('GET /health', () => {
  it('answers 200 {"status":"ok"} with no session', async () => {
    const res = await fetch(new URL('/health', server.url));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });
});

describe('x-request-id', () => {
  it('echoes a client id and generates one otherwise, on every response', async () => {
    const a = await post(server.url, '{"method":"echo","parameters":1}', { 'x-request-id': 'client-chosen-42' });
    expect(a.headers.get('x-request-id')).toBe('client-chosen-42');
    const b = await post(server.url, 'not json');
    expect(b.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const c = await post(server.url, '{"method":"echo"}', { 'x-request-id': 'bad id with spaces' });
    expect(c.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const health = await fetch(new URL('/health', server.url), { headers: { 'x-request-id': 'h-1' } });
    expect(health.headers.get('x-request-id')).toBe('h-1');
  });

  it('logs one line per request with method, status, duration and request id', async () => {
    await post(server.url, '{"method":"math.none","parameters":1}', { 'x-request-id': 'log-line-1' });
    await post(server.url, JSON.stringify([entry(1), entry(2)]), { 'x-request-id': 'log-line-2' });
    await expect.poll(() => server.logs.lines.filter((l) => l.reqId === 'log-line-1' && l.msg === 'request').length).toBe(1);
    expect(server.logs.lines.find((l) => l.reqId === 'log-line-1')).toMatchObject({ method: 'math.none', status: 404, ms: expect.any(Number) });
    expect(server.logs.lines.find((l) => l.reqId === 'log-line-2')).toMatchObject({ method: 'batch(2)', status: 200 });
  });
});

describe('batches', () => {
  it('holds at most batchLimit entries; a longer one is one Invalid Request saying the limit', async () => {
    const ok = await post(server.url, JSON.stringify([1, 2, 3, 4, 5].map((i) => entry(i))));
    expect((ok.json as unknown[]).length).toBe(5);
    const tooLong = await post(server.url, JSON.stringify([1, 2, 3, 4, 5, 6].map((i) => entry(i))));
    expect(tooLong.status).toBe(200);
    expect(tooLong.json).toEqual({
      jsonrpc: '2.0',
      error: { code: -32600, message: 'A batch holds at most 5 entries; this one has 6', data: { code: 'InvalidRequest', type: 'invalidRequest' } },
      id: null,
    });
  });

  it('runs entries concurrently up to batchConcurrency', async () => {
    const { stats } = (await import('./fixtures/methods/gauge.ts')) as { stats: { peak: number } };
    stats.peak = 0;
    const a = await post(server.url, JSON.stringify([1, 2, 3, 4, 5].map((i) => entry(i, 'gauge'))));
    expect((a.json as { result: number }[]).every((r) => r.result <= 2)).toBe(true);
    expect(stats.peak).toBe(2);
  });

  it('authorises each entry on its own: a public entry succeeds beside a session-only one', async () => {
    const a = await post(server.url, JSON.stringify([entry(1), { jsonrpc: '2.0', method: 'whoami', id: 2 }]));
    expect(a.json).toEqual([
      { jsonrpc: '2.0', result: [1], id: 1 },
      { jsonrpc: '2.0', error: { code: -32001, message: 'whoami needs a signed-in session', data: { code: 'Unauthenticated', type: 'auth' } }, id: 2 },
    ]);
  });
});

describe('defineMethod', () => {
  it('a default-exported typed method is discovered, validated and run', async () => {
    expect((await post(server.url, '{"method":"typed.double","parameters":[1,2.5]}')).json).toEqual([2, 5]);
    expect((await post(server.url, '{"method":"typed.double","parameters":["x"]}')).status).toBe(400);
  });
});

describe('the HTTP surface', () => {
  it('other paths are 404 and other verbs 405, as JSON', async () => {
    const a = await post(new URL('/other', server.url).href, '{}');
    expect(a.status).toBe(404);
    expect(a.json).toEqual({ error: { code: 'NotFound', message: 'No endpoint at /other', type: 'notFound' } });
    const b = await fetch(server.url);
    expect(b.status).toBe(405);
    expect(b.headers.get('allow')).toBe('POST');
    expect(await b.text()).toContain('/docs');
    // A browser (it asks for HTML) gets a page that links to the console.
    const c = await fetch(server.url, { headers: { accept: 'text/html' } });
    expect(c.status).toBe(405);
    expect(c.headers.get('content-type')).toContain('text/html');
    expect(await c.text()).toMatch(/<a href="\/docs"/);
  });

  it('a near-miss method name gets MethodNotFound with the closest names in details', async () => {
    const a = await post(server.url, '{"method":"sun","parameters":[1,2]}');
    expect(a.status).toBe(404);
    const error = (a.json as { error: { code: string; message: string; details?: { did_you_mean: string[] }[] } }).error;
    expect(error.code).toBe('MethodNotFound');
    expect(error.details?.[0]?.did_you_mean).toContain('sum');
    expect(error.message).toContain("did you mean 'sum'");
    // Far from every name: no guess.
    const b = await post(server.url, '{"method":"zzzzzzzzzz"}');
    expect((b.json as { error: { details?: unknown } }).error.details).toBeUndefined();
  });

  it('a declared Content-Length over the limit is refused before the body is sent', async () => {
    const url = new URL(server.url);
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ host: url.hostname, port: url.port, method: 'POST', path: '/', headers: { 'content-type': 'application/json', 'content-length': '100000000' } }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('error', reject);
      // Only the headers go out: the 413 must come without the server waiting for 100 MB.
      req.flushHeaders();
    });
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'PayloadTooLarge' } });
  });

  it('the simple envelope answers exactly the JSON of the result', async () => {
    for (const value of [null, 0, 'text', [1, { a: [] }], { nested: { deep: true } }]) {
      const a = await post(server.url, JSON.stringify({ method: 'echo', parameters: value }));
      expect(a.status).toBe(200);
      expect(a.text).toBe(JSON.stringify(value));
    }
    const absent = await post(server.url, '{"method":"echo"}');
    expect(absent.json).toEqual({});
    const nothing = await post(server.url, '{"method":"nothing"}');
    expect(nothing.text).toBe('null');
  });
});

describe('reading a body', () => {
  it('takes its listeners off the request once read: a keep-alive connection keeps none of its requests', async () => {
    // Left on, every request of a connection stayed reachable until the connection closed.
    const left: number[] = [];
    const http = createServer((req, res) =>
      readBodyThen(req, 1024, res, (out, err, body) => {
        left.push(['data', 'end', 'error', 'close'].reduce((n, event) => n + req.listenerCount(event), 0));
        out.end(err === null ? body : 'gone');
      }),
    );
    await new Promise<void>((done) => http.listen(0, '127.0.0.1', done));
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const { port } = http.address() as AddressInfo;
    const sockets = new Set<unknown>();
    try {
      for (const text of ['one', 'two', 'three']) {
        const answer = await new Promise<string>((resolve, reject) => {
          const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/', agent }, (res) => {
            sockets.add(res.socket);
            let got = '';
            res.on('data', (c) => (got += c));
            res.on('end', () => resolve(got));
          });
          req.on('error', reject);
          req.end(text);
        });
        expect(answer).toBe(text);
      }
    } finally {
      agent.destroy();
      await new Promise((done) => http.close(done));
    }
    expect(sockets.size).toBe(1); // one connection carried all three
    expect(left).toEqual([0, 0, 0]);
  });
});
