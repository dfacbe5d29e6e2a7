// Time per dispatch with 10 and with 10,000 methods registered: lookup must not grow with the table.
import { AccountService } from '../src/core/accounts.ts';
import { Dispatcher } from '../src/core/dispatch.ts';
import { createLogger } from '../src/log.ts';
import type { MethodRecord } from '../src/core/registry.ts';
import { MethodHolder } from '../src/core/methods.ts';
import { MemoryStore } from '../src/store/memory.ts';

function table(size: number): Record<string, MethodRecord> {
  const t: Record<string, MethodRecord> = Object.create(null);
  for (let i = 0; i < size; i++) {
    const name = `group${i % 100}.method${i}`;
    t[name] = { name, file: '-', auth: 'public', description: '', paramsSchema: undefined, resultSchema: undefined, validate: undefined, invoke: (_ctx, p) => p };
  }
  return t;
}

function nsPerDispatch(size: number): number {
  const store = new MemoryStore();
  const log = createLogger({ level: 'silent' });
  const dispatcher = new Dispatcher(new MethodHolder(table(size), { title: 'bench', version: '0' }), { store, log, accounts: new AccountService(store, { sessionTtl: 60, maxFailures: 5, maxFailuresPerIp: 50, maxFailuresPerUser: 1000, window: 60 }) }, { batchConcurrency: 8, methodTimeout: 30 });
  const scope = { requestId: 'bench', traceId: '4bf92f3577b34da6a3ce929d0e0e4736', ip: '127.0.0.1', session: null, signal: new AbortController().signal, http: null };
  const call = { method: `group5.method${size >= 10 ? 5 : 0}`, params: { a: 1 } };
  const samples: number[] = [];
  for (let batch = 0; batch < 30; batch++) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < 20_000; i++) {
      const outcome = dispatcher.run(call, scope);
      if (outcome instanceof Promise || !outcome.ok) throw new Error('the bench method should answer synchronously');
    }
    samples.push(Number(process.hrtime.bigint() - started) / 20_000);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)]!;
}

// Interleaved, so both sizes see the same JIT and machine state.
const small: number[] = [];
const large: number[] = [];
for (let i = 0; i < 3; i++) {
  small.push(nsPerDispatch(10));
  large.push(nsPerDispatch(10_000));
}
const best = (xs: number[]) => Math.min(...xs);
process.stdout.write(JSON.stringify({ small: best(small), large: best(large) }));
