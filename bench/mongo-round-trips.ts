// Database round trips per v2-signed session call on MongoDB (FerretDB here): an in-process server
// on a MongoStore whose client reports every command it sends (monitorCommands), CALLS signed
// calls, and the commands counted meanwhile, by name: the store's and the rate limiter's alike
// (on a server whose $inc is atomic the limiter counts with findAndModify on the same client; on
// FerretDB 1.x it counts in the process, and sends nothing). The job runner's polls of its own
// collections (Agenda, once a second) are not the call's and are left out. The outcome kept for
// retries (§6) is written after the answer: counted apart, so the figure before the answer shows.
// Needs MONGODB_URL.
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { startServer } from '../src/server.ts';
import { signV2Request } from '../src/core/signing.ts';
import { MongoStore } from '../src/store/mongo.ts';
import { JOB_COLLECTIONS } from '../src/jobs/agenda.ts';

const CALLS = 200;
const url = new URL(process.env.MONGODB_URL ?? '');
url.searchParams.set('monitorCommands', 'true');
const dbName = `simpleapi_bench_rt_${process.pid}`;
const log = createLogger({ level: 'silent' });
const store = await MongoStore.connect(url.toString(), { dbName, connectTimeout: 10, nonceTtl: 601, log });
await store.init();
const commands = new Map<string, number>();
const jobCollections: unknown[] = Object.values(JOB_COLLECTIONS);
store.db.client.on('commandStarted', (event: { commandName: string; command: Record<string, unknown> }) => {
  if (jobCollections.includes(event.command[event.commandName])) return;
  commands.set(event.commandName, (commands.get(event.commandName) ?? 0) + 1);
});
let outcomeWrites = 0;
const keepOutcome = store.keepOutcome.bind(store);
store.keepOutcome = (...args) => {
  outcomeWrites++;
  return keepOutcome(...args);
};
const config = loadConfig({ argvOptions: { port: 0, methodsDir: resolve(import.meta.dirname, 'methods'), logLevel: 'silent' }, cwd: resolve(import.meta.dirname, '..'), env: {} });
const server = await startServer({ config, store, log });
try {
  const post = (body: string, headers: Record<string, string> = {}) => fetch(server.url!, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
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
  commands.clear();
  const writesBefore = outcomeWrites;
  for (let i = 0; i < CALLS; i++) await call();
  await new Promise((r) => setTimeout(r, 200)); // the last outcome is written just after its answer
  const all = [...commands.values()].reduce((a, b) => a + b, 0);
  const after = outcomeWrites - writesBefore;
  const byCommand = Object.fromEntries([...commands].map(([name, n]) => [name, n / CALLS]));
  process.stdout.write(JSON.stringify({ perCall: all / CALLS, beforeAnswer: (all - after) / CALLS, byCommand }));
} finally {
  await server.close();
  await store.db.dropDatabase().catch(() => {});
  await store.close();
}
