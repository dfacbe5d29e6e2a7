/**
 * The general rate limiter over real HTTP: per client address for anonymous calls, per user for
 * signed ones, each batch entry counting, a method's own rule, account.create per address; and,
 * on MySQL/MariaDB and MongoDB, a limit two instances share.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.ts';
import { createHash } from 'node:crypto';
import { ProcessCounter, RateLimits, sweepMySqlCounters, windowOf } from '../src/core/rate-limit.ts';
import { addressKeyOf } from '../src/core/address.ts';
import { buildRecord, createAjv, RegistryError } from '../src/core/registry.ts';
import { jobTimeoutOf } from '../src/core/jobs.ts';
import { LogCapture, post, startTestServer, type TestServer } from './helpers/server.ts';
import { createAccount, nowSeconds, postV2 } from './helpers/signed.ts';
import { hasMySql, openMySqlStore, uniqueMySqlDb, dropMySqlDb } from './helpers/mysql.ts';
import { hasMongo, MONGODB_URL, openAtomicMongoStore } from './helpers/mongo.ts';
import { MongoStore } from '../src/store/mongo.ts';
import type { Store } from '../src/store/types.ts';
import type { RowDataPacket } from 'mysql2/promise';

const call = (method: string, parameters: unknown = {}) => JSON.stringify({ method, parameters });
const batch = (n: number, method = 'echo') => JSON.stringify(Array.from({ length: n }, (_, i) => ({ jsonrpc: '2.0', method, params: [i], id: i })));

describe('the in-process counter', () => {
  it('counts a fixed window from the first call, refused calls included, then starts again', () => {
    const counter = new ProcessCounter(3, 60);
    const t = 1_000_000;
    expect([1, 2, 3].map(() => counter.take('k', 'here', t))).toEqual([null, null, null]);
    const refused = counter.take('k', 'here', t + 20_000);
    expect(refused?.code).toBe('TooManyRequests');
    expect(refused?.retryAfter).toBe(40);
    expect(counter.take('other', 'here', t + 20_000)).toBeNull();
    // The window ends 60 s after its first call, not after the last refused one.
    expect(counter.take('k', 'here', t + 59_999)?.code).toBe('TooManyRequests');
    expect(counter.take('k', 'here', t + 60_000)).toBeNull();
  });

  it('drops expired windows as it goes, without waiting to be full', () => {
    const counter = new ProcessCounter(5, 10);
    for (let i = 0; i < 500; i++) counter.take(`ip${i}`, 'here', 0);
    for (let i = 0; i < 1024; i++) counter.take('busy', 'here', 20_000);
    expect(counter.size).toBe(1);
  });

  it('holds at most maxKeys keys: expired windows go first, then the oldest live one', () => {
    const counter = new ProcessCounter(1, 10, 100);
    for (let i = 0; i < 100; i++) counter.take(`old${i}`, 'here', 0);
    expect(counter.size).toBe(100);
    counter.take('new', 'here', 5_000);
    expect(counter.size).toBe(100); // one live window forgotten for room
    expect(counter.take('old1', 'here', 5_000)?.code).toBe('TooManyRequests');
    expect(counter.take('old0', 'here', 5_000)).toBeNull(); // the oldest was the one forgotten
    counter.take('later', 'here', 20_000); // every old window has expired: all of them go
    expect(counter.size).toBeLessThanOrEqual(3);
  });

  it('keeps a renewed window when room is made: the key\'s earlier window is the one that goes', () => {
    const counter = new ProcessCounter(1, 10, 3);
    counter.take('a', 'here', 0); // its window ends at 10 s
    counter.take('b', 'here', 5_000);
    counter.take('a', 'here', 12_000); // a new window, to 22 s, for a key queued first
    counter.take('c', 'here', 12_000);
    counter.take('d', 'here', 12_000); // full: the oldest live window (b's) goes, not a's new one
    expect(counter.size).toBe(3);
    expect(counter.take('a', 'here', 12_000)?.code).toBe('TooManyRequests');
    expect(counter.take('b', 'here', 12_000)).toBeNull();
  });

  it('keeps its queue within about three times its keys when the clock steps back', () => {
    const counter = new ProcessCounter(1, 60);
    const t = 1_000_000_000_000;
    for (let i = 0; i < 20; i++) counter.take(`before${i}`, 'here', t);
    // Eleven days back: the windows above now seem to end far ahead and hold the queue's front.
    const back = t - 1_000_000_000;
    for (let i = 0; i < 3000; i++) expect(counter.take('renewed', 'here', back + i * 61_000)).toBeNull();
    expect(counter.size).toBe(21);
    expect(counter.queued).toBeLessThanOrEqual(3 * counter.size + 1024);
  });
});

describe('rate limits (embedded store)', () => {
  const servers: TestServer[] = [];
  afterAll(() => Promise.all(servers.map((s) => s.close())));
  const start = async (options: Record<string, unknown>) => {
    const server = await startTestServer(options);
    servers.push(server);
    return server;
  };

  it('counts each batch entry per address: the entries past the limit get TooManyRequests, the HTTP answer Retry-After', async () => {
    const server = await start({ 'rateLimit.address': 5, 'rateLimit.window': 60 });
    const answer = await post(server.url, batch(8));
    expect(answer.status).toBe(200);
    const entries = answer.json as { result?: unknown; error?: { code: number; data: { code: string } } }[];
    expect(entries.filter((e) => e.result !== undefined)).toHaveLength(5);
    const refused = entries.filter((e) => e.error !== undefined);
    expect(refused).toHaveLength(3);
    for (const e of refused) expect(e.error).toMatchObject({ code: -32029, data: { code: 'TooManyRequests' } });
    const retryAfter = Number(answer.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    const single = await post(server.url, call('echo', 1));
    expect(single.status).toBe(429);
    expect((single.json as { error: { code: string; message: string } }).error).toMatchObject({ code: 'TooManyRequests', message: expect.stringContaining('from this address') });
    expect(single.headers.get('retry-after')).not.toBeNull();
    // A call of an unknown name counts too (and is refused before the name is looked up).
    expect((await post(server.url, call('no.such.method'))).status).toBe(429);
  });

  it('counts signed calls per user, not against the address', async () => {
    const server = await start({ 'rateLimit.address': 3, 'rateLimit.user': 4, 'rateLimit.window': 60 });
    const grant = await createAccount(server.url, 'limit-user'); // 1 of the address's 3
    for (let i = 0; i < 4; i++) expect((await postV2(server.url, grant, call('whoami'))).status).toBe(200);
    const fifth = await postV2(server.url, grant, call('whoami'));
    expect(fifth.status).toBe(429);
    expect(fifth.responseSigned).toBe(true);
    expect(fifth.json).toMatchObject({ error: { code: 'TooManyRequests', message: expect.stringContaining('by this user') } });
    // The address still has 2 anonymous calls left.
    expect((await post(server.url, call('echo', 1))).status).toBe(200);
    expect((await post(server.url, call('echo', 1))).status).toBe(200);
    expect((await post(server.url, call('echo', 1))).status).toBe(429);
  });

  it("applies a method's own rule (export const rateLimit) on top of the general one", async () => {
    const server = await start({});
    expect((await post(server.url, call('limited'))).json).toBe('ok');
    expect((await post(server.url, call('limited'))).json).toBe('ok');
    const third = await post(server.url, call('limited'));
    expect(third.status).toBe(429);
    expect((third.json as { error: { message: string } }).error.message).toContain('to limited');
    expect((await post(server.url, call('echo', 1))).status).toBe(200);
  });

  it('limits account.create per address by default (30 in 600 s)', async () => {
    const server = await start({});
    const codes: number[] = [];
    // Taken ids: each is a cheap Conflict (the id is checked before any hashing).
    await createAccount(server.url, 'taken');
    for (let i = 0; i < 31; i++) codes.push((await post(server.url, call('account.create', { user_id: 'taken', password: 'password-one' }))).status);
    expect(codes.slice(0, 29).every((c) => c === 409)).toBe(true);
    expect(codes.slice(29)).toEqual([429, 429]);
  });

  it("a job's own time limit is never above jobs.timeout", () => {
    const start = { method: 'm', params: {}, owner: null, ownerUserId: null, requestId: 'r' };
    const settings = { concurrency: 1, keep: 1, timeout: 60, retries: 0 };
    expect(jobTimeoutOf({ ...start, timeout: 5 }, settings)).toBe(5);
    expect(jobTimeoutOf({ ...start, timeout: 500 }, settings)).toBe(60);
    expect(jobTimeoutOf(start, settings)).toBe(60);
  });

  it('a method file with a malformed rateLimit stops start-up naming the file', () => {
    expect(() => buildRecord('x', '/m/x.ts', { invoke: () => 1, rateLimit: { points: 0, duration: 60 } }, createAjv())).toThrow(RegistryError);
    expect(() => buildRecord('x', '/m/x.ts', { invoke: () => 1, rateLimit: { points: 1, duration: 60, per: 'moon' } }, createAjv())).toThrow(/rateLimit.per/);
    // A job's own time limit is for background methods, and jobs.timeout still caps it (jobTimeoutOf).
    expect(() => buildRecord('x', '/m/x.ts', { invoke: () => 1, timeout: 5 }, createAjv())).toThrow(/timeout is a background method/);
    expect(buildRecord('x', '/m/x.ts', { invoke: () => 1, background: true, timeout: 5 }, createAjv()).timeout).toBe(5);
  });
});

/** Two limiters over one database, as two instances: together they let exactly `points` through. */
async function sharedAcrossInstances(store: Store): Promise<{ allowed: number; where: string }> {
  const log = createLogger({ level: 'silent' });
  const settings = { address: 40, user: 0, window: 60 };
  const [a, b] = await Promise.all([RateLimits.create(store, settings, log), RateLimits.create(store, settings, log)]);
  const ip = `198.51.100.${Math.floor(Math.random() * 200)}`;
  const results = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? a : b).check('echo', undefined, { ip, userKey: null })));
  return { allowed: results.filter((r) => r === null).length, where: a.where };
}

describe.runIf(hasMySql)('rate limits on MySQL/MariaDB', () => {
  const db = uniqueMySqlDb('limits');
  afterAll(() => dropMySqlDb(db));
  it('hold across instances under concurrent calls (100 calls at once, limit 40)', async () => {
    const store = await openMySqlStore(db);
    try {
      const { allowed, where } = await sharedAcrossInstances(store);
      expect(where).toContain('database');
      expect(allowed).toBe(40);
    } finally {
      await store.close();
    }
  });
});

describe.runIf(hasMySql)('the MySQL counter', () => {
  const db = uniqueMySqlDb('counter');
  afterAll(() => dropMySqlDb(db));
  const log = createLogger({ level: 'silent' });

  it('counts in one statement, refuses past the limit with the time left in its window, and starts a new window once it ends', async () => {
    const store = await openMySqlStore(db);
    try {
      // The store's pool, each query it is given counted: one per round trip.
      let queries = 0;
      const sql = new Proxy(store.sql, { get: (target, prop, receiver) => (prop === 'query' ? (...args: unknown[]) => (queries++, (target.query as (...a: unknown[]) => unknown)(...args)) : Reflect.get(target, prop, receiver)) });
      const limits = await RateLimits.create({ forMethods: { db: null, sql } } as unknown as Store, { address: 3, user: 0, window: 3 }, log);
      const caller = { ip: `198.51.100.${Math.floor(Math.random() * 200)}`, userKey: null };
      queries = 0;
      expect(await limits.check('echo', undefined, caller)).toBeNull();
      expect(queries).toBe(1);
      expect(await limits.check('echo', undefined, caller)).toBeNull();
      expect(await limits.check('echo', undefined, caller)).toBeNull();
      await new Promise((r) => setTimeout(r, 1200));
      const refused = await limits.check('echo', undefined, caller);
      expect(refused?.code).toBe('TooManyRequests');
      // What is left of the 3 s window that began at the first call (not a whole window).
      expect(refused?.retryAfter).toBe(2);
      // Rows are keyed by the SHA-256 of the counter's key (the column compares case-insensitively).
      const [rows] = await store.sql.query<RowDataPacket[]>('SELECT points FROM simpleapi_rate_limits WHERE `key` = ?', [createHash('sha256').update(`addr:${addressKeyOf(caller.ip)}`).digest('hex')]);
      expect(rows[0]?.points).toBe(4); // refused calls count too, as in the process counter
      await new Promise((r) => setTimeout(r, 2000));
      expect(await limits.check('echo', undefined, caller)).toBeNull();
    } finally {
      await store.close();
    }
  });

  it('keeps users whose ids differ only in case or accents, or are long, apart', async () => {
    const store = await openMySqlStore(db);
    try {
      const limits = await RateLimits.create(store, { address: 0, user: 1, window: 60 }, log);
      const ids = ['jose', 'José', 'JOSE', 'jose ', `${'x'.repeat(300)}-a`, `${'x'.repeat(300)}-b`, 'emoji-🙂'];
      for (const userKey of ids) expect(await limits.check('echo', undefined, { ip: '203.0.113.1', userKey })).toBeNull();
      for (const userKey of ids) expect((await limits.check('echo', undefined, { ip: '203.0.113.1', userKey }))?.code).toBe('TooManyRequests');
    } finally {
      await store.close();
    }
  });

  it('sweeps every expired row, a batch at a time, and keeps the live ones', async () => {
    const store = await openMySqlStore(db);
    try {
      await RateLimits.create(store, { address: 1, user: 0, window: 60 }, log);
      const now = Date.now();
      await store.sql.query('DELETE FROM simpleapi_rate_limits');
      const rows = Array.from({ length: 35 }, (_, i) => [`expired-${i}`, 1, now - 1000]).concat([['live', 1, now + 60_000]]);
      await store.sql.query('INSERT INTO simpleapi_rate_limits (`key`, points, expire) VALUES ?', [rows]);
      expect(await sweepMySqlCounters(store.sql, now, 10)).toBe(35);
      const [left] = await store.sql.query<RowDataPacket[]>('SELECT `key` FROM simpleapi_rate_limits');
      expect(left.map((r) => r.key)).toEqual(['live']);
    } finally {
      await store.close();
    }
  });

  it('counts in this process when the database does not answer within a second', async () => {
    const store = { forMethods: { db: null, sql: { query: (q: string) => (q.startsWith('INSERT') ? new Promise(() => {}) : Promise.resolve([[], []])) } } } as unknown as Store;
    const limits = await RateLimits.create(store, { address: 1, user: 0, window: 60 }, log);
    const started = Date.now();
    const caller = { ip: '203.0.113.10', userKey: null };
    expect(await limits.check('echo', undefined, caller)).toBeNull();
    expect(Date.now() - started).toBeLessThan(3000);
    expect((await limits.check('echo', undefined, caller))?.code).toBe('TooManyRequests');
  });

  it("counts in this process while the database fails, and never fails the call", async () => {
    const failing = { query: () => Promise.reject(new Error('connect ECONNREFUSED')) };
    const created: string[] = [];
    const store = { forMethods: { db: null, sql: { query: (q: string) => (created.push(q), Promise.resolve([[], []])) } } } as unknown as Store;
    const limits = await RateLimits.create(store, { address: 2, user: 0, window: 60 }, log);
    expect(created.some((q) => q.startsWith('CREATE TABLE IF NOT EXISTS'))).toBe(true);
    (store.forMethods.sql as unknown as { query: unknown }).query = failing.query;
    const caller = { ip: '203.0.113.9', userKey: null };
    expect(await limits.check('echo', undefined, caller)).toBeNull();
    expect(await limits.check('echo', undefined, caller)).toBeNull();
    expect((await limits.check('echo', undefined, caller))?.code).toBe('TooManyRequests');
  });
});

describe.runIf(hasMongo)('rate limits on MongoDB', () => {
  it('are shared through the database where $inc is atomic, and per process (said so) where it is not', async () => {
    const dbName = `simpleapi_limits_${process.pid}`;
    const store = await MongoStore.connect(MONGODB_URL, { dbName, connectTimeout: 10, nonceTtl: 601, log: createLogger({ level: 'silent' }) });
    try {
      await store.init();
      const { allowed, where } = await sharedAcrossInstances(store);
      console.log(`MongoDB-compatible server at ${MONGODB_URL}: rate limits counted in ${where}; ${allowed} of 100 concurrent calls allowed by two limiters of 40`);
      // Shared: exactly 40 in all. Per process: each of the two lets its own 40 through.
      expect(allowed).toBe(where.startsWith('the database') ? 40 : 80);
    } finally {
      await store.db.dropDatabase().catch(() => {});
      await store.close();
    }
  });
});

describe.runIf(hasMongo)('rate limits on FerretDB 1.x', () => {
  it('count in the process without probing it, since a burst of racing updates can leave FerretDB 1.x answering nothing', async () => {
    const url = new URL(MONGODB_URL);
    url.searchParams.set('monitorCommands', 'true');
    const store = await MongoStore.connect(url.toString(), { dbName: `simpleapi_limits_known_${process.pid}`, connectTimeout: 10, nonceTtl: 601, log: createLogger({ level: 'silent' }) });
    const updates: string[] = [];
    store.db.client.on('commandStarted', (event) => {
      if (event.commandName === 'update') updates.push(event.commandName);
    });
    try {
      // Which server it is, asked apart from the code under test, and checked before the probe
      // could go: were the store's answer wrong on FerretDB 1.x, the burst could hang it.
      const version = (await store.db.admin().command({ buildInfo: 1 })).ferretdbVersion as string | undefined;
      const ferret1 = version !== undefined && /^v?1\./.test(version);
      expect(store.losesRacingUpdates).toBe(ferret1 ? `FerretDB ${version}` : undefined);
      const logs = new LogCapture();
      const { where } = await RateLimits.create(store, { address: 5, user: 5, window: 60 }, createLogger({ level: 'warn', destination: logs }));
      if (ferret1) {
        expect(where).toBe("this process (the database's $inc is not atomic)");
        expect(updates).toEqual([]);
        expect(logs.lines.some((l) => String(l.msg).includes(`FerretDB ${version}`))).toBe(true);
      } else {
        console.log('the test server does not call itself FerretDB 1.x: the probe was sent to it');
        expect(updates.length).toBeGreaterThan(24);
      }
    } finally {
      await store.db.dropDatabase().catch(() => {});
      await store.close();
    }
  });
});

describe('the start-up probe of a MongoDB-compatible store', () => {
  it('counts in this process where the store loses counts silently (every call "counted", none refused)', async () => {
    const log = createLogger({ level: 'silent' });
    const losing = { description: 'lossy', forMethods: { db: {}, sql: null }, countInWindow: async () => true, rememberNonceCounted: async () => ({ fresh: true, counted: true }) } as unknown as Store;
    expect((await RateLimits.create(losing, { address: 5, user: 5, window: 60 }, log)).where).toBe("this process (the database's $inc is not atomic)");
    // One that fails a racing upsert, as FerretDB 1.x does, likewise.
    const racing = { ...losing, countInWindow: async () => Promise.reject(new Error('E11000 duplicate key')) } as unknown as Store;
    expect((await RateLimits.create(racing, { address: 5, user: 5, window: 60 }, log)).where).toBe("this process (the database's $inc is not atomic)");
  });

  it('gives up on a database that leaves its counts unanswered, and counts in this process', async () => {
    const log = createLogger({ level: 'silent' });
    const silent = { description: 'silent', forMethods: { db: {}, sql: null }, countInWindow: () => new Promise(() => {}), rememberNonceCounted: () => new Promise(() => {}) } as unknown as Store;
    // Without the probe's own time limit this never answers, and the test times out.
    expect((await RateLimits.create(silent, { address: 5, user: 5, window: 60 }, log)).where).toBe("this process (the database's $inc is not atomic)");
  }, 15_000);
});

describe.runIf(hasMongo)('rate limits on a MongoDB whose updates are atomic', () => {
  it('are counted in the database and hold across instances (100 calls at once, limit 40)', async () => {
    const store = await openAtomicMongoStore(`simpleapi_limits_atomic_${process.pid}`);
    try {
      const { allowed, where } = await sharedAcrossInstances(store);
      expect(where).toBe('the database (MongoDB)');
      expect(allowed).toBe(40);
      // The window's document is in the nonces' collection, counted to the limit and no further
      // (beside the start-up probes' windows, one per limiter: 24 calls each, into a window of 24).
      const windows = await store.db.collection('simpleapi_nonces').find({ _id: { $regex: /^count\n/ } } as object).toArray();
      expect(windows.filter((w) => String(w._id).startsWith('count\naddr:')).map((w) => w.c)).toEqual([40]);
      expect(windows.filter((w) => String(w._id).startsWith('count\nprobe:')).map((w) => w.c)).toEqual([24, 24]);
    } finally {
      await store.db.dropDatabase().catch(() => {});
      await store.close();
    }
  });

  it('count in fixed windows, shifted per key: a refusal says when the window ends, is then answered without the database, and the next window starts at zero', async () => {
    const store = await openAtomicMongoStore(`simpleapi_limits_window_${process.pid}`);
    try {
      const limits = await RateLimits.create(store, { address: 2, user: 0, window: 3 }, createLogger({ level: 'silent' }));
      // An address whose windows are shifted by about half a window (a hash of the key shifts them).
      const shiftOf = (key: string) => 3000 - windowOf(key, 0, 3000).endsAt;
      const ip = Array.from({ length: 250 }, (_, i) => `198.51.100.${i}`).find((a) => Math.abs(shiftOf(`addr:${a}`) - 1500) < 300)!;
      const caller = { ip, userKey: null };
      const key = `addr:${addressKeyOf(ip)}`;
      expect(windowOf(key, Date.now(), 3000).endsAt % 3000).not.toBe(0);
      // Start just after this key's window begins, so that the calls share it.
      await new Promise((r) => setTimeout(r, windowOf(key, Date.now(), 3000).endsAt - Date.now() + 50));
      let updates = 0;
      const watch = (event: { commandName: string }) => void (event.commandName === 'update' && updates++);
      store.db.client.on('commandStarted', watch);
      expect(await limits.check('echo', undefined, caller)).toBeNull();
      expect(await limits.check('echo', undefined, caller)).toBeNull();
      const refused = await limits.check('echo', undefined, caller);
      expect(refused?.code).toBe('TooManyRequests');
      expect(refused?.retryAfter).toBe(3);
      expect(updates).toBe(3);
      // The window's document is the shifted window's: its name and its expiry (its end and a minute).
      const { index, endsAt } = windowOf(key, Date.now(), 3000);
      const counted = await store.db.collection('simpleapi_nonces').findOne({ _id: `count\n${key}\n${index}` } as object);
      expect(counted).toMatchObject({ c: 2, expires: Math.ceil(endsAt / 1000) + 60 });
      // Known full: ten more calls are refused here, none sent.
      for (let i = 0; i < 10; i++) expect((await limits.check('echo', undefined, caller))?.code).toBe('TooManyRequests');
      expect(updates).toBe(3);
      store.db.client.off('commandStarted', watch);
      await new Promise((r) => setTimeout(r, windowOf(key, Date.now(), 3000).endsAt - Date.now() + 50));
      expect(await limits.check('echo', undefined, caller)).toBeNull();
    } finally {
      await store.db.dropDatabase().catch(() => {});
      await store.close();
    }
  });
});

describe.runIf(hasMongo)('signed calls on a MongoDB whose updates are atomic', () => {
  it("count in the nonce's claim, one command: a flood of replays spends none of the user's calls", async () => {
    const store = await openAtomicMongoStore(`simpleapi_limits_replay_${process.pid}`);
    let server: TestServer | undefined;
    try {
      server = await startTestServer({ 'rateLimit.user': 4, 'rateLimit.window': 60 }, store);
      const grant = await createAccount(server.url, 'replay-flood');
      const body = call('whoami');
      const timestamp = String(nowSeconds());
      const nonce = 'replayed-nonce-0001';
      // The update commands a signed call sends to the nonces' collection, and their statements.
      const sent: number[] = [];
      const watch = (event: { commandName: string; command: { update?: unknown; updates?: unknown[] } }) => {
        if (event.commandName === 'update' && event.command.update === 'simpleapi_nonces') sent.push(event.command.updates?.length ?? 0);
      };
      store.db.client.on('commandStarted', watch);
      expect((await postV2(server.url, grant, body, { timestamp, nonce })).status).toBe(200);
      // Twenty replays of that captured call at once, while the user goes on calling.
      const replays = Array.from({ length: 20 }, () => postV2(server!.url, grant, body, { timestamp, nonce }));
      const during = await postV2(server.url, grant, body);
      expect((await Promise.all(replays)).map((r) => r.status)).toEqual(Array(20).fill(401));
      expect(during.status).toBe(200);
      const after = [];
      for (let i = 0; i < 3; i++) after.push((await postV2(server.url, grant, body)).status);
      // Four calls of the user's own, then the limit: the replays counted nothing.
      expect(after).toEqual([200, 200, 429]);
      store.db.client.off('commandStarted', watch);
      // Each call's claim and count went as one command of three statements (claim, window, count).
      expect(sent.filter((n) => n === 3)).toHaveLength(1 + 20 + 1 + 3);
    } finally {
      await server?.close(0);
      await store.db.dropDatabase().catch(() => {});
      await store.close();
    }
  });
});

describe('password hashing is bounded', () => {
  it('waiting hashes take turns by address: a flood from one waits behind itself, past its own cap refused', async () => {
    const { Gate } = await import('../src/core/concurrency.ts');
    const gate = new Gate(1, 100, () => new Error('busy'), 3);
    const order: string[] = [];
    let release!: () => void;
    const first = gate.run(() => new Promise<void>((r) => (release = () => (order.push('a1'), r()))), 'a');
    const task = (name: string, key: string) => gate.run(async () => void order.push(name), key);
    const queued = [task('a2', 'a'), task('a3', 'a'), task('a4', 'a')];
    await expect(task('a5', 'a')).rejects.toThrow('busy');
    const fromB = task('b1', 'b');
    expect(gate.load).toMatchObject({ running: 1, waiting: 4 });
    release();
    await Promise.all([first, ...queued, fromB]);
    expect(order).toEqual(['a1', 'a2', 'b1', 'a3', 'a4']);
    expect(gate.load).toMatchObject({ running: 0, waiting: 0 });
  });

  it('runs at most one scrypt per core at once, and a create for a taken id hashes nothing', async () => {
    const { HASH_GATE } = await import('../src/core/passwords.ts');
    const { availableParallelism } = await import('node:os');
    const server = await startTestServer({});
    try {
      await createAccount(server.url, 'hash-taken');
      const before = HASH_GATE.load.started;
      const taken = await Promise.all(Array.from({ length: 10 }, () => post(server.url, call('account.create', { user_id: 'HASH-taken', password: 'password-one' }))));
      expect(taken.map((a) => a.status)).toEqual(Array(10).fill(409));
      expect((taken[0]!.json as { error: { message: string } }).error.message).toBe('That user_id is already taken');
      expect(HASH_GATE.load.started).toBe(before);
      const fresh = await Promise.all(Array.from({ length: 12 }, (_, i) => post(server.url, call('account.create', { user_id: `hash-${i}`, password: 'password-one' }))));
      expect(fresh.every((a) => a.status === 200)).toBe(true);
      expect(HASH_GATE.load.started).toBe(before + 12);
      expect(HASH_GATE.load.peak).toBeLessThanOrEqual(Math.max(1, availableParallelism()));
    } finally {
      await server.close();
    }
  });
});

describe('the address a limit counts', () => {
  it('is the IPv4 address itself, the IPv4 inside a mapped IPv6 address, and the /64 of any other IPv6 address', () => {
    expect(addressKeyOf('192.0.2.1')).toBe('192.0.2.1');
    expect(addressKeyOf('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(addressKeyOf('::FFFF:c000:0201')).toBe('192.0.2.1');
    const net = addressKeyOf('2001:db8:1:2::1');
    for (const same of ['2001:db8:1:2:ffff:ffff:ffff:ffff', '2001:0DB8:0001:0002:0:0:0:9', '2001:db8:1:2::1%eth0']) expect(addressKeyOf(same)).toBe(net);
    expect(net).toBe('2001:db8:1:2::/64');
    expect(addressKeyOf('2001:db8:1:3::1')).not.toBe(net);
    expect(addressKeyOf('64:ff9b::192.0.2.1')).toBe('192.0.2.1');
    expect(addressKeyOf('64:ff9b::c633:6407')).toBe('198.51.100.7');
    // An invalid octet is not read as another address.
    expect(addressKeyOf('::ffff:1.2.3.400')).toBe('::ffff:1.2.3.400');
    // What is not an address is counted as it is, on its own.
    for (const odd of ['1::2::3', 'garbage:::', '1:2:3:4:5:6:7:8:9', '']) expect(addressKeyOf(odd)).toBe(odd);
  });
});
