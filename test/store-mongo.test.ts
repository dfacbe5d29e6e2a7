import { describe, expect, it } from 'vitest';
import { MongoStore, COLLECTIONS, FERRETDB_1_POOL } from '../src/store/mongo.ts';
import { createLogger } from '../src/log.ts';
import { LogCapture } from './helpers/server.ts';
import { hasMongo, MONGODB_URL, openAtomicMongoStore, openMongoStore, uniqueDbName } from './helpers/mongo.ts';
import { storeContract } from './store.contract.ts';

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
    it('on FerretDB 1.x, sends at most FERRETDB_1_POOL operations at once and says so (more can leave it answering nothing); a maxPoolSize in db.url wins', async () => {
      const logs = new LogCapture();
      const dbName = uniqueDbName('pool');
      const store = await MongoStore.connect(MONGODB_URL, { dbName, connectTimeout: 10, nonceTtl: 601, log: createLogger({ level: 'info', destination: logs }) });
      const url = new URL(MONGODB_URL);
      url.searchParams.set('maxPoolSize', '3');
      const chosen = await MongoStore.connect(url.toString(), { dbName, connectTimeout: 10, nonceTtl: 601, log: createLogger({ level: 'silent' }) });
      try {
        const ferret = (await store.db.admin().command({ buildInfo: 1 })).ferretdbVersion as string | undefined;
        console.log(`the test server: ${ferret === undefined ? 'MongoDB' : `FerretDB ${ferret}`}`);
        if (ferret !== undefined && /^v?1\./.test(ferret)) {
          expect(store.losesRacingUpdates).toBe(`FerretDB ${ferret}`);
          expect(store.db.client.options.maxPoolSize).toBe(FERRETDB_1_POOL);
          expect(logs.lines.some((l) => String(l.msg).includes(`at most ${FERRETDB_1_POOL} operations at once`))).toBe(true);
        } else {
          expect(store.losesRacingUpdates).toBeUndefined();
          expect(store.db.client.options.maxPoolSize).toBe(100);
        }
        expect(chosen.db.client.options.maxPoolSize).toBe(3);
      } finally {
        await store.close();
        await chosen.close();
      }
    });

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

    it('start-up with an unreachable database fails after the configured wait', async () => {
      const { createLogger } = await import('../src/log.ts');
      const started = Date.now();
      const err = await MongoStore.connect('mongodb://127.0.0.1:9/', { dbName: 'x', connectTimeout: 1, nonceTtl: 601, log: createLogger({ level: 'silent' }) }).catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toContain('did not answer within 1 s (db.connectTimeout)');
      expect(Date.now() - started).toBeLessThan(10_000);
    });
  });
});
