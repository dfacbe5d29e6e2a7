/**
 * Chooses the store from the configuration, by the URL's scheme: `mongodb://` (or `mongodb+srv://`)
 * for MongoDB, `mysql://` (or `mariadb://`) for MySQL/MariaDB, the embedded store without a URL.
 */
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { MemoryStore } from './memory.ts';
import { answerWithin, NoAnswerInTime } from '../core/clock.ts';
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
  const started = performance.now();
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
  // Its indexes and tables, within what is left of the same wait: a database that answered the
  // handshake and then stopped answering fails start-up too, rather than holding it forever.
  const left = config.db.connectTimeout === 0 ? Infinity : Math.max(1000, config.db.connectTimeout * 1000 - (performance.now() - started));
  try {
    await (left === Infinity ? store.init() : answerWithin(store.init(), left));
  } catch (err) {
    await store.close().catch(() => {});
    if (err instanceof NoAnswerInTime) throw new Error(`the database stopped answering while its indexes and tables were made (db.connectTimeout: ${config.db.connectTimeout} s)`);
    throw err;
  }
  return store;
}

export type { Store } from './types.ts';
