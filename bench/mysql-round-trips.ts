// Database round trips per v2-signed session call on MySQL/MariaDB: an in-process server on a
// MySqlStore, CALLS signed calls, and what went to the database meanwhile, counted twice:
// - round trips: the commands on the wire. The store reaches MariaDB through a TCP relay
//   (test/helpers/mysql-relay.ts) that counts the packets starting a command; a multi-statement
//   query is one command, whatever mysql2 or the store say about it.
// - statements: MariaDB's own `Questions`, read from a connection of our own, which counts each
//   statement of a multi-statement query apart.
// The outcome kept for retries (§6) is written after the answer: counted apart (one command,
// one statement each), so the figures before the answer show. Needs MYSQL_URL, and no other
// client busy on that server.
import { createConnection } from 'mysql2/promise';
import { createLogger } from '../src/log.ts';
import { MySqlStore } from '../src/store/mysql.ts';
import { mysqlRelay } from '../test/helpers/mysql-relay.ts';
import { signedCalls } from './signed-calls.ts';

const CALLS = 200;
const base = new URL(process.env.MYSQL_URL ?? '');
const db = `simpleapi_bench_rt_${process.pid}`;

const relay = await mysqlRelay(base.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1', base.port === '' ? 3306 : Number(base.port));
const relayed = new URL(base);
relayed.hostname = '127.0.0.1';
relayed.port = String(relay.port);
relayed.pathname = `/${db}`;
const store = await MySqlStore.connect(relayed.toString(), { dbName: db, connectTimeout: 10, nonceTtl: 601, log: createLogger({ level: 'silent' }) });
await store.init();
const calls = await signedCalls(store);
try {
  const direct = new URL(base);
  direct.pathname = '/';
  const counter = await createConnection(direct.toString());
  // Each read is a statement too: the two reads add 1 to the difference.
  const questions = async () => Number(((await counter.query('SHOW GLOBAL STATUS LIKE "Questions"'))[0] as { Value: string }[])[0]!.Value);
  const writesBefore = calls.outcomeWrites();
  const commandsBefore = relay.commands();
  const questionsBefore = await questions();
  for (let i = 0; i < CALLS; i++) await calls.call();
  await new Promise((r) => setTimeout(r, 200)); // the last outcome is written just after its answer
  const statements = (await questions()) - questionsBefore - 1;
  const commands = relay.commands() - commandsBefore;
  await counter.end();
  const after = calls.outcomeWrites() - writesBefore;
  process.stdout.write(JSON.stringify({ perCall: commands / CALLS, beforeAnswer: (commands - after) / CALLS, statements: statements / CALLS, statementsBefore: (statements - after) / CALLS }));
} finally {
  await calls.close();
  await store.sql.query(`DROP DATABASE IF EXISTS \`${db}\``);
  await store.close();
  relay.close();
}
