/** Background jobs (202 and /jobs/<id>) and raw methods (server-sent events), over real HTTP. */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testClock } from '../src/core/clock.ts';
import { call, post, startTestServer, type TestServer } from './helpers/server.ts';
import { createAccount, getV2, type Grant } from './helpers/signed.ts';


const poll = (server: TestServer, location: string, grant?: Grant) => getV2(server.url, location, grant);

async function signedPost(server: TestServer, grant: Grant, body: string) {
  const { postV2 } = await import('./helpers/signed.ts');
  return postV2(server.url, grant, body);
}

describe('background methods', () => {
  let server: TestServer;
  let alice: Grant;
  beforeAll(async () => {
    server = await startTestServer({ 'jobs.concurrency': 2, 'jobs.ownerConcurrency': 2, 'jobs.keep': 2 });
    alice = await createAccount(server.url, 'job-alice@example.com');
  });
  afterAll(() => server.close());

  it('a job’s life: 202 with Location, 202 with progress while running, 200 with the result', async () => {
    const start = await signedPost(server, alice, call('reports.slow', { steps: 4, stepMs: 150 }));
    expect(start.status).toBe(202);
    const jobId = (start.json as { job_id: string }).job_id;
    expect(start.json).toEqual({ job_id: jobId });
    expect(start.headers.get('location')).toBe(`/jobs/${jobId}`);
    expect(start.responseSigned).toBe(true);
    let seenProgress = false;
    let last: Awaited<ReturnType<typeof poll>> | undefined;
    for (let i = 0; i < 100; i++) {
      last = await poll(server, `/jobs/${jobId}`, alice);
      expect(last.signed).toBe(true);
      if (last.status === 200) break;
      expect(last.status).toBe(202);
      expect(['queued', 'running']).toContain(last.json.state);
      if (last.json.progress !== null) {
        seenProgress = true;
        expect(last.json.progress).toMatchObject({ fraction: expect.any(Number), note: expect.stringMatching(/^step \d of 4$/) });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(seenProgress).toBe(true);
    expect(last!.status).toBe(200);
    expect(last!.json).toMatchObject({ job_id: jobId, method: 'reports.slow', state: 'done', progress: { fraction: 1, note: 'step 4 of 4' }, result: { steps: 4, by: 'job-alice@example.com' } });
  });

  it('JSON-RPC: the result is {job_id}', async () => {
    const a = await signedPost(server, alice, JSON.stringify({ jsonrpc: '2.0', method: 'reports.slow', params: { steps: 1, stepMs: 0 }, id: 'r1' }));
    expect(a.status).toBe(200);
    expect(a.json).toEqual({ jsonrpc: '2.0', result: { job_id: expect.any(String) }, id: 'r1' });
  });

  it("another user's signed poll is refused, and so is an unsigned one", async () => {
    const start = await signedPost(server, alice, call('reports.slow', { steps: 1, stepMs: 0 }));
    const location = start.headers.get('location')!;
    const mallory = await createAccount(server.url, 'job-mallory@example.com');
    const other = await poll(server, location, mallory);
    expect(other.status).toBe(403);
    expect(other.json).toEqual({ error: { code: 'Forbidden', message: 'This job belongs to another user', type: 'permission' } });
    const unsigned = await poll(server, location);
    expect(unsigned.status).toBe(401);
    expect((await poll(server, '/jobs/00000000-0000-4000-8000-000000000000', alice)).status).toBe(404);
  });

  it('a poll is signed over its target: a signature made for one job does not fit another', async () => {
    const first = (await signedPost(server, alice, call('reports.slow', { steps: 1, stepMs: 10 }))).headers.get('location')!;
    const second = (await signedPost(server, alice, call('reports.slow', { steps: 1, stepMs: 10 }))).headers.get('location')!;
    const borrowed = await getV2(server.url, second, alice, { signTarget: first });
    expect(borrowed.status).toBe(401);
    expect(borrowed.json).toMatchObject({ error: { code: 'BadSignature' } });
    // The MAC did not verify, so the answer carries no signature (§6).
    expect(borrowed.headers.get('x-hmac')).toBeNull();
    expect((await getV2(server.url, first, alice)).signed).toBe(true);
  });

  it('validation happens before a job is queued, and failures are kept as the job’s error', async () => {
    const bad = await signedPost(server, alice, call('reports.slow', { steps: 0 }));
    expect(bad.status).toBe(400);
    const failing = await post(server.url, call('jobs.fail'));
    const failedJob = await waitDone(server, failing.headers.get('location')!);
    expect(failedJob).toMatchObject({ state: 'failed', error: { code: 'NotFound', message: 'nothing to report on', type: 'notInDatabase' } });
    const crashing = await post(server.url, call('jobs.crash'));
    const crashed = await waitDone(server, crashing.headers.get('location')!);
    expect(crashed.error).toEqual({ code: 'InternalError', message: 'Internal error', type: 'server' });
    expect(JSON.stringify(crashed)).not.toContain('must not leak');
  });

  it('runs at most jobs.concurrency at once; the rest queue', async () => {
    const { running } = (await import('./fixtures/methods/jobs/wait.ts')) as { running: { now: number; peak: number } };
    running.peak = 0;
    const starts = await Promise.all(Array.from({ length: 5 }, () => post(server.url, call('jobs.wait', { ms: 300 }))));
    const locations = starts.map((s) => s.headers.get('location')!);
    const states = await Promise.all(locations.map((l) => poll(server, l)));
    expect(states.filter((s) => s.json.state === 'queued').length).toBeGreaterThanOrEqual(3);
    for (const l of locations) expect((await waitDone(server, l)).state).toBe('done');
    expect(running.peak).toBe(2);
  });

  it('finished jobs expire after jobs.keep seconds', async () => {
    const start = await post(server.url, call('jobs.wait', { ms: 0 }));
    const location = start.headers.get('location')!;
    await waitDone(server, location);
    expect((await poll(server, location)).status).toBe(200);
    testClock.advance(3);
    try {
      const gone = await poll(server, location);
      expect(gone.status).toBe(404);
    } finally {
      testClock.reset();
    }
  });
});

describe('finished jobs kept', () => {
  it('at most jobs.maxTotal of them: past that the oldest finished is forgotten early', async () => {
    const server = await startTestServer({ 'jobs.maxTotal': 3 });
    try {
      const locations: string[] = [];
      for (let i = 0; i < 5; i++) {
        const start = await post(server.url, call('jobs.wait', { ms: 0 }));
        locations.push(start.headers.get('location')!);
        await waitDone(server, locations[i]!);
      }
      const statuses = await Promise.all(locations.map(async (l) => (await poll(server, l)).status));
      expect(statuses).toEqual([404, 404, 200, 200, 200]);
    } finally {
      await server.close();
    }
  });
});

async function waitDone(server: TestServer, location: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 200; i++) {
    const p = await poll(server, location);
    if (p.status === 200) return p.json;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`job at ${location} did not finish`);
}

describe('job timeout', () => {
  it('a job past jobs.timeout is failed with Timeout, never left running', async () => {
    const server = await startTestServer({ 'jobs.timeout': 1 });
    try {
      const start = await post(server.url, call('jobs.wait', { ms: 5000 }));
      const job = await waitDone(server, start.headers.get('location')!);
      expect(job).toMatchObject({ state: 'failed', error: { code: 'Timeout', message: 'jobs.wait did not finish within 1 s' } });
    } finally {
      await server.close(0);
    }
  });
});

describe('streaming methods: server-sent events', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close(0));

  it('streams events unwrapped and unsigned, and notices when the client goes away', async () => {
    const { open } = (await import('./fixtures/methods/clock/ticks.ts')) as { open: { streams: number } };
    const u = new URL(server.url);
    const events: string[] = [];
    const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const req = request({ host: u.hostname, port: u.port, path: '/', method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        res.setEncoding('utf8');
        let buffered = '';
        res.on('data', (chunk: string) => {
          buffered += chunk;
          const parts = buffered.split('\n\n');
          buffered = parts.pop()!;
          events.push(...parts);
          if (events.length >= 3) {
            resolve({ status: res.statusCode, ...res.headers });
            req.destroy();
          }
        });
      });
      req.on('error', (err) => (events.length >= 3 ? undefined : reject(err)));
      req.end(call('clock.ticks', { intervalMs: 50 }));
    });
    expect(headers).toMatchObject({ status: 200, 'content-type': 'text/event-stream; charset=utf-8' });
    expect(headers['x-hmac']).toBeUndefined();
    expect(events[0]).toMatch(/^id: 0\nevent: tick\ndata: \{"now":"[^"]+","n":0\}$/);
    expect(events[2]).toContain('"n":2');
    await expect.poll(() => open.streams).toBe(0);
    expect((await post(server.url, call('echo', 'after the stream'))).json).toBe('after the stream');
  });

  it('ends by itself after count events, and cannot be batched', async () => {
    const res = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: call('clock.ticks', { intervalMs: 10, count: 3 }) });
    const text = await res.text();
    expect(text.split('\n\n').filter(Boolean)).toHaveLength(3);
    const batch = await post(server.url, JSON.stringify([{ jsonrpc: '2.0', method: 'clock.ticks', id: 1 }]));
    expect(batch.json).toEqual([{ jsonrpc: '2.0', error: { code: -32600, message: 'clock.ticks streams its own response and cannot be called in a batch', data: { code: 'InvalidRequest', type: 'invalidRequest' } }, id: 1 }]);
  });

  it('a streaming method whose params are refused answers with the §4 body', async () => {
    const a = await post(server.url, call('clock.ticks', { intervalMs: 1 }));
    expect(a.status).toBe(400);
    expect(a.json).toMatchObject({ error: { code: 'InvalidParams' } });
  });
});

describe('the client and the CLI with background methods', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close(0));

  it('client.call returns the job handle, or waits for the result with { wait: true }', async () => {
    const { SimpleApiClient, SimpleApiError } = await import('../src/client/index.ts');
    const client = new SimpleApiClient({ url: server.url });
    await client.create('client-jobs@example.com', 'password-one');
    const handle = (await client.call('reports.slow', { steps: 2, stepMs: 50 })) as { job_id: string; location: string };
    expect(handle).toEqual({ job_id: expect.any(String), location: `/jobs/${handle.job_id}` });
    expect(await client.waitForJob(handle)).toEqual({ steps: 2, by: 'client-jobs@example.com' });
    const seen: string[] = [];
    const result = await client.call('reports.slow', { steps: 3, stepMs: 100 }, { wait: true, onProgress: (s) => seen.push(s.state) });
    expect(result).toEqual({ steps: 3, by: 'client-jobs@example.com' });
    expect(seen.at(-1)).toBe('done');
    await expect(client.call('jobs.fail', {}, { wait: true })).rejects.toEqual(expect.objectContaining({ code: 'NotFound', message: 'nothing to report on' }));
    await expect(client.call('jobs.fail', {}, { wait: true })).rejects.toBeInstanceOf(SimpleApiError);
  });

  it('simpleapi call waits for a background job and shows its progress on stderr', async () => {
    const { runCli } = await import('./helpers/server.ts');
    await post(server.url, call('account.create', { user_id: 'cli-jobs', password: 'password-one' }));
    const { code, stdout, stderr } = await runCli(['call', 'reports.slow', '{"steps":3,"stepMs":300}', `--url=${server.url}`, '--user=cli-jobs', '--password=password-one']);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({ steps: 3, by: 'cli-jobs' });
    expect(stderr).toMatch(/job [0-9a-f-]{36}: running \d+% step \d of 3/);
    expect(stderr).toMatch(/job [0-9a-f-]{36}: done 100% step 3 of 3/);
  });
});
