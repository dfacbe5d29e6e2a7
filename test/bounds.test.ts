/**
 * Bounds on what one caller can grow, over real HTTP: session state size, sessions per user,
 * answer size, queued jobs, streams per address.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, startTestServer, type TestServer } from './helpers/server.ts';
import { createAccount, getV2, postV2 } from './helpers/signed.ts';

const call = (method: string, parameters: unknown = {}) => JSON.stringify({ method, parameters });

describe('session state and sessions per user', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ 'session.maxState': 1000, 'session.maxPerUser': 3 });
  });
  afterAll(() => server.close());

  it('refuses a saveState() over the cap with PayloadTooLarge and its size, and keeps the stored state', async () => {
    const grant = await createAccount(server.url, 'state-cap');
    expect((await postV2(server.url, grant, call('state.add', { item: 'small' }))).json).toEqual(['small']);
    const big = await postV2(server.url, grant, call('state.add', { item: 'x'.repeat(2000) }));
    expect(big.status).toBe(413);
    const error = (big.json as { error: { code: string; message: string; details: { size: number; limit: number }[] } }).error;
    expect(error.code).toBe('PayloadTooLarge');
    expect(error.message).toContain('over the limit of 1000 bytes');
    expect(error.details[0]!.limit).toBe(1000);
    expect(error.details[0]!.size).toBeGreaterThan(2000);
    expect((await postV2(server.url, grant, call('state.get'))).json).toEqual({ items: ['small'] });
  });

  it('a user holds at most session.maxPerUser sessions: a new one ends the least recently used', async () => {
    const first = await createAccount(server.url, 'many-sessions');
    const login = () => post(server.url, call('account.login', { user_id: 'many-sessions', password: 'password-one' })).then((a) => a.json as typeof first);
    const second = await login();
    const third = await login();
    expect((await postV2(server.url, first, call('whoami'))).status).toBe(200);
    const fourth = await login();
    expect((await postV2(server.url, first, call('whoami'))).status).toBe(401);
    for (const g of [second, third, fourth]) expect((await postV2(server.url, g, call('whoami'))).status).toBe(200);
  });
});

describe('answers capped (--answer-limit)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ answerLimit: 1_000_000 });
  });
  afterAll(() => server.close());

  it('a batch whose answer would pass the cap gets errors for the entries that overflow', async () => {
    const body = JSON.stringify(Array.from({ length: 10 }, (_, i) => ({ jsonrpc: '2.0', method: 'big', params: { bytes: 300_000 }, id: i })));
    const answer = await post(server.url, body);
    expect(answer.status).toBe(200);
    expect(answer.text.length).toBeLessThan(1_000_000);
    const entries = answer.json as { id: number; result?: string; error?: { message: string } }[];
    expect(entries.map((e) => e.id)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(entries.filter((e) => typeof e.result === 'string' && e.result.length === 300_000)).toHaveLength(3);
    for (const e of entries.slice(3)) expect(e.error?.message).toBe('The answer would be larger than the limit of 1000000 bytes (--answer-limit)');
  });

  it('a single answer over the cap is an error too', async () => {
    const simple = await post(server.url, call('big', { bytes: 2_000_000 }));
    expect(simple.status).toBe(500);
    expect(simple.json).toEqual({ error: { code: 'InternalError', message: 'The answer would be larger than the limit of 1000000 bytes (--answer-limit)', type: 'server' } });
    const rpc = await post(server.url, JSON.stringify({ jsonrpc: '2.0', method: 'big', params: { bytes: 2_000_000 }, id: 'x' }));
    expect(rpc.json).toMatchObject({ jsonrpc: '2.0', id: 'x', error: { code: -32603 } });
    expect((await post(server.url, call('big', { bytes: 10 }))).json).toBe('xxxxxxxxxx');
  });
});

describe('jobs: caps and fair turns', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ 'jobs.concurrency': 2, 'jobs.ownerConcurrency': 1, 'jobs.maxPerOwner': 5, 'jobs.maxTotal': 9 });
  });
  afterAll(() => server.close(0));

  it("user B's job runs while user A floods the queue; A's starts past the cap get TooManyRequests", async () => {
    const a = await createAccount(server.url, 'flooder');
    const b = await createAccount(server.url, 'bystander');
    const flood = JSON.stringify(Array.from({ length: 8 }, (_, i) => ({ jsonrpc: '2.0', method: 'reports.slow', params: { steps: 100, stepMs: 60000 }, id: i })));
    const answer = await postV2(server.url, a, flood);
    const entries = answer.json as { result?: { job_id: string }; error?: { code: number; data: { code: string } } }[];
    expect(entries.filter((e) => e.result !== undefined)).toHaveLength(5);
    expect(entries.filter((e) => e.error?.data.code === 'TooManyRequests')).toHaveLength(3);
    expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(0);
    const single = await postV2(server.url, a, call('reports.slow', { steps: 1, stepMs: 0 }));
    expect(single.status).toBe(429);
    expect(single.headers.get('retry-after')).not.toBeNull();

    const started = await postV2(server.url, b, call('reports.slow', { steps: 1, stepMs: 10 }));
    expect(started.status).toBe(202);
    const location = started.headers.get('location')!;
    let state = '';
    for (let i = 0; i < 200 && state !== 'done'; i++) {
      state = String((await getV2(server.url.replace(/\/$/, ''), location, b)).json.state);
      if (state !== 'done') await new Promise((r) => setTimeout(r, 25));
    }
    expect(state).toBe('done');
    // A's first job still runs and four still wait: B did not wait for them.
    const first = await getV2(server.url.replace(/\/$/, ''), `/jobs/${entries[0]!.result!.job_id}`, a);
    expect(first.json.state).toBe('running');
    const last = await getV2(server.url.replace(/\/$/, ''), `/jobs/${entries[4]!.result!.job_id}`, a);
    expect(last.json.state).toBe('queued');
  });

  it('caps queued plus running jobs in total', async () => {
    // 5 of the 9 are the flooder's (B's finished and no longer counts): 4 public ones fit.
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) codes.push((await post(server.url, call('jobs.wait', { ms: 60000 }))).status);
    expect(codes).toEqual([202, 202, 202, 202]);
    const refused = await post(server.url, call('jobs.wait', { ms: 60000 }));
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('5');
    expect((refused.json as { error: { message: string } }).error.message).toContain('The job queue is full (9 queued or running');
  });
});

describe('streams and connections per client address', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ 'stream.maxPerAddress': 2, 'http.maxConnectionsPerAddress': 6 });
  });
  afterAll(() => server.close(0));

  const openStream = async () => {
    const controller = new AbortController();
    const res = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: call('clock.ticks', { intervalMs: 60000, count: 100 }), signal: controller.signal });
    return { res, close: () => controller.abort() };
  };

  it('one address holds at most stream.maxPerAddress streams; the next is 429 until one ends', async () => {
    const a = await openStream();
    const b = await openStream();
    expect([a.res.status, b.res.status]).toEqual([200, 200]);
    const c = await openStream();
    expect(c.res.status).toBe(429);
    expect(c.res.headers.get('retry-after')).toBe('5');
    expect(((await c.res.json()) as { error: { message: string } }).error.message).toContain('--stream-max-per-address');
    a.close();
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      const d = await openStream();
      status = d.res.status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 50));
      else d.close();
    }
    expect(status).toBe(200);
    b.close();
  });

  it('one address holds at most http.maxConnectionsPerAddress connections; more are closed at once', async () => {
    const { connect } = await import('node:net');
    const port = Number(new URL(server.url).port);
    const sockets = await Promise.all(Array.from({ length: 6 }, () => new Promise<import('node:net').Socket>((resolve) => {
      const s = connect(port, '127.0.0.1', () => resolve(s));
      s.on('error', () => {});
    })));
    await new Promise((r) => setTimeout(r, 100));
    const extra = connect(port, '127.0.0.1');
    extra.on('error', () => {});
    const closed = await new Promise<boolean>((resolve) => {
      extra.on('close', () => resolve(true));
      extra.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}');
      setTimeout(() => resolve(false), 5000).unref();
    });
    expect(closed).toBe(true);
    for (const s of sockets) s.destroy();
    // The slots come back: a new request goes through.
    let ok = false;
    for (let i = 0; i < 100 && !ok; i++) {
      ok = (await post(server.url, call('echo', 1)).catch(() => ({ status: 0 }))).status === 200;
      if (!ok) await new Promise((r) => setTimeout(r, 50));
    }
    expect(ok).toBe(true);
  });
});

describe('nonces on the embedded store', () => {
  it('are bounded: expired ones go as new ones come, and past maxNonces a new one is refused, never forgotten', async () => {
    const { MemoryStore } = await import('../src/store/memory.ts');
    const store = new MemoryStore({ maxNonces: 3 });
    for (const n of ['a', 'b', 'c']) expect(await store.rememberNonce('s', n, 110, 100)).toBe(true);
    await expect(store.rememberNonce('s', 'd', 110, 100)).rejects.toMatchObject({ code: 'Unavailable', retryAfter: 5 });
    expect(await store.rememberNonce('s', 'a', 110, 100)).toBe(false); // still remembered: no replay
    // Once they expire, new nonces take their room without a sweep.
    for (const n of ['d', 'e', 'f']) expect(await store.rememberNonce('s', n, 130, 120)).toBe(true);
    await expect(store.rememberNonce('s', 'g', 130, 120)).rejects.toMatchObject({ code: 'Unavailable' });
  });

  it('still refuses a nonce used again after it expired, once its first use is dropped', async () => {
    const { MemoryStore } = await import('../src/store/memory.ts');
    const store = new MemoryStore({ maxNonces: 5 });
    // A client whose clock ran ahead asked for a later expiry: the nonces after it wait behind it.
    expect(await store.rememberNonce('s', 'ahead', 130, 100)).toBe(true);
    expect(await store.rememberNonce('s', 'n', 110, 100)).toBe(true);
    // n's first use expired at 110 and was not dropped yet; it is signed again, kept to 140.
    expect(await store.rememberNonce('s', 'n', 140, 120)).toBe(true);
    for (const other of ['x', 'y', 'z']) expect(await store.rememberNonce('s', other, 160, 131)).toBe(true);
    // "ahead" and n's first use are dropped, n's second use is still remembered: n x y z, room for one.
    expect(await store.rememberNonce('s', 'n', 160, 131)).toBe(false);
    expect(store.nonceCounts.held).toBe(4);
    expect(await store.rememberNonce('s', 'w', 160, 131)).toBe(true);
    await expect(store.rememberNonce('s', 'v', 160, 131)).rejects.toMatchObject({ code: 'Unavailable' });
  });

  it('are swept when expired even behind one that expires later', async () => {
    const { MemoryStore } = await import('../src/store/memory.ts');
    const store = new MemoryStore({ maxNonces: 3 });
    // One call a client signed with a timestamp far ahead, then two of the usual kind.
    for (const [nonce, expires] of [['far', 1000], ['a', 110], ['b', 110]] as const) expect(await store.rememberNonce('s', nonce, expires, 100)).toBe(true);
    await store.sweep(120);
    expect(store.nonceCounts.held).toBe(1);
    for (const nonce of ['c', 'd']) expect(await store.rememberNonce('s', nonce, 140, 120)).toBe(true);
  });

  it('keep their queue within about three times those held, however often one is used again', async () => {
    const { MemoryStore } = await import('../src/store/memory.ts');
    const store = new MemoryStore();
    expect(await store.rememberNonce('s', 'far', 100_000, 100)).toBe(true);
    // The same nonce signed again each second, as soon as it expired: a place more each time,
    // behind one that holds the queue's front for a long while.
    for (let t = 101; t < 5101; t++) expect(await store.rememberNonce('s', 'again', t + 1, t)).toBe(true);
    const { held, queued } = store.nonceCounts;
    expect(held).toBe(2);
    expect(queued).toBeLessThanOrEqual(3 * held + 1024);
    expect(await store.rememberNonce('s', 'again', 5200, 5100)).toBe(false); // its last use, still kept
  });
});

describe('nonces of one user', () => {
  it("are capped per user, so one user cannot fill the store's room and lock out everyone's signed calls", async () => {
    const { MemoryStore } = await import('../src/store/memory.ts');
    const { createAccount, postV2 } = await import('./helpers/signed.ts');
    const server = await startTestServer({}, new MemoryStore({ maxNoncesPerUser: 5, maxNonces: 8 }));
    try {
      const [a, b] = [await createAccount(server.url, 'nonce-a'), await createAccount(server.url, 'nonce-b')];
      const whoami = call('whoami');
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) statuses.push((await postV2(server.url, a, whoami)).status);
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
      const refused = await postV2(server.url, a, whoami);
      // After the MAC verified: signed, with when to come back.
      expect(refused.responseSigned).toBe(true);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect((refused.json as { error: { code: string } }).error.code).toBe('TooManyRequests');
      // The other user still has room: five of the eight the store holds are A's.
      expect((await postV2(server.url, b, whoami)).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});

describe('request lines', () => {
  it('truncate a client-supplied method name and escape its control characters', async () => {
    const server = await startTestServer({ logLevel: 'info' });
    try {
      const name = `evil\n{"forged":true}\u001b[31m${'x'.repeat(500_000)}`;
      expect((await post(server.url, call(name))).status).toBe(404);
      const line = server.logs.raw.find((l) => l.includes('"msg":"request"') && l.includes('evil'))!;
      expect(line.length).toBeLessThan(600);
      expect(line).not.toContain('\n');
      const parsed = JSON.parse(line) as { method: string };
      expect(parsed.method.startsWith('evil\\u000a{"forged":true}\\u001b[31mxxx')).toBe(true);
      expect(parsed.method).toContain(`(${name.length} chars)`);
    } finally {
      await server.close();
    }
  });
});

describe('validation work is bounded', () => {
  it('a large invalid array gets its first error only; a small one every error', async () => {
    const server = await startTestServer({});
    try {
      const large = await post(server.url, JSON.stringify({ method: 'sum', parameters: Array.from({ length: 100_000 }, () => 'x') }));
      expect(large.status).toBe(400);
      expect((large.json as { error: { details: unknown[] } }).error.details).toEqual([{ path: '/0', message: 'must be number' }]);
      const small = await post(server.url, JSON.stringify({ method: 'sum', parameters: [1, 'a', 'b'] }));
      expect((small.json as { error: { details: unknown[] } }).error.details).toEqual([{ path: '/1', message: 'must be number' }, { path: '/2', message: 'must be number' }]);
    } finally {
      await server.close();
    }
  });
});
