/**
 * The MongoDB the tests use: MONGODB_URL (CI starts FerretDB and sets it). Without it the MongoDB
 * tests are skipped with the reason printed, except under CI=true, where that is a failure.
 */
import { randomBytes } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import { createLogger } from '../../src/log.ts';
import { MongoStore } from '../../src/store/mongo.ts';

export const MONGODB_URL = process.env.MONGODB_URL ?? '';

if (MONGODB_URL === '') {
  if (process.env.CI === 'true') {
    throw new Error('CI=true but MONGODB_URL is not set: the MongoDB tests must run in CI (.ci/run starts FerretDB and sets it)');
  }
  console.warn('MongoDB tests skipped: MONGODB_URL is not set (e.g. MONGODB_URL=mongodb://127.0.0.1:27017/; .ci/run starts FerretDB for them)');
}

export const hasMongo = MONGODB_URL !== '';

/** A database name of its own for each test file, so files can run side by side. */
export function uniqueDbName(label: string): string {
  return `simpleapi_test_${label}_${randomBytes(4).toString('hex')}`;
}

/**
 * A store on its own database. `ttl: 'assume'` takes the TTL-index path whatever the server says:
 * FerretDB refuses TTL indexes, so this is how the path a real MongoDB takes gets tested here.
 */
export async function openMongoStore(dbName: string, nonceTtl = 601, ttl: 'ask' | 'assume' = 'ask'): Promise<MongoStore> {
  const log = createLogger({ level: 'silent' });
  const store = await MongoStore.connect(MONGODB_URL, { dbName, connectTimeout: 10, nonceTtl, log, ttlIndexes: ttl });
  await store.init();
  return store;
}

/** Drops a database a test's server processes made (they keep nothing after the test). */
export async function dropMongoDb(dbName: string): Promise<void> {
  const { MongoClient } = await import('mongodb');
  const client = new MongoClient(MONGODB_URL, { serverSelectionTimeoutMS: 10_000 });
  try {
    await client.db(dbName).dropDatabase();
  } finally {
    await client.close();
  }
}

/**
 * FerretDB with its updates that read and write one document (`findOneAndUpdate`, `bulkWrite`)
 * run one at a time in this process: MongoDB's own document-level atomicity, which FerretDB 1.x
 * lacks, stood in for on a real server. It lets the path a real MongoDB takes (the calls counted
 * in the database, beside the nonce's claim) run here: `MongoStore.connect(url, { ...ATOMIC_STAND_IN })`.
 */
export function atomicUpdates(db: Db): Db {
  const collections = new Map<string, Collection>();
  const serialisedMethods = new Set<string | symbol>(['findOneAndUpdate', 'bulkWrite']);
  let queue: Promise<unknown> = Promise.resolve();
  const serialised = (collection: Collection) =>
    new Proxy(collection, {
      get(target, prop, receiver) {
        if (!serialisedMethods.has(prop)) return Reflect.get(target, prop, receiver);
        return (...args: unknown[]) => {
          const run = queue.then(() => (Reflect.get(target, prop, target) as (...a: unknown[]) => Promise<unknown>).apply(target, args));
          queue = run.catch(() => {});
          return run;
        };
      },
    });
  return new Proxy(db, {
    get(target, prop, receiver) {
      if (prop !== 'collection') return Reflect.get(target, prop, receiver);
      return (name: string) => {
        let c = collections.get(name);
        if (c === undefined) collections.set(name, (c = serialised(target.collection(name))));
        return c;
      };
    },
  });
}

/**
 * MongoStore's options for FerretDB as a MongoDB whose updates are atomic: the stand-in, and the
 * store told not to take FerretDB 1.x for what it is (its updates are atomic behind the stand-in).
 */
export const ATOMIC_STAND_IN = { around: atomicUpdates, atomicUpdates: 'assume' } as const;

/** A store on its own database, as on a MongoDB whose updates are atomic (atomicUpdates). */
export async function openAtomicMongoStore(dbName: string): Promise<MongoStore> {
  const log = createLogger({ level: 'silent' });
  // Commands monitored: tests count what a call sends (store.db.client's commandStarted).
  const url = new URL(MONGODB_URL);
  url.searchParams.set('monitorCommands', 'true');
  const store = await MongoStore.connect(url.toString(), { dbName, connectTimeout: 10, nonceTtl: 601, log, ...ATOMIC_STAND_IN });
  await store.init();
  return store;
}
