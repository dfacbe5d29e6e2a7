// Database round trips per v2-signed session call on MySQL/MariaDB: an in-process server on a
// MySqlStore, CALLS signed calls, and the statements the database itself counted meanwhile (its
// global `Questions`, read from a connection of our own): every statement of the process, the
// store's and the rate limiter's alike (rate-limiter-flexible's limiter queried its own pool,
// which the store's counter never saw). The store's own counter gives the split. The outcome
// kept for retries (§6) is written after the answer: counted apart, so the figure before the
// answer shows. Needs MYSQL_URL, and no other client busy on that server.
import { createConnection } from 'mysql2/promise';
import { createLogger } from '../src/log.ts';
import { MySqlStore } from '../src/store/mysql.ts';
import { signedCalls } from './signed-calls.ts';

const CALLS = 200;
const base = new URL(process.env.MYSQL_URL ?? '');
const db = `simpleapi_bench_rt_${process.pid}`;
base.pathname = `/${db}`;
const store = await MySqlStore.connect(base.toString(), { dbName: db, connectTimeout: 10, nonceTtl: 601, log: createLogger({ level: 'silent' }) });
await store.init();
const calls = await signedCalls(store);
try {
  const host = new URL(base);
  host.pathname = '/';
  const counter = await createConnection(host.toString());
  // Each read is a statement too: the two reads add 1 to the difference.
  const questions = async () => Number(((await counter.query('SHOW GLOBAL STATUS LIKE "Questions"'))[0] as { Value: string }[])[0]!.Value);
  const before = store.queries;
  const writesBefore = calls.outcomeWrites();
  const questionsBefore = await questions();
  for (let i = 0; i < CALLS; i++) await calls.call();
  await new Promise((r) => setTimeout(r, 200)); // the last outcome is written just after its answer
  const all = (await questions()) - questionsBefore - 1;
  await counter.end();
  const ofStore = store.queries - before;
  const after = calls.outcomeWrites() - writesBefore;
  process.stdout.write(JSON.stringify({ perCall: all / CALLS, beforeAnswer: (all - after) / CALLS, ofStore: ofStore / CALLS, others: (all - ofStore) / CALLS }));
} finally {
  await calls.close();
  await store.sql.query(`DROP DATABASE IF EXISTS \`${db}\``);
  await store.close();
}
