/**
 * The operators' view over real HTTP: /metrics after a known sequence of calls, parsed as
 * Prometheus text; W3C trace context in and out, in logs, ctx and jobs; /health/live and
 * /health/ready.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import parsePrometheus, { type ParsedFamily } from 'parse-prometheus-text-format';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { parseTraceparent } from '../src/core/trace.ts';
import { createLogger } from '../src/log.ts';
import { createKoaMiddleware } from '../src/server.ts';
import { MemoryStore } from '../src/store/memory.ts';
import { hasMongo, MONGODB_URL, uniqueDbName } from './helpers/mongo.ts';
import { FIXTURE_METHODS, freePort, LogCapture, post, ROOT, spawnServer, startTestServer } from './helpers/server.ts';
import { freshNonce, postV2, type Grant } from './helpers/signed.ts';

/**
 * Every sample line of the text format: name, optional labels, a value (no timestamps here).
 * Prometheus reads values with Go's ParseFloat, which takes NaN and Inf in any case (prom-client
 * writes `Nan` for an event-loop lag not yet measured).
 */
const SAMPLE_LINE = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? (-?[0-9.e+-]+|[Nn][Aa][Nn]|[+-]Inf)$/;
const COMMENT_LINE = /^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*|TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary|untyped))$/;

async function scrape(url: string): Promise<{ text: string; families: Map<string, ParsedFamily> }> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    expect(SAMPLE_LINE.test(line) || COMMENT_LINE.test(line), `not Prometheus text: ${line}`).toBe(true);
  }
  return { text, families: new Map(parsePrometheus(text).map((f) => [f.name, f])) };
}

/** The value of the series of `name` whose labels include `labels`; undefined when there is none. */
function value(families: Map<string, ParsedFamily>, name: string, labels: Record<string, string> = {}): number | undefined {
  const family = families.get(name);
  const sample = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  if (sample === undefined) return undefined;
  return Number(sample.value ?? sample.count);
}

/**
 * The value of a raw sample line (`name{labels} value`) whose labels include `labels`: for a
 * histogram's `_count` and `_sum`, whose labels the parser above does not keep.
 */
function rawValue(text: string, series: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== series) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:\\.|[^"\\])*)"/g)].map((l) => [l[1]!, l[2]!]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

const call = (url: string, method: string, parameters: unknown = {}, headers: Record<string, string> = {}) => post(url, JSON.stringify({ method, parameters }), headers);

async function waitForJob(base: string, location: string): Promise<{ state: string; result?: unknown }> {
  for (;;) {
    const res = await fetch(new URL(location, base));
    const body = (await res.json()) as { state: string; result?: unknown };
    if (body.state === 'done' || body.state === 'failed') return body;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('GET /metrics', () => {
  it('counts a known sequence of calls, and parses as Prometheus text', async () => {
    const server = await startTestServer({ 'metrics.enabled': true, 'login.maxFailures': 2 });
    try {
      const metricsUrl = new URL('/metrics', server.url).href;
      // Successes, an error the method throws, an unknown name, a batch of 3.
      for (let i = 0; i < 3; i++) expect((await call(server.url, 'echo', { i })).status).toBe(200);
      expect((await call(server.url, 'fail.code', { code: 'NotFound' })).status).toBe(404);
      expect((await call(server.url, 'no.such.method')).status).toBe(404);
      const batch = await post(server.url, JSON.stringify([
        { jsonrpc: '2.0', method: 'echo', params: { a: 1 }, id: 1 },
        { jsonrpc: '2.0', method: 'echo', params: { a: 2 }, id: 2 },
        { jsonrpc: '2.0', method: 'sum', params: [1, 2], id: 3 },
      ]));
      expect(batch.status).toBe(200);
      // Refused before any call: not JSON.
      expect((await post(server.url, '{nope')).status).toBe(400);
      // Logins: 2 wrong passwords, then the limit (login.maxFailures = 2) answers 429.
      const created = await call(server.url, 'account.create', { user_id: 'metered', password: 'right password' });
      expect(created.status).toBe(200);
      const grant = created.json as Grant;
      for (let i = 0; i < 2; i++) expect((await call(server.url, 'account.login', { user_id: 'metered', password: 'wrong password' })).status).toBe(401);
      const limited = await call(server.url, 'account.login', { user_id: 'metered', password: 'wrong password' });
      expect(limited.status).toBe(429);
      // Authentication failures: a malformed session id, a replayed nonce, a session method without a session.
      expect((await call(server.url, 'whoami', {}, { 'x-session-id': 'not-a-uuid' })).status).toBe(401);
      const nonce = freshNonce();
      expect((await postV2(server.url, grant, '{"method":"whoami"}', { nonce })).status).toBe(200);
      expect((await postV2(server.url, grant, '{"method":"whoami"}', { nonce })).status).toBe(401);
      expect((await call(server.url, 'whoami')).status).toBe(401);
      // A background job, to its end.
      const job = await call(server.url, 'jobs.wait', { ms: 1 });
      expect(job.status).toBe(202);
      expect((await waitForJob(server.url, job.headers.get('location')!)).state).toBe('done');

      const { text, families } = await scrape(metricsUrl);
      expect(value(families, 'simpleapi_calls_total', { method: 'echo', code: 'ok' })).toBe(5);
      expect(value(families, 'simpleapi_calls_total', { method: 'sum', code: 'ok' })).toBe(1);
      expect(value(families, 'simpleapi_calls_total', { method: 'fail.code', code: 'NotFound' })).toBe(1);
      expect(value(families, 'simpleapi_calls_total', { method: 'unknown', code: 'MethodNotFound' })).toBe(1);
      expect(value(families, 'simpleapi_calls_total', { method: 'account.login', code: 'Unauthenticated' })).toBe(2);
      expect(value(families, 'simpleapi_calls_total', { method: 'account.login', code: 'TooManyRequests' })).toBe(1);
      expect(value(families, 'simpleapi_calls_total', { method: 'whoami', code: 'ok' })).toBe(1);
      expect(value(families, 'simpleapi_calls_total', { method: 'whoami', code: 'Unauthenticated' })).toBe(1);
      expect(value(families, 'simpleapi_calls_total', { method: 'jobs.wait', code: 'ok' })).toBe(1);
      // Names outside the method table never become label values.
      expect(text).not.toContain('no.such.method');
      expect(value(families, 'simpleapi_rate_limited_total')).toBe(1);
      expect(value(families, 'simpleapi_refused_requests_total', { code: 'ParseError' })).toBe(1);
      expect(value(families, 'simpleapi_refused_requests_total', { code: 'Unauthenticated' })).toBe(1);
      expect(value(families, 'simpleapi_refused_requests_total', { code: 'BadSignature' })).toBe(1);
      expect(value(families, 'simpleapi_auth_failures_total', { reason: 'bad_session_id' })).toBe(1);
      expect(value(families, 'simpleapi_auth_failures_total', { reason: 'nonce_replayed' })).toBe(1);
      expect(value(families, 'simpleapi_auth_failures_total', { reason: 'session_required' })).toBe(1);
      expect(rawValue(text, 'simpleapi_batch_size_count')).toBe(1);
      expect(rawValue(text, 'simpleapi_batch_size_sum')).toBe(3);
      expect(value(families, 'simpleapi_jobs_finished_total', { method: 'jobs.wait', outcome: 'done' })).toBe(1);
      expect(value(families, 'simpleapi_jobs_running')).toBe(0);
      expect(value(families, 'simpleapi_jobs_queued')).toBe(0);
      expect(value(families, 'simpleapi_retries_answered_total')).toBe(0);
      expect(value(families, 'simpleapi_streams_open')).toBe(0);
      // 16 POSTs to the endpoint; the job's status reads are their own route.
      const endpointRequests = families.get('simpleapi_http_requests_total')!.metrics.filter((m) => m.labels?.route === 'endpoint').reduce((n, m) => n + Number(m.value), 0);
      expect(endpointRequests).toBe(16);
      expect(value(families, 'simpleapi_http_requests_total', { route: 'endpoint', status: '429' })).toBe(1);
      expect(value(families, 'simpleapi_http_requests_total', { route: 'jobs', status: '200' })).toBe(1);
      expect(rawValue(text, 'simpleapi_call_duration_seconds_count', { method: 'echo' })).toBe(5);
      expect(rawValue(text, 'simpleapi_call_duration_seconds_bucket', { method: 'echo', le: '+Inf' })).toBe(5);
      // Store operations, timed through the one measuring wrapper.
      expect(rawValue(text, 'simpleapi_store_operation_duration_seconds_count', { op: 'createAccount' })).toBe(1);
      expect(rawValue(text, 'simpleapi_store_operation_duration_seconds_count', { op: 'recordFailure' })).toBe(6); // two wrong passwords, each counted for the (user, address) pair, the address and the user
      expect(rawValue(text, 'simpleapi_store_operation_duration_seconds_count', { op: 'rememberNonce' })).toBe(2);
      expect(value(families, 'simpleapi_store_errors_total', { op: 'createAccount' })).toBeUndefined();
      // Process and Node metrics, event-loop lag among them.
      expect(families.has('process_cpu_seconds_total')).toBe(true);
      expect(families.has('nodejs_eventloop_lag_seconds')).toBe(true);
      expect(families.get('simpleapi_call_duration_seconds')!.type).toBe('HISTOGRAM');
    } finally {
      await server.close();
    }
  });

  it('counts a stream while it is open', async () => {
    const server = await startTestServer({ 'metrics.enabled': true });
    try {
      const metricsUrl = new URL('/metrics', server.url).href;
      const abort = new AbortController();
      const res = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"method":"ops.held_stream"}', signal: abort.signal });
      const reader = res.body!.getReader();
      expect(new TextDecoder().decode((await reader.read()).value)).toContain('"open":true');
      expect(value((await scrape(metricsUrl)).families, 'simpleapi_streams_open')).toBe(1);
      abort.abort();
      // The server sees the client go away on its own schedule: wait for the gauge, no timing.
      while (value((await scrape(metricsUrl)).families, 'simpleapi_streams_open') !== 0) await new Promise((r) => setTimeout(r, 20));
    } finally {
      await server.close();
    }
  });

  it('is not served without --metrics', async () => {
    const server = await startTestServer();
    try {
      expect((await fetch(new URL('/metrics', server.url))).status).toBe(404);
    } finally {
      await server.close();
    }
  });

  it('serves on --metrics-port alone when given one', async () => {
    const server = await startTestServer({ 'metrics.enabled': true, 'metrics.port': 0 });
    try {
      expect(server.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      expect(server.metricsUrl).not.toContain(`:${server.address!.port}/`);
      expect((await call(server.url, 'echo', { a: 1 })).status).toBe(200);
      const { families } = await scrape(server.metricsUrl!);
      expect(value(families, 'simpleapi_calls_total', { method: 'echo', code: 'ok' })).toBe(1);
      expect((await fetch(new URL('/metrics', server.url))).status).toBe(404);
    } finally {
      await server.close();
    }
  });
});

// --workers needs a shared database (sessions would differ per worker): MongoDB here. Without
// MONGODB_URL it is skipped, with the reason printed by helpers/mongo.ts (a failure under CI=true).
describe.skipIf(!hasMongo)('/metrics under --workers', () => {
  it('the primary serves the sum of its workers on --metrics-port', async () => {
    const metricsPort = await freePort();
    const server = await spawnServer(['--port=0', '--workers=2', '--metrics', `--metrics-port=${metricsPort}`, `--methods-dir=${FIXTURE_METHODS}`, `--db-url=${MONGODB_URL}`, `--db-name=${uniqueDbName('ops_workers')}`]);
    try {
      // Both workers up (a worker still starting would not answer the primary's request yet).
      while (server.stdout.filter((l) => l.includes('"msg":"listening')).length < 2) await new Promise((r) => setTimeout(r, 20));
      // Fresh connections: the kernel spreads them over both workers, and the sum is the same either way.
      for (let i = 0; i < 6; i++) expect((await post(server.url!, '{"method":"echo","parameters":{}}', { connection: 'close' })).status).toBe(200);
      const { families } = await scrape(`http://127.0.0.1:${metricsPort}/metrics`);
      expect(value(families, 'simpleapi_calls_total', { method: 'echo', code: 'ok' })).toBe(6);
    } finally {
      await server.stop();
    }
  });
});

describe('W3C trace context', () => {
  const incoming = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

  it('continues the caller’s trace: traceresponse, ctx.traceId and every log line of the request', async () => {
    const server = await startTestServer();
    try {
      const res = await call(server.url, 'ops.trace', {}, { traceparent: incoming, 'x-request-id': 'traced-request' });
      expect(res.status).toBe(200);
      expect(res.json).toEqual({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736' });
      const echoed = parseTraceparent(res.headers.get('traceresponse') ?? undefined);
      expect(echoed?.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
      // This server's own span, not the caller's.
      expect(echoed?.parentId).not.toBe('00f067aa0ba902b7');
      expect(echoed?.flags).toBe('01');
      const lines = server.logs.lines.filter((l) => l.reqId === 'traced-request');
      expect(lines.map((l) => l.msg).sort()).toEqual(['inside the traced method', 'request']);
      for (const line of lines) expect(line.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    } finally {
      await server.close();
    }
  });

  it('starts a new trace when none, or an invalid one, comes', async () => {
    const server = await startTestServer();
    try {
      const invalid = [
        undefined,
        '00-00000000000000000000000000000000-00f067aa0ba902b7-01', // zero trace id
        '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01', // zero parent id
        'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', // version ff
        '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01', // upper case
        '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra', // version 00 has no more fields
      ];
      const seen = new Set<string>();
      for (const header of invalid) {
        const res = await call(server.url, 'ops.trace', {}, header === undefined ? {} : { traceparent: header });
        const traceId = (res.json as { traceId: string }).traceId;
        expect(traceId).toMatch(/^[0-9a-f]{32}$/);
        expect(traceId).not.toBe('4bf92f3577b34da6a3ce929d0e0e4736');
        expect(parseTraceparent(res.headers.get('traceresponse') ?? undefined)?.traceId).toBe(traceId);
        seen.add(traceId);
      }
      expect(seen.size).toBe(invalid.length);
      // A later version's extra fields are allowed (§3.2.4).
      const future = await call(server.url, 'ops.trace', {}, { traceparent: '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more' });
      expect((future.json as { traceId: string }).traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
      // Every route the core answers carries it, errors too.
      for (const res of [await post(server.url, '{nope', { traceparent: incoming }), await fetch(new URL('/health/live', server.url), { headers: { traceparent: incoming } })]) {
        expect(res.headers.get('traceresponse')).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
      }
    } finally {
      await server.close();
    }
  });

  it('follows a request into the background job it started', async () => {
    const server = await startTestServer();
    try {
      const res = await call(server.url, 'ops.trace_job', {}, { traceparent: incoming });
      expect(res.status).toBe(202);
      const done = await waitForJob(server.url, res.headers.get('location')!);
      expect(done).toMatchObject({ state: 'done', result: { traceId: '4bf92f3577b34da6a3ce929d0e0e4736' } });
      const jobLine = server.logs.lines.find((l) => l.msg === 'inside the traced job');
      expect(jobLine?.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    } finally {
      await server.close();
    }
  });
});

/** A store whose database can be switched off, as an outage would. */
class SwitchableStore extends MemoryStore {
  up = true;
  override async ping(): Promise<boolean> {
    return this.up;
  }
}

describe('/health/live and /health/ready', () => {
  it('live answers while the database is down; ready follows the database', async () => {
    const store = new SwitchableStore();
    const server = await startTestServer({}, store);
    try {
      const get = async (path: string) => {
        const res = await fetch(new URL(path, server.url));
        return { status: res.status, body: (await res.json()) as unknown };
      };
      expect(await get('/health/live')).toEqual({ status: 200, body: { status: 'ok' } });
      expect(await get('/health/ready')).toEqual({ status: 200, body: { status: 'ready' } });
      store.up = false;
      expect(await get('/health/live')).toEqual({ status: 200, body: { status: 'ok' } });
      expect(await get('/health/ready')).toEqual({ status: 503, body: { status: 'unready', db: 'down' } });
      expect((await get('/health')).status).toBe(503);
      store.up = true;
      expect((await get('/health/ready')).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('ready says draining once shutdown begins, while the process still answers', async () => {
    const config = loadConfig({ argvOptions: { methodsDir: FIXTURE_METHODS }, cwd: ROOT, env: {} });
    const api = await createKoaMiddleware({ config, store: new MemoryStore(), log: createLogger({ level: 'silent', destination: new LogCapture() }) });
    const app = new Koa();
    app.use(api.middleware);
    const http: Server = createServer(app.callback());
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    try {
      expect((await fetch(`${base}/health/ready`)).status).toBe(200);
      api.core.drain();
      const ready = await fetch(`${base}/health/ready`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toEqual({ status: 'draining' });
      expect((await fetch(`${base}/health/live`)).status).toBe(200);
    } finally {
      await api.close(0);
      await new Promise((r) => http.close(r));
    }
  });
});
