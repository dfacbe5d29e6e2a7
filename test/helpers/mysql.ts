/**
 * The MySQL/MariaDB the tests use: MYSQL_URL (e.g. mysql://root@127.0.0.1:3306/simpleapi_test;
 * .ci/run makes sure the machine's MariaDB runs and sets it). Without it the MySQL tests are
 * skipped with the reason printed, except under CI=true, where that is a failure.
 */
import { randomBytes } from 'node:crypto';
import { createPool } from 'mysql2/promise';
import { createLogger } from '../../src/log.ts';
import { MySqlStore, parseMySqlUrl } from '../../src/store/mysql.ts';

export const MYSQL_URL = process.env.MYSQL_URL ?? '';

if (MYSQL_URL === '') {
  if (process.env.CI === 'true') {
    throw new Error('CI=true but MYSQL_URL is not set: the MySQL tests must run in CI (.ci/run starts MariaDB and sets it)');
  }
  console.warn('MySQL tests skipped: MYSQL_URL is not set (e.g. MYSQL_URL=mysql://root@127.0.0.1:3306/simpleapi_test; .ci/run sets it)');
}

export const hasMySql = MYSQL_URL !== '';

/** A database name of its own for each test file, so files can run side by side. */
export function uniqueMySqlDb(label: string): string {
  return `simpleapi_test_${label}_${randomBytes(4).toString('hex')}`;
}

/** MYSQL_URL (or `base`) with its database replaced by `db`. */
export function mysqlUrlFor(db: string, base = MYSQL_URL): string {
  const u = new URL(base);
  u.pathname = `/${db}`;
  return u.toString();
}

/** Creates the database `db` on the server of `url`. */
export async function createMySqlDb(db: string, base = MYSQL_URL): Promise<void> {
  await onServer(base, `CREATE DATABASE IF NOT EXISTS \`${db}\``);
}

/** Drops the database `db`; what a test file does last. */
export async function dropMySqlDb(db: string, base = MYSQL_URL): Promise<void> {
  await onServer(base, `DROP DATABASE IF EXISTS \`${db}\``);
}

async function onServer(base: string, statement: string): Promise<void> {
  const { database: _database, ...server } = parseMySqlUrl(base, '');
  const pool = createPool({ ...server, connectionLimit: 1 });
  try {
    await pool.query(statement);
  } finally {
    await pool.end();
  }
}

/** A store on a database of its own (created first). */
export async function openMySqlStore(db: string, nonceTtl = 601): Promise<MySqlStore> {
  await createMySqlDb(db);
  const store = await MySqlStore.connect(mysqlUrlFor(db), { dbName: db, connectTimeout: 10, nonceTtl, log: createLogger({ level: 'silent' }) });
  await store.init();
  return store;
}
