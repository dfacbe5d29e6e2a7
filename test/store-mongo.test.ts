import { describe, expect, it } from 'vitest';
import { MongoStore, COLLECTIONS } from '../src/store/mongo.ts';
import { hasMongo, openMongoStore, uniqueDbName } from './helpers/mongo.ts';
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
