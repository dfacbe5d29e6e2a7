/** Chooses the store from the configuration: MongoDB with a URL, the embedded store without. */
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { MemoryStore } from './memory.ts';
import type { Store } from './types.ts';

export async function openStore(config: Config, log: Logger): Promise<Store> {
  if (config.db.url === '') return new MemoryStore();
  const { MongoStore } = await import('./mongo.ts');
  const store = await MongoStore.connect(config.db.url, {
    dbName: config.db.name,
    connectTimeout: config.db.connectTimeout,
    nonceTtl: config.hmac.window * 2 + 1,
    log,
  });
  await store.init();
  return store;
}

export type { Store } from './types.ts';
