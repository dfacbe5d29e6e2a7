/**
 * What an insert costs once the oldest entries start to expire, beside what it cost before any
 * did: the embedded store's nonces (a signed call each) and a process rate-limit counter full of
 * keys (an address each). Both once dropped their oldest entries by looping over a Map from its
 * front; V8 keeps a deleted entry's slot until the table is rebuilt, so each loop walked the holes
 * the earlier ones left, and inserts grew 19x to 453x dearer after the first window, a cost no
 * served bench reached (none runs past a 300 s window). Prints the ratios; near 1-3x is the work
 * of the deletes themselves.
 *
 * Run: node bin/run-ts.js bench/expiry-churn.ts (a few seconds; time is simulated, not waited);
 * `npm run bench` runs it with --json among its scale checks.
 */
import { ProcessCounter } from '../src/core/rate-limit.ts';
import { MemoryStore } from '../src/store/memory.ts';

const WINDOW = 300;
const T0 = 1_000_000_000;

/** µs per call of `step(i)` over `count` calls starting at `from`. */
function timed(from: number, count: number, step: (i: number) => void): number {
  const start = performance.now();
  for (let i = from; i < from + count; i++) step(i);
  return ((performance.now() - start) * 1000) / count;
}

interface Churn {
  what: string;
  before: number;
  after: number;
}

async function expiryChurn(): Promise<Churn[]> {
  const rows: Churn[] = [];
  for (const perSecond of [100, 1000, 3000]) {
    const store = new MemoryStore({ maxNoncesPerUser: Infinity, maxNonces: Infinity });
    await store.createSession({ sessionId: 's', userKey: 'u', userId: 'u', key: Buffer.alloc(32), expires: T0 * 2, state: {}, version: 0 });
    const held = WINDOW * perSecond;
    // Call i arrives at second i / perSecond and asks to be kept for the window, as a signed call does.
    const remember = (i: number) => {
      const now = T0 + Math.floor(i / perSecond);
      void store.rememberNonce('s', `n${i}`, now + WINDOW + 1, now);
    };
    const before = timed(0, held, remember);
    const after = timed(held, held, remember);
    rows.push({ what: `a nonce at ${perSecond} signed calls/s (${held.toLocaleString('en')} held)`, before, after });
  }
  for (const maxKeys of [10_000, 100_000, 1_000_000]) {
    const counter = new ProcessCounter(100, 60, maxKeys);
    const take = (i: number) => void counter.take(`a${i}`, 'calls', T0);
    const before = timed(0, maxKeys, take);
    // Full: each new key makes room by forgetting the oldest live window.
    const after = timed(maxKeys, maxKeys, take);
    rows.push({ what: `a new key in a counter of ${maxKeys.toLocaleString('en')} keys`, before, after });
  }
  return rows;
}

if (process.argv.includes('--json')) process.stdout.write(JSON.stringify(await expiryChurn()));
else {
  process.stdout.write('| insert | before any expired | after | ratio |\n|---|--:|--:|--:|\n');
  for (const row of await expiryChurn()) {
    process.stdout.write(`| ${row.what} | ${row.before.toFixed(2)} µs | ${row.after.toFixed(2)} µs | ${(row.after / row.before).toFixed(1)}x |\n`);
  }
}
