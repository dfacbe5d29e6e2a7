/** Slow and greedy clients, limits, TLS, proxies, CORS and shutdown, over real sockets. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, post, spawnServer, startTestServer, type TestServer } from './helpers/server.ts';


/** A raw TCP client: what it writes goes out as is; resolves with all it read once the server closes. */
function rawSocket(url: string): { socket: Socket; closed: Promise<string> } {
  const u = new URL(url);
  const socket = connect(Number(u.port), u.hostname);
  let received = '';
  socket.on('data', (d) => (received += d));
  const closed = new Promise<string>((resolve) => socket.on('close', () => resolve(received)));
  socket.on('error', () => {});
  return { socket, closed };
}

describe('per-method timeout (--method-timeout)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ methodTimeout: 1 });
  });
  afterAll(() => server.close());

  it('answers Timeout (504, -32060) and aborts the method’s ctx.signal', async () => {
    const { aborts } = (await import('./fixtures/methods/abortable.ts')) as { aborts: { requestId: string; reason: string }[] };
    const started = Date.now();
    const a = await post(server.url, call('abortable'), { 'x-request-id': 'timeout-1' });
    expect(a.status).toBe(504);
    expect(a.json).toEqual({ error: { code: 'Timeout', message: 'abortable did not finish within 1 s', type: 'server' } });
    expect(Date.now() - started).toBeLessThan(5000);
    await expect.poll(() => aborts.find((x) => x.requestId === 'timeout-1')?.reason).toBe('TimeoutError');
    const b = await post(server.url, JSON.stringify({ jsonrpc: '2.0', method: 'abortable', id: 9 }));
    expect(b.json).toEqual({ jsonrpc: '2.0', error: { code: -32060, message: 'abortable did not finish within 1 s', data: { code: 'Timeout', type: 'server' } }, id: 9 });
  });

  it('a method that finishes in time is not affected', async () => {
    expect((await post(server.url, call('slow', { ms: 100 }))).json).toMatchObject({ aborted: false });
  });
});

describe('client disconnects', () => {
  it('fire ctx.signal, and the server carries on', async () => {
    const server = await startTestServer();
    try {
      const { aborts } = (await import('./fixtures/methods/abortable.ts')) as { aborts: { requestId: string; reason: string }[] };
      const controller = new AbortController();
      const pending = fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'gone-1' }, body: call('abortable'), signal: controller.signal }).catch((e: Error) => e.name);
      await new Promise((r) => setTimeout(r, 200));
      controller.abort();
      expect(await pending).toBe('AbortError');
      await expect.poll(() => aborts.find((x) => x.requestId === 'gone-1')?.reason).toBe('Error');
      expect((await post(server.url, call('echo', 1))).json).toBe(1);
    } finally {
      await server.close();
    }
  });
});

describe('JSON depth limit', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ 'json.maxDepth': 64 });
  });
  afterAll(() => server.close());

  it('refuses deeper nesting with InvalidRequest and accepts the limit itself', async () => {
    const nested = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
    const deep = await post(server.url, `{"method":"echo","parameters":${nested(100_000)}}`);
    expect(deep.status).toBe(400);
    expect(deep.json).toEqual({ error: { code: 'InvalidRequest', message: 'The body nests arrays and objects deeper than 64 levels', type: 'invalidRequest' } });
    const ok = await post(server.url, `{"method":"echo","parameters":${nested(63)}}`);
    expect(ok.status).toBe(200);
    // Brackets inside strings do not count.
    const inString = await post(server.url, JSON.stringify({ method: 'echo', parameters: '['.repeat(1000) }));
    expect(inString.status).toBe(200);
  });
});

describe('slow and greedy clients', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ 'http.headersTimeout': 1, 'http.requestTimeout': 2, 'http.keepAliveTimeout': 1, 'http.maxConnections': 20 });
  });
  afterAll(() => server.close(0));

  it('a body that never finishes is cut off after the request timeout with 408', async () => {
    const { socket, closed } = rawSocket(server.url);
    socket.write('POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"method":');
    const started = Date.now();
    const received = await closed;
    expect(received).toMatch(/^HTTP\/1\.1 408/);
    expect(Date.now() - started).toBeLessThan(6000);
    expect((await post(server.url, call('echo', 'still up'))).json).toBe('still up');
  });

  it('headers that never finish are cut off after the headers timeout', async () => {
    const { socket, closed } = rawSocket(server.url);
    socket.write('POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
    const started = Date.now();
    await closed;
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('an idle keep-alive connection is closed after the keep-alive timeout', async () => {
    const { socket, closed } = rawSocket(server.url);
    const body = call('echo', 1);
    socket.write(`POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    const started = Date.now();
    const received = await closed;
    expect(received).toMatch(/^HTTP\/1\.1 200/);
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('a truncated body followed by a disconnect costs nothing', async () => {
    const { socket, closed } = rawSocket(server.url);
    socket.write('POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{"meth');
    await new Promise((r) => setTimeout(r, 100));
    socket.destroy();
    await closed;
    expect((await post(server.url, call('echo', 2))).json).toBe(2);
  });

  it('connections past the cap are refused; the server serves again when they go', async () => {
    const held = Array.from({ length: 20 }, () => rawSocket(server.url));
    await new Promise((r) => setTimeout(r, 300));
    const extra = rawSocket(server.url);
    const body = call('echo', 3);
    extra.socket.write(`POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    expect(await extra.closed).toBe('');
    for (const h of held) h.socket.destroy();
    await Promise.all(held.map((h) => h.closed));
    await expect.poll(async () => (await post(server.url, call('echo', 4)).catch(() => ({ json: null }))).json).toBe(4);
  });
});

describe('CORS', () => {
  it('is off unless origins are configured: no CORS headers at all', async () => {
    const server = await startTestServer();
    try {
      const a = await post(server.url, call('echo', 1), { origin: 'https://app.example' });
      expect(a.headers.get('access-control-allow-origin')).toBeNull();
      const pre = await fetch(server.url, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } });
      expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    } finally {
      await server.close();
    }
  });

  it('answers only the listed origins, exactly', async () => {
    const server = await startTestServer({ 'cors.origins': 'https://app.example,http://localhost:3000' });
    try {
      const a = await post(server.url, call('echo', 1), { origin: 'https://app.example' });
      expect(a.headers.get('access-control-allow-origin')).toBe('https://app.example');
      expect(a.headers.get('access-control-expose-headers')).toContain('x-hmac');
      expect(a.headers.get('vary')).toBe('Origin');
      const other = await post(server.url, call('echo', 1), { origin: 'https://evil.example' });
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
      const pre = await fetch(server.url, { method: 'OPTIONS', headers: { origin: 'http://localhost:3000', 'access-control-request-method': 'POST' } });
      expect(pre.status).toBe(204);
      expect(pre.headers.get('access-control-allow-methods')).toBe('POST');
      expect(pre.headers.get('access-control-allow-headers')).toContain('x-session-id');
    } finally {
      await server.close();
    }
  });
});

describe('--trust-proxy', () => {
  it('takes the client address from X-Forwarded-For only when set, and then the right-most untrusted entry', async () => {
    const plain = await startTestServer();
    const proxied = await startTestServer({ trustProxy: true });
    try {
      // The client wrote 203.0.113.7; the one proxy (our socket peer) appended what it saw.
      const headers = { 'x-forwarded-for': '203.0.113.7, 10.0.0.1' };
      expect(((await post(plain.url, call('peek'), headers)).json as { ip: string }).ip).toMatch(/127\.0\.0\.1/);
      expect(((await post(proxied.url, call('peek'), headers)).json as { ip: string }).ip).toBe('10.0.0.1');
    } finally {
      await plain.close();
      await proxied.close();
    }
  });

  it('without it, a forged X-Forwarded-For does not dodge the per-address login limit', async () => {
    const server = await startTestServer({ 'login.maxFailuresPerIp': 2, 'login.maxFailures': 100 });
    try {
      for (let i = 0; i < 2; i++) {
        await post(server.url, call('account.login', { user_id: `u${i}`, password: 'password-xx' }), { 'x-forwarded-for': `198.51.100.${i}` });
      }
      const a = await post(server.url, call('account.login', { user_id: 'u9', password: 'password-xx' }), { 'x-forwarded-for': '198.51.100.99' });
      expect(a.status).toBe(429);
    } finally {
      await server.close();
    }
  });
});

describe('TLS (--tls-cert, --tls-key)', () => {
  it('serves HTTPS with a generated self-signed certificate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'simpleapi-tls-'));
    const [cert, key] = [join(dir, 'cert.pem'), join(dir, 'key.pem')];
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const server = await startTestServer({ 'tls.cert': cert, 'tls.key': key });
    try {
      expect(server.url.startsWith('https://127.0.0.1:')).toBe(true);
      const body = call('sum', [20, 22]);
      const answer = await new Promise<{ status: number; text: string; authorized: boolean }>((resolve, reject) => {
        const u = new URL(server.url);
        const req = httpsRequest({ host: u.hostname, port: u.port, path: '/', method: 'POST', ca: readFileSync(cert), headers: { 'content-type': 'application/json' } }, (res) => {
          let text = '';
          const authorized = (res.socket as import('node:tls').TLSSocket).authorized;
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode!, text, authorized }));
        });
        req.on('error', reject);
        req.end(body);
      });
      expect(answer).toEqual({ status: 200, text: '42', authorized: true });
    } finally {
      await server.close();
    }
  });
});

describe('graceful shutdown', () => {
  it('SIGTERM: stops accepting, lets in-flight requests finish, exits 0', async () => {
    const s = await spawnServer(['--port=0', '--methods-dir=test/fixtures/methods', '--shutdown-grace=10']);
    const inFlight = Array.from({ length: 5 }, (_, i) => post(s.url!, call('slow', { ms: 1500 + i * 100 })));
    await new Promise((r) => setTimeout(r, 400));
    s.proc.kill('SIGTERM');
    const answers = await Promise.all(inFlight);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    for (const a of answers) expect((a.json as { aborted: boolean }).aborted).toBe(false);
    expect(await s.exited).toBe(0);
    await expect(post(s.url!, call('echo', 1))).rejects.toThrow();
  });

  it('an unhandled rejection is logged in full, in-flight calls finish, and the process exits 1', async () => {
    const s = await spawnServer(['--port=0', '--methods-dir=test/fixtures/methods', '--shutdown-grace=10', '--log-format=json']);
    const slow = post(s.url!, call('slow', { ms: 800 }));
    await new Promise((r) => setTimeout(r, 100));
    expect((await post(s.url!, call('crash.unhandled', { really: true }))).json).toBe('answered before the crash');
    expect((await slow).status).toBe(200);
    expect(await s.exited).toBe(1);
    const fatal = s.stdout.map((l) => JSON.parse(l) as { level: number; msg: string; err?: { message: string; stack: string } }).find((l) => l.level === 60);
    expect(fatal?.msg).toContain('an uncaught error: shutting down');
    expect(fatal?.err?.message).toBe('nobody awaited this: the crash test');
    expect(fatal?.err?.stack).toContain('crash/unhandled.ts');
  });

  it('a second signal exits at once', async () => {
    const s = await spawnServer(['--port=0', '--methods-dir=test/fixtures/methods', '--shutdown-grace=60']);
    void post(s.url!, call('slow', { ms: 30_000 })).catch(() => {});
    await new Promise((r) => setTimeout(r, 300));
    s.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    s.proc.kill('SIGINT');
    expect(await s.exited).toBe(1);
    expect(Date.now() - started).toBeLessThan(3000);
  });
});
