/**
 * The core's own cost of --metrics, without HTTP or the machine's noise around it: one JSON-RPC
 * echo through the assembled handler, metrics off and on, interleaved over rounds; prints the
 * median microseconds per request of each. `npm run bench` measures the same over real HTTP.
 */
import { resolve } from 'node:path';
import { assembleCore } from '../src/assemble.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { MemoryStore } from '../src/store/memory.ts';

const ROOT = resolve(import.meta.dirname, '..');
const body = Buffer.from('{"jsonrpc":"2.0","method":"echo","params":{"a":1},"id":1}');
const core = async (on: boolean) => {
  const config = loadConfig({ argvOptions: { methodsDir: resolve(ROOT, 'bench/methods'), 'metrics.enabled': on }, cwd: ROOT, env: {} });
  return assembleCore({ config, store: new MemoryStore(), log: createLogger({ level: 'silent' }) });
};
const cores = { off: await core(false), on: await core(true) };
const request = { method: 'POST', target: '/', headers: { 'content-type': 'application/json' }, body, ip: '127.0.0.1', signal: new AbortController().signal, http: null };
const samples: Record<string, number[]> = { off: [], on: [] };
for (let round = 0; round < 10; round++) {
  for (const [name, c] of Object.entries(cores)) {
    const n = 50_000;
    const started = performance.now();
    for (let i = 0; i < n; i++) await c.handler(request);
    if (round > 1) samples[name]!.push(((performance.now() - started) * 1000) / n); // two rounds of warm-up
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const off = median(samples.off!);
const on = median(samples.on!);
process.stdout.write(`${JSON.stringify({ offUs: +off.toFixed(2), onUs: +on.toFixed(2), ratio: +(on / off).toFixed(3) })}\n`);
process.exit(0);
