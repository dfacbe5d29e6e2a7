import { afterEach, describe, expect, it, vi } from 'vitest';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { Db, MongoClient, MongoNetworkError, type Document } from 'mongodb';
import { MongoStore, COLLECTIONS, FERRETDB_1_POOL, type MongoStoreOptions } from '../src/store/mongo.ts';
import { createLogger } from '../src/log.ts';
import { LogCapture } from './helpers/server.ts';
import { hasMongo, MONGODB_URL, openAtomicMongoStore, openMongoStore, uniqueDbName } from './helpers/mongo.ts';
import { storeContract } from './store.contract.ts';

/** The store's rule, written out again: FerretDB before 2.0, or of a version that does not parse. */
function ferretDbBefore2(info: Document): string | undefined {
  if (info.ferretdbVersion === undefined) return undefined;
  const major = /^v?(\d+)\./.exec(String(info.ferretdbVersion))?.[1];
  return major === undefined || Number(major) < 2 ? `FerretDB ${String(info.ferretdbVersion)}` : undefined;
}

/** What the server says it is, asked on a client of the test's own. */
async function buildInfoOf(url: string): Promise<Document> {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 5000 });
  try {
    return await client.db('admin').command({ buildInfo: 1 });
  } finally {
    await client.close();
  }
}

// Without MONGODB_URL these are skipped; helpers/mongo.ts prints why (and fails under CI=true).
describe.skipIf(!hasMongo)('MongoDB store', () => {
  storeContract(
    'MongoDB',
    () => openMongoStore(uniqueDbName('contract')),
    async (store) => {
      await store.forMethods.db!.dropDatabase();
      await store.close();
    },
  );

  // The path a real MongoDB takes: TTL indexes accepted, sweep() a no-op, expiry checked on
  // every read. FerretDB refuses TTL indexes, so the store is told to take that path anyway.
  storeContract(
    'MongoDB, TTL-index path',
    () => openMongoStore(uniqueDbName('contract_ttl'), 601, 'assume'),
    async (store) => {
      await store.forMethods.db!.dropDatabase();
      await store.close();
    },
  );

  describe('MongoStore specifics', () => {
    // A test that times out mid-way leaves no stand-in of the driver's for the next.
    afterEach(() => {
      vi.restoreAllMocks();
    });

    it('on FerretDB 1.x, has at most FERRETDB_1_POOL commands in flight, its workers together, and says so (more can leave it answering nothing); a maxPoolSize in db.url wins', async () => {
      const info = await buildInfoOf(MONGODB_URL);
      const ferret = ferretDbBefore2(info);
      console.log(`the test server: ${ferret ?? 'not FerretDB before 2.0'}`);
      const dbName = uniqueDbName('pool');
      const logs = new LogCapture();
      const log = createLogger({ level: 'info', destination: logs });
      const opened: MongoStore[] = [];
      const connect = async (url: string, extra: Partial<MongoStoreOptions> = {}) => {
        const store = await MongoStore.connect(url, { dbName, connectTimeout: 10, nonceTtl: 601, log, ...extra });
        opened.push(store);
        return store;
      };
      const withOption = (name: string, value: string) => {
        const url = new URL(MONGODB_URL);
        url.searchParams.set(name, value);
        return url.toString().replace(`${name}=`, `${name.replace('P', '%50')}=`);
      };
      try {
        const store = await connect(MONGODB_URL);
        const two = await connect(MONGODB_URL, { processes: 2 });
        // Percent-encoded in its name, as the driver reads it.
        const chosen = await connect(withOption('maxPoolSize', '3'));
        const many = await connect(withOption('maxPoolSize', '20'));
        if (ferret === undefined) {
          expect(store.losesRacingUpdates).toBeUndefined();
          expect(store.db.client.options.maxPoolSize).toBe(100);
          return;
        }
        expect(store.losesRacingUpdates).toBe(ferret);
        expect(chosen.losesRacingUpdates).toBe(ferret);
        expect([store, two, chosen, many].map((s) => s.db.client.options.maxPoolSize)).toEqual([FERRETDB_1_POOL, FERRETDB_1_POOL / 2, 3, 20]);
        expect(logs.lines.filter((l) => String(l.msg).includes(`at most ${FERRETDB_1_POOL} commands at once`))).toHaveLength(1);
        expect(logs.lines.some((l) => l.level === 40 && String(l.msg).includes('maxPoolSize=20'))).toBe(true);
        // Held to it under load: 40 reads at once, at most FERRETDB_1_POOL connections out.
        let out = 0;
        let most = 0;
        store.db.client.on('connectionCheckedOut', () => (most = Math.max(most, ++out)));
        store.db.client.on('connectionCheckedIn', () => out--);
        await Promise.all(Array.from({ length: 40 }, (_, i) => store.db.collection('reads').findOne({ _id: i as never })));
        expect(most).toBeGreaterThan(1);
        expect(most).toBeLessThanOrEqual(FERRETDB_1_POOL);
      } finally {
        await opened[0]?.db.dropDatabase().catch(() => {});
        for (const store of opened) await store.close();
      }
    });

    it('a server that takes requests and answers nothing: connect gives up at db.connectTimeout, and a ping says down within 2 s, one ping however many checks wait', async () => {
      const command = Db.prototype.command;
      let pings = 0;
      let hung = true;
      const spy = vi.spyOn(Db.prototype, 'command').mockImplementation(function (this: Db, cmd, ...rest) {
        if (hung && 'ping' in cmd) {
          pings++;
          return new Promise(() => {});
        }
        return command.call(this, cmd, ...rest);
      });
      try {
        const log = createLogger({ level: 'silent' });
        let started = Date.now();
        await expect(MongoStore.connect(MONGODB_URL, { dbName: uniqueDbName('hung'), connectTimeout: 3, nonceTtl: 601, log })).rejects.toThrow(/did not answer within 3 s \(db.connectTimeout\): no answer: nothing reachable there, or a server that takes connections and answers nothing/);
        expect(Date.now() - started).toBeLessThan(6000);
        expect(pings).toBe(1);
        hung = false;
        const store = await MongoStore.connect(MONGODB_URL, { dbName: uniqueDbName('hung'), connectTimeout: 10, nonceTtl: 601, log });
        try {
          hung = true;
          pings = 0;
          started = Date.now();
          expect(await Promise.all(Array.from({ length: 5 }, () => store.ping()))).toEqual([false, false, false, false, false]);
          expect(Date.now() - started).toBeLessThan(4000);
          expect(pings).toBe(1);
        } finally {
          await store.close();
        }
      } finally {
        spy.mockRestore();
      }
    }, 20_000);

    it('waits for a buildInfo that failed to answer, rather than taking the server for MongoDB', async () => {
      const info = await buildInfoOf(MONGODB_URL);
      const command = Db.prototype.command;
      let failed = 0;
      const spy = vi.spyOn(Db.prototype, 'command').mockImplementation(function (this: Db, cmd, ...rest) {
        if ('buildInfo' in cmd && failed++ === 0) return Promise.reject(new MongoNetworkError('connection reset (a server restarting)'));
        return command.call(this, cmd, ...rest);
      });
      const store = await MongoStore.connect(MONGODB_URL, { dbName: uniqueDbName('buildinfo'), connectTimeout: 10, nonceTtl: 601, log: createLogger({ level: 'silent' }) }).finally(() => spy.mockRestore());
      try {
        expect(failed).toBeGreaterThanOrEqual(2); // asked again after the failure
        expect(store.losesRacingUpdates).toBe(ferretDbBefore2(info));
      } finally {
        await store.close();
      }
    });

    it('takes FerretDB before 2.0, or of a version that does not parse, for one that loses racing updates, and 2.0 on for one that does not', async () => {
      const command = Db.prototype.command;
      let version = '';
      vi.spyOn(Db.prototype, 'command').mockImplementation(function (this: Db, cmd, ...rest) {
        if ('buildInfo' in cmd) return Promise.resolve({ ok: 1, version: '7.0.77', ferretdbVersion: version });
        return command.call(this, cmd, ...rest);
      });
      const seen: Record<string, [string | undefined, number | undefined]> = {};
      for (version of ['v0.9.1', 'v1.24.0', 'dev-build', 'v2.1.0', '2.5.0']) {
        const store = await MongoStore.connect(MONGODB_URL, { dbName: uniqueDbName('versions'), connectTimeout: 10, nonceTtl: 601, log: createLogger({ level: 'silent' }) });
        seen[version] = [store.losesRacingUpdates, store.db.client.options.maxPoolSize];
        await store.close();
      }
      expect(seen).toEqual({
        'v0.9.1': ['FerretDB v0.9.1', FERRETDB_1_POOL],
        'v1.24.0': ['FerretDB v1.24.0', FERRETDB_1_POOL],
        'dev-build': ['FerretDB dev-build', FERRETDB_1_POOL],
        'v2.1.0': [undefined, 100],
        '2.5.0': [undefined, 100],
      });
    });

    it('reaches a database that comes up after start-up began (driver 7 keeps a client whose first connection failed closed)', async () => {
      const target = new URL(MONGODB_URL);
      const port = await new Promise<number>((resolve) => {
        const probe = createServer().listen(0, '127.0.0.1', () => {
          const { port } = probe.address() as AddressInfo;
          probe.close(() => resolve(port));
        });
      });
      // Nothing listens on `port` for the first 2.5 s; then a relay to the test's server does.
      const sockets = new Set<Socket>();
      const relay = createServer((socket) => {
        const upstream = connect(Number(target.port), target.hostname);
        for (const s of [socket, upstream]) {
          sockets.add(s);
          s.on('error', () => {});
        }
        socket.pipe(upstream).pipe(socket);
      });
      const opening = setTimeout(() => relay.listen(port, '127.0.0.1'), 2500);
      const late = new URL(MONGODB_URL);
      late.port = String(port);
      try {
        const started = Date.now();
        const store = await MongoStore.connect(late.toString(), { dbName: uniqueDbName('late'), connectTimeout: 15, nonceTtl: 601, log: createLogger({ level: 'silent' }) });
        try {
          expect(Date.now() - started).toBeGreaterThanOrEqual(2400);
          expect(await store.ping()).toBe(true);
        } finally {
          await store.close();
        }
      } finally {
        clearTimeout(opening);
        for (const s of sockets) s.destroy();
        await new Promise((r) => relay.close(r));
      }
    }, 30_000);

    it("claims a nonce and counts its call in one command: a replay counts nothing, a full window still claims, an expired record is revived whole", async () => {
      const store = await openAtomicMongoStore(uniqueDbName('counted'));
      try {
        const now = Math.floor(Date.now() / 1000);
        const window = { id: 'user:u1\n7', points: 2, expires: now + 120 };
        const sent: string[] = [];
        store.db.client.on('commandStarted', (event: { commandName: string }) => sent.push(event.commandName));
        expect(await store.rememberNonceCounted('s', 'n1', now + 61, now, { mac: 'mac-1' }, window)).toEqual({ fresh: true, counted: true });
        expect(sent).toEqual(['update']);
        // A replay: refused, and the window's count is untouched.
        expect(await store.rememberNonceCounted('s', 'n1', now + 61, now, { mac: 'mac-1' }, window)).toEqual({ fresh: false, counted: false });
        expect(await store.rememberNonceCounted('s', 'n2', now + 61, now, { mac: 'mac-2' }, window)).toEqual({ fresh: true, counted: true });
        // The window is full: the nonce is still claimed (its call is refused, not replayable).
        expect(await store.rememberNonceCounted('s', 'n3', now + 61, now, { mac: 'mac-3' }, window)).toEqual({ fresh: true, counted: false });
        expect(await store.rememberNonceCounted('s', 'n3', now + 61, now, { mac: 'mac-3' }, window)).toEqual({ fresh: false, counted: false });
        expect(await store.findCall('s', 'n3', now)).toEqual({ state: 'running', claim: { mac: 'mac-3' } });
        expect(await store.countInWindow(window)).toBe(false);
        const windows = store.db.collection<{ _id: string; c: number }>(COLLECTIONS.nonces);
        expect((await windows.findOne({ _id: 'count\nuser:u1\n7' }))?.c).toBe(2);
        // Another window starts at zero, standalone or with a claim.
        const next = { ...window, id: 'user:u1\n8' };
        expect(await store.countInWindow(next)).toBe(true);
        // n1's record, once expired, is revived by a new claim: the earlier call's outcome goes.
        await store.keepOutcome('s', 'n1', { status: 200, body: '{}' });
        const later = now + 602; // past the nonce store's least lifetime (601 s)
        expect(await store.rememberNonceCounted('s', 'n1', later + 61, later, { mac: 'mac-1b' }, next)).toEqual({ fresh: true, counted: true });
        expect(await store.findCall('s', 'n1', later)).toEqual({ state: 'running', claim: { mac: 'mac-1b' } });
        expect((await windows.findOne({ _id: 'count\nuser:u1\n8' }))?.c).toBe(2);
      } finally {
        await store.db.dropDatabase();
        await store.close();
      }
    });

    it('on the TTL path, sweep leaves documents to the TTL monitor, and expired ones still stay invisible', async () => {
      const store = await openMongoStore(uniqueDbName('ttlpath'), 601, 'assume');
      try {
        expect(store.usesTtlIndexes).toBe(true);
        const now = Math.floor(Date.now() / 1000);
        await store.rememberNonce('s', 'nonce-left-for-ttl', now - 10, now - 700);
        await store.sweep(now);
        expect(await store.db.collection(COLLECTIONS.nonces).countDocuments()).toBe(1);
        expect(await store.rememberNonce('s', 'nonce-left-for-ttl', now + 600, now)).toBe(true);
      } finally {
        await store.db.dropDatabase();
        await store.close();
      }
    });

    it('creates its indexes idempotently, and says whether TTL indexes were taken', async () => {
      const name = uniqueDbName('indexes');
      const first = await openMongoStore(name);
      const second = await openMongoStore(name);
      try {
        const indexes = await first.db.collection(COLLECTIONS.sessions).indexes();
        expect(indexes.map((i) => i.name)).toContain('userKey_1');
        expect(typeof first.usesTtlIndexes).toBe('boolean');
        expect(second.usesTtlIndexes).toBe(first.usesTtlIndexes);
        if (first.usesTtlIndexes) expect(indexes.map((i) => i.name)).toContain('expiresAt_ttl');
        console.info(`TTL indexes on this server: ${first.usesTtlIndexes ? 'yes (TTL path)' : 'refused (sweep path)'}`);
      } finally {
        await first.db.dropDatabase();
        await first.close();
        await second.close();
      }
    });

    it('the sweep removes expired nonces and throttle windows too', async () => {
      const store = await openMongoStore(uniqueDbName('sweep'));
      try {
        const now = Math.floor(Date.now() / 1000);
        await store.rememberNonce('s', 'nonce-to-be-swept', now - 10, now - 700);
        await store.recordFailure('user:swept', now - 100, 10);
        await store.sweep(now);
        if (store.usesTtlIndexes) {
          // A server that took the TTL indexes (a real MongoDB) deletes on its own; this is FerretDB's path.
          console.info('sweep-path check skipped: this server accepted TTL indexes, so its monitor removes expired documents');
          return;
        }
        expect(await store.db.collection(COLLECTIONS.nonces).countDocuments()).toBe(0);
        expect(await store.db.collection(COLLECTIONS.throttle).countDocuments()).toBe(0);
      } finally {
        await store.db.dropDatabase();
        await store.close();
      }
    });

    it('start-up with an unreachable database fails after the configured wait, and shows no secret of its URL, in the error or the log', async () => {
      const logs = new LogCapture();
      const started = Date.now();
      const url = 'mongodb://api:s3cret@127.0.0.1:9/?authSource=admin&tlsCertificateKeyFilePassword=k3y&authMechanismProperties=AWS_SESSION_TOKEN:t0ken';
      const err = await MongoStore.connect(url, { dbName: 'x', connectTimeout: 1, nonceTtl: 601, log: createLogger({ level: 'info', destination: logs }) }).catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toContain('did not answer within 1 s (db.connectTimeout)');
      expect(Date.now() - started).toBeLessThan(10_000);
      const shown = `${(err as Error).message}\n${logs.raw.join('\n')}`;
      expect(shown).toContain('mongodb://api:***@127.0.0.1:9/?authSource=admin&tlsCertificateKeyFilePassword=***&authMechanismProperties=***');
      for (const secret of ['s3cret', 'k3y', 't0ken']) expect(shown).not.toContain(secret);
    });
  });
});
