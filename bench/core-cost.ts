/**
 * The core's own cost per call, in-process and without HTTP: the handler given a request object,
 * for the public echo (both envelopes) and the v2-signed call on the embedded store, beside
 * json-rpc-2.0's `receive` with the same JSON.parse and JSON.stringify. Steadier than a whole
 * server's CPU time, for one change at a time; `npm run bench` keeps the figures that decide.
 *
 *   node bin/run-ts.js bench/core-cost.ts      (ROUNDS, default 5; CALLS per row and round, default 20000;
 *                                              CORE_BASELINE=/path/to/another/checkout adds its rows)
 */
import { Writable } from 'node:stream';
import { JSONRPCServer } from 'json-rpc-2.0';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { assembleCore } from '../src/assemble.ts';
import { MemoryStore } from '../src/store/memory.ts';
import type { CoreRequest } from '../src/core/request.ts';
import { signV2 } from './sign-v2.mjs';

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const CALLS = Number(process.env.CALLS ?? 20000);
const BLOCK = 500;
const PAYLOAD = { message: 'hello world, this is a benchmark payload', n: 12345, list: [1, 2, 3, 4, 5], nested: { a: true, b: null, c: 'xyzxyzxyz' } };
const RPC = Buffer.from(JSON.stringify({ jsonrpc: '2.0', method: 'echo', params: PAYLOAD, id: 1 }));
const SIMPLE = Buffer.from(JSON.stringify({ method: 'echo', parameters: PAYLOAD }));
const SIGNED = Buffer.from(JSON.stringify({ method: 'secure_echo', parameters: PAYLOAD }));

/** CORE_BASELINE: another checkout whose core is measured beside this one, in this process. */
const BASELINE = process.env.CORE_BASELINE ?? '';
const config = loadConfig({
  argvOptions: { port: 0, methodsDir: new URL('./methods', import.meta.url).pathname, logLevel: 'warn', 'rateLimit.address': 1e9, 'rateLimit.user': 1e9 },
  cwd: process.cwd(),
  env: {},
});
const log = createLogger({ level: 'warn', destination: new Writable({ write: (_c, _e, done) => done() }) });
const core = await assembleCore({ config, store: new MemoryStore(), log });
type Core = Awaited<ReturnType<typeof assembleCore>>;
const baseline: Core | null =
  BASELINE === ''
    ? null
    : await (async () => {
        const assemble = (await import(`${BASELINE}/src/assemble.ts`)) as { assembleCore: typeof assembleCore };
        const { MemoryStore: BaselineStore } = (await import(`${BASELINE}/src/store/memory.ts`)) as { MemoryStore: typeof MemoryStore };
        return assemble.assembleCore({ config, store: new BaselineStore(), log });
      })();

const request = (body: Buffer, extra: Record<string, string> = {}): CoreRequest => ({
  method: 'POST',
  target: '/',
  headers: { host: '127.0.0.1:8888', 'content-type': 'application/json', 'content-length': String(body.length), ...extra },
  body,
  ip: '127.0.0.1',
  signal: new AbortController().signal,
  http: null,
});
const answer = async (req: CoreRequest, on: Core = core) => {
  const r = await on.handler(req);
  if (r === null || r.status !== 200) throw new Error(`the core answered ${r?.status}: ${String(r?.body)}`);
  return r;
};

/** A row: the ms one block of BLOCK calls takes, its requests made beforehand (their making is not timed). */
interface Row {
  name: string;
  block: () => Promise<number>;
}

/** A row of calls to a core, each request made by `make`. */
function coreRow(name: string, on: Core, make: () => CoreRequest): Row {
  return {
    name,
    block: async () => {
      const batch = Array.from({ length: BLOCK }, make);
      const started = performance.now();
      for (const req of batch) {
        const r = on.handler(req);
        if (r instanceof Promise) await r;
      }
      // A signed call's outcome is kept for retries on a setImmediate after its answer
      // (src/core/retry.ts keepLater): one turn here keeps that work inside the timed block.
      await new Promise((resolve) => setImmediate(resolve));
      return performance.now() - started;
    },
  };
}

/** The signed row of a core: a session on it, and a fresh timestamp, nonce and MAC per request. */
async function signedRow(name: string, on: Core): Promise<Row> {
  const created = JSON.parse(String((await answer(request(Buffer.from(JSON.stringify({ method: 'account.create', parameters: { user_id: `core-cost-${process.pid}`, password: 'bench-password' } }))), on)).body));
  const key = Buffer.from(created.session_key as string, 'base64url');
  return coreRow(name, on, () => {
    const { timestamp, nonce, mac } = signV2(key, SIGNED);
    return request(SIGNED, { 'x-session-id': created.session_id, 'x-timestamp': timestamp, 'x-nonce': nonce, 'x-hmac': mac });
  });
}

const rpc = new JSONRPCServer();
rpc.addMethod('echo', (p: unknown) => p);

const rows: Row[] = [
  {
    name: "json-rpc-2.0's receive, with JSON.parse and JSON.stringify",
    block: async () => {
      const started = performance.now();
      for (let i = 0; i < BLOCK; i++) JSON.stringify(await rpc.receive(JSON.parse(RPC.toString('utf8'))));
      return performance.now() - started;
    },
  },
  coreRow('core, JSON-RPC echo', core, () => request(RPC)),
  coreRow('core, simple echo', core, () => request(SIMPLE)),
  await signedRow('core, v2-signed call, embedded store', core),
  ...(baseline === null ? [] : [coreRow('baseline core, JSON-RPC echo', baseline, () => request(RPC)), await signedRow('baseline core, v2-signed call, embedded store', baseline)]),
];

// Blocks of BLOCK calls, row after row: the machine's drift (this one's speed swings twofold
// within seconds) then falls on every row alike, and each round's ratios hold.
const spent = rows.map(() => [] as number[]);
for (let round = 0; round < ROUNDS; round++) {
  const inRound = rows.map(() => 0);
  for (let done = 0, turn = 0; done < CALLS; done += BLOCK, turn++) {
    // Each pass starts at the next row: a row pays for garbage the row before it left (the row
    // after json-rpc-2.0's once read twice its cost), so no row may always follow the same one.
    for (let k = 0; k < rows.length; k++) {
      const i = (turn + k) % rows.length;
      inRound[i]! += await rows[i]!.block();
    }
  }
  inRound.forEach((ms, i) => spent[i]!.push((ms * 1000) / CALLS));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const [i, row] of rows.entries()) {
  const ratios = spent[i]!.map((us, r) => us / spent[0]![r]!);
  console.log(`${row.name.padEnd(60)} ${median(spent[i]!).toFixed(2)} us   ${median(ratios).toFixed(2)}x the first (per round: ${ratios.map((x) => x.toFixed(2)).join(', ')})`);
}
process.exit(0);
