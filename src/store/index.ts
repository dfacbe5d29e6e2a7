/**
 * Chooses the store from the configuration, by the URL's scheme: `mongodb://` (or `mongodb+srv://`)
 * for MongoDB, `mysql://` (or `mariadb://`) for MySQL/MariaDB, the embedded store without a URL.
 */
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { MemoryStore } from './memory.ts';
import type { Store } from './types.ts';

/**
 * Nonces one user may have kept per 600 s on the embedded store: twice what the per-user rate
 * limit lets through in that time (a nonce is kept before the limit counts its call, and signed
 * job polls are not rate limited), at least 60,000 (100 a second), or no cap when the operator
 * turned that limit off.
 */
export function noncesPerUser(config: Pick<Config, 'rateLimit'>): number {
  const { user, window } = config.rateLimit;
  return user > 0 ? Math.max(60_000, Math.ceil((user * 600) / window) * 2) : Infinity;
}

export async function openStore(config: Config, log: Logger): Promise<Store> {
  const url = config.db.url;
  if (url === '') return new MemoryStore({ outcomeMemory: config.retries.memory, maxNoncesPerUser: noncesPerUser(config) });
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  const options = { dbName: config.db.name, connectTimeout: config.db.connectTimeout, nonceTtl: config.hmac.window * 2 + 1, log };
  let store: Store;
  switch (scheme) {
    case 'mongodb':
    case 'mongodb+srv': {
      const { MongoStore } = await import('./mongo.ts');
      store = await MongoStore.connect(url, { ...options, processes: config.workers });
      break;
    }
    case 'mysql':
    case 'mariadb': {
      const { MySqlStore } = await import('./mysql.ts');
      store = await MySqlStore.connect(url, options);
      break;
    }
    default:
      throw new Error(`db.url must start with mongodb://, mongodb+srv://, mysql:// or mariadb:// (got ${scheme === undefined ? 'no scheme' : `${scheme}://`})`);
  }
  await store.init();
  return store;
}

export type { Store } from './types.ts';
