// Resident memory of the embedded store holding 100,000 idle sessions. Run with --expose-gc.
import { randomBytes } from 'node:crypto';
import { v4 as uuidv4 } from 'uuid';
import { MemoryStore } from '../src/store/memory.ts';

const COUNT = 100_000;
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');
const settle = () => {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().rss;
};
const store = new MemoryStore();
const before = settle();
const now = Math.floor(Date.now() / 1000);
for (let i = 0; i < COUNT; i++) {
  await store.createSession({ sessionId: uuidv4(), userKey: `user-${i}@example.com`, userId: `user-${i}@example.com`, key: randomBytes(32), expires: now + 86400, state: {}, version: 0 });
}
const after = settle();
process.stdout.write(JSON.stringify({ bytesPerSession: (after - before) / COUNT }));
