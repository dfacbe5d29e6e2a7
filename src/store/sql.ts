/** `ctx.sql`: the MySQL store's pool, without loading mysql2 for the other stores. */
import type { Pool } from 'mysql2/promise';
import type { Store } from './types.ts';

/** The mysql2 pool behind a MySQL store; null for any other store. */
export function sqlOf(store: Store): Pool | null {
  return store.kind === 'mysql' ? (store as Store & { sql: Pool }).sql : null;
}
