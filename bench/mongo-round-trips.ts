// Database round trips per v2-signed session call on MongoDB (FerretDB here): an in-process server
// on a MongoStore whose client reports every command it sends (monitorCommands), CALLS signed
// calls, and the commands counted meanwhile, by name: the store's and the rate limiter's alike
// (on a server whose $inc is atomic the limiter counts with findAndModify on the same client; on
// FerretDB 1.x it counts in the process, and sends nothing). The job runner's polls of its own
// collections (Agenda, once a second) are not the call's and are left out. The outcome kept for
// retries (§6) is written after the answer: counted apart, so the figure before the answer shows.
// Needs MONGODB_URL.
import { createLogger } from '../src/log.ts';
import { MongoStore } from '../src/store/mongo.ts';
import { JOB_COLLECTIONS } from '../src/jobs/agenda.ts';
import { signedCalls } from './signed-calls.ts';

const CALLS = 200;
const url = new URL(process.env.MONGODB_URL ?? '');
url.searchParams.set('monitorCommands', 'true');
const dbName = `simpleapi_bench_rt_${process.pid}`;
const store = await MongoStore.connect(url.toString(), { dbName, connectTimeout: 10, nonceTtl: 601, log: createLogger({ level: 'silent' }) });
await store.init();
const commands = new Map<string, number>();
const jobCollections: unknown[] = Object.values(JOB_COLLECTIONS);
store.db.client.on('commandStarted', (event: { commandName: string; command: Record<string, unknown> }) => {
  if (jobCollections.includes(event.command[event.commandName])) return;
  commands.set(event.commandName, (commands.get(event.commandName) ?? 0) + 1);
});
const calls = await signedCalls(store);
try {
  commands.clear();
  const writesBefore = calls.outcomeWrites();
  for (let i = 0; i < CALLS; i++) await calls.call();
  await new Promise((r) => setTimeout(r, 200)); // the last outcome is written just after its answer
  const all = [...commands.values()].reduce((a, b) => a + b, 0);
  const after = calls.outcomeWrites() - writesBefore;
  const byCommand = Object.fromEntries([...commands].map(([name, n]) => [name, n / CALLS]));
  process.stdout.write(JSON.stringify({ perCall: all / CALLS, beforeAnswer: (all - after) / CALLS, byCommand }));
} finally {
  await calls.close();
  await store.db.dropDatabase().catch(() => {});
  await store.close();
}
