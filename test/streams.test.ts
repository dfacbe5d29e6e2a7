/**
 * Streaming methods (`stream = true`) and raw ones (`raw = true`) over real HTTP: framing, the
 * signed stream's trailer, backpressure against a client that never reads, the maximum duration,
 * and ctx.signal on disconnect.
 */
import { createHmac } from 'node:crypto';
import { request } from 'node:http';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { call, post, useTestServer } from './helpers/server.ts';
import { createAccount, v2Headers } from './helpers/signed.ts';


/** POSTs and reads the whole streamed answer, trailers included. */
function fetchStream(url: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; text: string; trailers: Record<string, string> }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text, trailers: res.trailers as Record<string, string> }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('streaming methods', () => {
  const server = useTestServer({ 'stream.maxDuration': 2, 'stream.idleTimeout': 2 });

  it('frames events as server-sent events by default and as NDJSON when asked', async () => {
    const sse = await fetchStream(server.url, call('clock.ticks', { intervalMs: 10, count: 2 }));
    expect(sse.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(sse.text).toMatch(/^id: 0\nevent: tick\ndata: \{"now":"[^"]+","n":0\}\n\nid: 1\nevent: tick\ndata: \{"now":"[^"]+","n":1\}\n\n$/);
    const nd = await fetchStream(server.url, call('clock.ticks', { intervalMs: 10, count: 2 }), { accept: 'application/x-ndjson' });
    expect(nd.headers['content-type']).toBe('application/x-ndjson; charset=utf-8');
    expect(nd.text.trimEnd().split('\n').map((l) => (JSON.parse(l) as { n: number }).n)).toEqual([0, 1]);
  });

  it('a signed request gets its stream signed: x-hmac arrives as a trailer over every byte sent', async () => {
    const grant = await createAccount(server.url, 'streamer@example.com');
    const body = call('stream.numbers', { n: 3 });
    const headers = v2Headers(grant, body);
    const answer = await fetchStream(server.url, body, headers);
    expect(answer.status).toBe(200);
    expect(answer.headers.trailer).toBe('x-hmac');
    expect(answer.text.trimEnd().split('\n\n')).toHaveLength(3);
    expect(answer.text).toContain('"user":"streamer@example.com"');
    const expected = createHmac('sha256', Buffer.from(grant.session_key, 'base64url')).update(`simpleapi-v2-response\n${headers['x-nonce']}\n${answer.text}`).digest('hex');
    expect(answer.trailers['x-hmac']).toBe(expected);
  });

  it('an unsigned request gets no trailer, and a producer that throws ends with an error event and no internals', async () => {
    const answer = await fetchStream(server.url, call('stream.broken'));
    expect(answer.headers.trailer).toBeUndefined();
    expect(answer.trailers['x-hmac']).toBeUndefined();
    expect(answer.text).toBe('id: 0\ndata: 1\n\nevent: error\ndata: {"error":{"code":"InternalError","message":"Internal error","type":"server"}}\n\n');
  });

  it('a client that never reads holds at most the socket buffers: the producer waits, then the connection is cut', async () => {
    const { produced } = (await import('./fixtures/methods/stream/flood.ts')) as { produced: { bytes: number; stopped: boolean; aborted: boolean } };
    const u = new URL(server.url);
    const socket = connect(Number(u.port), u.hostname);
    const body = call('stream.flood');
    socket.write(`POST / HTTP/1.1\r\nhost: ${u.host}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
    socket.pause(); // never reads a byte
    try {
      await expect.poll(() => produced.bytes, { timeout: 5000 }).toBeGreaterThan(0);
      // Let the buffers fill, then the producer must be parked: its count stops moving.
      await new Promise((r) => setTimeout(r, 700));
      const parked = produced.bytes;
      await new Promise((r) => setTimeout(r, 500));
      expect(produced.bytes).toBe(parked);
      // The bound: the kernel's socket buffers (a few MiB on loopback) plus one event; unbounded
      // writing would have queued gigabytes by now.
      expect(parked).toBeLessThan(32 * 1024 * 1024);
      // --stream-idle-timeout (2 s here): the server gives up on the reader and stops the producer.
      await expect.poll(() => produced.stopped, { timeout: 8000 }).toBe(true);
      expect(produced.aborted).toBe(true);
    } finally {
      socket.destroy();
    }
  });

  it('a stream past --stream-max-duration is ended by the server, and its ctx.signal fires', async () => {
    const { state } = (await import('./fixtures/methods/stream/forever.ts')) as { state: { aborted: boolean } };
    const answer = await fetchStream(server.url, call('stream.forever'));
    expect(answer.text).toBe('id: 0\ndata: {"hello":"once"}\n\n');
    await expect.poll(() => state.aborted).toBe(true);
  });

  it('a disconnect aborts ctx.signal', async () => {
    const { state } = (await import('./fixtures/methods/stream/forever.ts')) as { state: { aborted: boolean } };
    const u = new URL(server.url);
    await new Promise<void>((resolve, reject) => {
      const req = request({ host: u.hostname, port: u.port, path: '/', method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
      req.end(call('stream.forever'));
    });
    await expect.poll(() => state.aborted).toBe(true);
  });
});

describe('raw methods (ctx.http)', () => {
  const server = useTestServer();

  it('write their own answer, and a throw before writing still gets the §4 body', async () => {
    const a = await post(server.url, call('raw.hello'));
    expect(a.status).toBe(200);
    expect(a.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(a.text).toBe('hello over POST');
    const b = await post(server.url, call('raw.fails'));
    expect(b.status).toBe(404);
    expect(b.json).toEqual({ error: { code: 'NotFound', message: 'nothing to send', type: 'notInDatabase' } });
  });

  it('one that overruns --method-timeout after writing, ignoring ctx.signal, has its connection cut', async () => {
    const { startTestServer } = await import('./helpers/server.ts');
    const timed = await startTestServer({ methodTimeout: 1 });
    try {
      const u = new URL(timed.url);
      const started = Date.now();
      const outcome = await new Promise<{ text: string; ended: string }>((resolve) => {
        let text = '';
        const req = request({ host: u.hostname, port: u.port, path: '/', method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ text, ended: 'end' }));
          res.on('error', () => resolve({ text, ended: 'cut' }));
          res.on('aborted', () => resolve({ text, ended: 'cut' }));
        });
        req.on('error', () => resolve({ text, ended: 'cut' }));
        req.end(call('raw.hang'));
      });
      expect(outcome.text).toBe('started\n');
      expect(outcome.ended).toBe('cut');
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await timed.close();
    }
  });

  it('cannot be called in a batch', async () => {
    const a = await post(server.url, JSON.stringify([{ jsonrpc: '2.0', method: 'raw.hello', id: 1 }]));
    expect(a.json).toEqual([{ jsonrpc: '2.0', error: { code: -32600, message: 'raw.hello writes its own response and cannot be called in a batch', data: { code: 'InvalidRequest', type: 'invalidRequest' } }, id: 1 }]);
  });
});
