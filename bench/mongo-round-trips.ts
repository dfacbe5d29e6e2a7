// Database round trips per v2-signed session call on MongoDB (FerretDB here): an in-process server
// on a MongoStore whose client reports every command it sends (monitorCommands), CALLS signed
// calls, and the commands counted meanwhile, by name: the store's and the rate limiter's alike.
// Twice: as this server counts (on FerretDB 1.x, whose $inc is not atomic, the limiter counts in
// the process and sends nothing), and as on a MongoDB whose updates are atomic, FerretDB's
// findOneAndUpdate and bulkWrite run one at a time in this process (test/helpers/mongo.ts,
// atomicUpdates): the limiter then counts in the database, in the nonce's claim's command. "In sequence" is how many times
// a call waits on the database: a command sent while another is still unanswered shares its wait.
// The job runner's polls of its own collections (Agenda, once a second) are not the call's and
// are left out. The outcome kept for retries (§6) is written after the answer: counted apart, so
// the figure before the answer shows. Needs MONGODB_URL.
import { createLogger } from '../src/log.ts';
import { MongoStore } from '../src/store/mongo.ts';
import { JOB_COLLECTIONS } from '../src/jobs/agenda.ts';
import { ATOMIC_STAND_IN } from '../test/helpers/mongo.ts';
import { signedCalls } from './signed-calls.ts';

const CALLS = 200;
const url = new URL(process.env.MONGODB_URL ?? '');
url.searchParams.set('monitorCommands', 'true');
const dbName = `simpleapi_bench_rt_${process.pid}`;
const log = createLogger({ level: 'silent' });
const served = await MongoStore.connect(url.toString(), { dbName, connectTimeout: 10, nonceTtl: 601, log });
const atomic = await MongoStore.connect(url.toString(), { dbName, connectTimeout: 10, nonceTtl: 601, log, ...ATOMIC_STAND_IN });
await served.init();
const jobCollections: unknown[] = Object.values(JOB_COLLECTIONS);
const NONCES = 'simpleapi_nonces';

const commands = new Map<string, number>();
let inFlight = 0;
let waits = 0;
const waiting = new Set<number>();
const started = (event: { requestId: number; commandName: string; command: Record<string, unknown> }) => {
  const collection = event.command[event.commandName];
  if (jobCollections.includes(collection)) return;
  commands.set(event.commandName, (commands.get(event.commandName) ?? 0) + 1);
  // The kept outcome (an update of the call's nonce that sets `o`) goes after the answer: not one of its waits.
  if (event.commandName === 'update' && collection === NONCES && isOutcome(event.command.updates)) return;
  if (inFlight === 0) waits++;
  inFlight++;
  waiting.add(event.requestId);
};
const answered = (event: { requestId: number }) => {
  if (waiting.delete(event.requestId)) inFlight--;
};
for (const store of [served, atomic]) {
  store.db.client.on('commandStarted', started);
  store.db.client.on('commandSucceeded', answered);
  store.db.client.on('commandFailed', answered);
}

function isOutcome(updates: unknown): boolean {
  const first = (updates as { u?: { $set?: Record<string, unknown> } }[] | undefined)?.[0];
  return updates !== undefined && (updates as unknown[]).length === 1 && first?.u?.$set !== undefined && 'o' in first.u.$set;
}

interface Trips {
  perCall: number;
  beforeAnswer: number;
  inSequence: number;
  byCommand: Record<string, number>;
}

async function measure(store: MongoStore, user: string): Promise<Trips> {
  const calls = await signedCalls(store, `${user}-${process.pid}`);
  try {
    commands.clear();
    waits = 0;
    const writesBefore = calls.outcomeWrites();
    for (let i = 0; i < CALLS; i++) await calls.call();
    await new Promise((r) => setTimeout(r, 200)); // the last outcome is written just after its answer
    const all = [...commands.values()].reduce((a, b) => a + b, 0);
    const after = calls.outcomeWrites() - writesBefore;
    return { perCall: all / CALLS, beforeAnswer: (all - after) / CALLS, inSequence: waits / CALLS, byCommand: Object.fromEntries([...commands].map(([name, n]) => [name, n / CALLS])) };
  } finally {
    await calls.close();
  }
}

try {
  const trips = { served: await measure(served, 'rt-served'), atomic: await measure(atomic, 'rt-atomic') };
  // A nonce claimed by insert means the limiter did not count in the claim's command: the figure
  // would be the served path's again, under the other's name.
  if (trips.atomic.byCommand.insert !== undefined) throw new Error('the store with atomic updates claimed its nonces by insert: the rate limiter did not count in the database (was it taken for FerretDB 1.x?)');
  process.stdout.write(JSON.stringify(trips));
} finally {
  await served.db.dropDatabase().catch(() => {});
  await Promise.all([served.close(), atomic.close()]);
}
