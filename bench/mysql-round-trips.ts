// Database round trips per v2-signed session call on MySQL/MariaDB: an in-process server on a
// MySqlStore, CALLS signed calls, and the statements the database itself counted meanwhile (its
// global `Questions`, read from a connection of our own): every statement of the process, the
// store's and the rate limiter's alike (rate-limiter-flexible queries its own pool, which the
// store's counter never saw). The store's own counter gives the split. The outcome kept for
// retries (§6) is written after the answer: counted apart, so the figure before the answer shows.
// Needs MYSQL_URL, and no other client busy on that server.
import { randomBytes } from 'node:crypto';
import { createConnection } from 'mysql2/promise';
import { resolve } from 'node:path';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { startServer } from '../src/server.ts';
import { signV2Request } from '../src/core/signing.ts';
import { MySqlStore } from '../src/store/mysql.ts';

const CALLS = 200;
const base = new URL(process.env.MYSQL_URL ?? '');
const db = `simpleapi_bench_rt_${process.pid}`;
base.pathname = `/${db}`;
const log = createLogger({ level: 'silent' });
const store = await MySqlStore.connect(base.toString(), { dbName: db, connectTimeout: 10, nonceTtl: 601, log });
await store.init();
let outcomeWrites = 0;
const keepOutcome = store.keepOutcome.bind(store);
store.keepOutcome = (...args) => {
  outcomeWrites++;
  return keepOutcome(...args);
};
const config = loadConfig({ argvOptions: { port: 0, methodsDir: resolve(import.meta.dirname, 'methods'), logLevel: 'silent' }, cwd: resolve(import.meta.dirname, '..'), env: {} });
const server = await startServer({ config, store, log });
try {
  const url = server.url!;
  const post = (body: string, headers: Record<string, string> = {}) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const grant = (await (await post(JSON.stringify({ method: 'account.create', parameters: { user_id: `rt-${process.pid}`, password: 'bench-password' } }))).json()) as { session_id: string; session_key: string };
  const key = Buffer.from(grant.session_key, 'base64url');
  const body = JSON.stringify({ method: 'secure_echo', parameters: { n: 1 } });
  const call = async () => {
    const timestamp = String(Math.floor(Date.now() / 1000));
    const nonce = randomBytes(16).toString('base64url');
    const res = await post(body, { 'x-session-id': grant.session_id, 'x-timestamp': timestamp, 'x-nonce': nonce, 'x-hmac': signV2Request(key, timestamp, nonce, Buffer.from(body)) });
    if (res.status !== 200) throw new Error(`secure_echo: ${res.status} ${await res.text()}`);
    await res.arrayBuffer();
  };
  await call(); // the first may touch the session's expiry
  await new Promise((r) => setTimeout(r, 100));
  const host = new URL(base);
  host.pathname = '/';
  const counter = await createConnection(host.toString());
  // Each read is a statement too: the two reads add 1 to the difference.
  const questions = async () => Number(((await counter.query('SHOW GLOBAL STATUS LIKE "Questions"'))[0] as { Value: string }[])[0]!.Value);
  const before = store.queries;
  const writesBefore = outcomeWrites;
  const questionsBefore = await questions();
  for (let i = 0; i < CALLS; i++) await call();
  await new Promise((r) => setTimeout(r, 200)); // the last outcome is written just after its answer
  const all = (await questions()) - questionsBefore - 1;
  await counter.end();
  const ofStore = store.queries - before;
  const after = outcomeWrites - writesBefore;
  process.stdout.write(JSON.stringify({ perCall: all / CALLS, beforeAnswer: (all - after) / CALLS, ofStore: ofStore / CALLS, others: (all - ofStore) / CALLS }));
} finally {
  await server.close();
  await store.sql.query(`DROP DATABASE IF EXISTS \`${db}\``);
  await store.close();
}
