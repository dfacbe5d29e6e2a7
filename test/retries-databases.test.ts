/**
 * §6 retries across instances: the first attempt goes to server process A, its retries to server
 * process B on the same database (MongoDB, or FerretDB; MySQL/MariaDB), so the outcome B answers
 * with can only have come from the database. Each block is skipped with the reason printed when
 * its database is not configured (helpers/mongo.ts, helpers/mysql.ts).
 */
import { describe } from 'vitest';
import { dropMongoDb, hasMongo, MONGODB_URL, uniqueDbName } from './helpers/mongo.ts';
import { createMySqlDb, dropMySqlDb, hasMySql, mysqlUrlFor, uniqueMySqlDb } from './helpers/mysql.ts';
import { spawnServer } from './helpers/server.ts';
import { retryScenarios, runsOver } from './retry-scenarios.ts';

const fixtureArgs = ['--port=0', '--methods-dir=test/fixtures/methods'];

/** Processes A and B on one database (`dbArgs`), and `drop` for it once both have stopped. */
async function twoProcesses(dbArgs: string[], drop: () => Promise<void>) {
  const args = [...fixtureArgs, ...dbArgs];
  const [a, b] = await Promise.all([spawnServer(args), spawnServer(args)]);
  return {
    a: a.url!,
    b: b.url!,
    runs: runsOver([a.url!, b.url!]),
    close: async () => {
      await Promise.all([a.stop(), b.stop()]);
      await drop();
    },
  };
}

describe.skipIf(!hasMongo)('MongoDB', () => {
  retryScenarios('two processes on one MongoDB', async () => {
    const dbName = uniqueDbName('retries');
    return { ...(await twoProcesses([`--db-url=${MONGODB_URL}`, `--db-name=${dbName}`], () => dropMongoDb(dbName))), jobsAtLeastOnce: true };
  });
});

describe.skipIf(!hasMySql)('MySQL/MariaDB', () => {
  retryScenarios('two processes on one MariaDB', async () => {
    const db = uniqueMySqlDb('retries');
    await createMySqlDb(db);
    return twoProcesses([`--db-url=${mysqlUrlFor(db)}`], () => dropMySqlDb(db));
  });
});
