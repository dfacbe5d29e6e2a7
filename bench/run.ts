/**
 * `npm run bench`: simpleapi beside its peers, measured side by side in one run.
 *
 * Each server is its own process pinned to core 0; its load generator (bench/hold.mjs) runs in
 * another process pinned to core 1. Servers are interleaved over rounds so machine drift hits all
 * alike. The figure that decides is server CPU time per request (from /proc, user + system), steadier on a shared
 * machine than requests/s; the targets' ratios come from pairs of servers loaded at the same time
 * (PAIRS), steadier still. Then the scale checks: start-up with many method files, dispatch time
 * against table size, the embedded store's memory per session, and inserts once entries expire.
 *
 * BENCH_ROUNDS (default 5), BENCH_SECONDS (default 4), MONGODB_URL (adds the MongoDB row), MYSQL_URL
 * (adds the MariaDB row and its database round trips per call), BENCH_BASELINE (another checkout's
 * simpleapi beside this one: rows for its echo and signed calls, to show a change costs nothing),
 * BENCH_DRIVER=autocannon (the earlier load generator, for comparison: see DRIVER).
 */
import { createServer as createNetServer } from 'node:net';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSession, PAYLOAD, SIGNED_BODY } from './sign-v2.mjs';
import { NO_RATE_LIMIT, startFlags } from './serve-args.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
/** BENCH_BASELINE: another simpleapi checkout to measure beside this one (e.g. the last release). */
const BASELINE = process.env.BENCH_BASELINE ?? '';
/** BENCH_ONLY: a regular expression; only the rows whose name matches are measured. */
const ONLY = process.env.BENCH_ONLY === undefined ? undefined : new RegExp(process.env.BENCH_ONLY);
const CONNECTIONS = 10;
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
const MONGODB_URL = process.env.MONGODB_URL ?? '';
const MYSQL_URL = process.env.MYSQL_URL ?? '';
const MYSQL_BENCH_DB = `simpleapi_bench_${process.pid}`;
const RPC_BODY = JSON.stringify({ jsonrpc: '2.0', method: 'echo', params: PAYLOAD, id: 1 });
const SIMPLE_BODY = JSON.stringify({ method: 'echo', parameters: PAYLOAD });
const BATCH_BODY = JSON.stringify(Array.from({ length: 10 }, (_, i) => ({ jsonrpc: '2.0', method: 'echo', params: PAYLOAD, id: i })));
const taskset = (() => {
  try {
    execFileSync('taskset', ['-c', '0', 'true']);
    return true;
  } catch {
    return false;
  }
})();

interface Server {
  proc: ChildProcess;
  url: string;
}

interface Row {
  name: string;
  server: string;
  body: string;
  /** Calls per HTTP request (10 for the batch). */
  entries?: number;
  signed?: boolean;
  /** One of a pair compared with each other: run again in reverse order at the end of each round (ABBA), so drift cancels. */
  pair?: boolean;
}

function pinned(core: string, command: string, args: string[]): [string, string[]] {
  return taskset && core !== '' ? ['taskset', ['-c', core, command, ...args]] : [command, args];
}

/** Starts a server and waits for it to say where it listens (READY <port>, or simpleapi's listening line). */
function startServer(args: string[], core: string, env: NodeJS.ProcessEnv = {}): Promise<Server> {
  const quiet = args.find((a) => a.startsWith('--port=') && a !== '--port=0');
  if (quiet !== undefined) return startQuietServer(args, core, Number(quiet.slice('--port='.length)));
  const [cmd, argv] = pinned(core, process.execPath, args);
  const proc = spawn(cmd, argv, { cwd: ROOT, env: { ...process.env, PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((done, fail) => {
    let buffered = '';
    let found = false;
    proc.stdout!.on('data', (chunk: Buffer) => {
      if (found) return; // drained and dropped: log lines of the run
      buffered += chunk.toString();
      const ready = /READY (\d+)/.exec(buffered) ?? /"url":"http:\/\/127\.0\.0\.1:(\d+)"/.exec(buffered);
      if (ready !== null) {
        found = true;
        done({ proc, url: `http://127.0.0.1:${ready[1]}/` });
      }
    });
    proc.on('exit', (code) => {
      if (!found) fail(new Error(`${args.join(' ')} exited with ${code} before listening`));
    });
  });
}

/** A server on a port of our choosing, ready when /health answers: at --log-level=warn it prints no listening line. */
async function startQuietServer(args: string[], core: string, port: number): Promise<Server> {
  const [cmd, argv] = pinned(core, process.execPath, args);
  const proc = spawn(cmd, argv, { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  const url = `http://127.0.0.1:${port}/`;
  for (let i = 0; i < 300; i++) {
    if (proc.exitCode !== null) throw new Error(`${args.join(' ')} exited with ${proc.exitCode} before listening`);
    if (await fetch(new URL('/health', url)).then((r) => r.ok, () => false)) return { proc, url };
    await new Promise((r) => setTimeout(r, 100));
  }
  proc.kill('SIGKILL');
  throw new Error(`${args.join(' ')} did not answer /health within 30 s`);
}

/** A free TCP port on 127.0.0.1. */
function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const probe = createNetServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => done(port));
    });
    probe.on('error', fail);
  });
}

/** CPU seconds of a process and its children (workers), from /proc. */
function cpuSeconds(pid: number): number {
  const ticksOf = (p: number): number => {
    try {
      const fields = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return Number(fields[11]) + Number(fields[12]);
    } catch {
      return 0;
    }
  };
  let ticks = ticksOf(pid);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ');
      if (Number(fields[1]) === pid) ticks += ticksOf(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return ticks / CLK_TCK;
}

interface LoadResult {
  requests: number;
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

/** Runs a load driver (bench/load.mjs or bench/hold.mjs) on `core` and reads its JSON result. */
function drive<T>(script: string, job: unknown, core: string): Promise<T> {
  const [cmd, argv] = pinned(core, process.execPath, [join(ROOT, script), JSON.stringify(job)]);
  return new Promise((done, fail) => {
    const proc = spawn(cmd, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.on('data', (c) => (out += c));
    proc.on('exit', (code) => (code === 0 ? done(JSON.parse(out) as T) : fail(new Error(`${script} exited ${code}`))));
  });
}

/**
 * The load generator of the CPU tables. bench/hold.mjs (the default) keeps every server busy,
 * signing each request as it sends it; autocannon (BENCH_DRIVER=autocannon, bench/load.mjs)
 * rebuilds every pre-signed request and fell behind a signed server, which then idled half the
 * time and paid a wake-up per request that read as its own cost: the 'busy' column shows it.
 */
const DRIVER = process.env.BENCH_DRIVER === 'autocannon' ? 'bench/load.mjs' : 'bench/hold.mjs';
const DRIVER_NAME = DRIVER === 'bench/hold.mjs' ? 'bench/hold.mjs' : 'autocannon';

function load(url: string, body: string, seconds: number, signed?: { session_id: string; session_key: string }, core = '1'): Promise<LoadResult> {
  return drive(DRIVER, { url, body, connections: CONNECTIONS, duration: seconds, signed }, core);
}

/** Keep-alive connections for the p99 table (BENCH_MANY_CONNECTIONS). */
const MANY = Number(process.env.BENCH_MANY_CONNECTIONS ?? 1000);
const MANY_ROWS = [
  { name: 'jayson (JSON-RPC 2.0 over HTTP)', server: 'jayson', body: RPC_BODY },
  { name: 'simpleapi echo, JSON-RPC', server: 'simpleapi', body: RPC_BODY },
];

interface ManyMeasured {
  rps: number[];
  p50: number[];
  p99: number[];
  connectMs: number[];
  failures: number;
}

/** One run of bench/hold.mjs: every connection answered once, then all of them busy (it says why not autocannon). */
function hold(url: string, body: string, seconds: number): Promise<LoadResult & { timeouts: number; resets: number; connectMs: number }> {
  return drive('bench/hold.mjs', { url, body, connections: MANY, duration: seconds }, '1');
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface Measured {
  rps: number[];
  p50: number[];
  p99: number[];
  cpuUs: number[];
  busy: number[];
  failures: number;
}

/**
 * The comparisons the targets are judged on, each measured with both servers loaded at once
 * (both pinned to core 0, their two load generators on core 1), round after round. Run one after
 * the other, two identical servers read 0.71x to 1.81x of each other on a shared machine whose
 * speed swings within seconds; loaded together, whatever slows the machine slows both, and the
 * same two read 0.96x to 1.01x. Each side's CPU per request is its own process's.
 */
const PAIRS: { name: string; a: string; b: string }[] = [
  { name: 'echo, simple envelope, at warn / json-rpc-2.0', a: 'simpleapi echo, simple envelope, --log-level=warn', b: 'json-rpc-2.0 on node:http' },
  { name: 'echo, JSON-RPC, at warn / json-rpc-2.0', a: 'simpleapi echo, JSON-RPC, --log-level=warn', b: 'json-rpc-2.0 on node:http' },
  { name: 'echo, JSON-RPC, at warn / jayson', a: 'simpleapi echo, JSON-RPC, --log-level=warn', b: 'jayson (JSON-RPC 2.0 over HTTP)' },
  { name: 'echo, JSON-RPC, at info (a log line per request) / the same at warn (twin servers)', a: 'simpleapi echo, JSON-RPC, info (twin of the warn server)', b: 'simpleapi echo, JSON-RPC, --log-level=warn' },
  { name: 'v2-signed call, embedded store, at info / jayson', a: 'simpleapi v2-signed session call, embedded store', b: 'jayson (JSON-RPC 2.0 over HTTP)' },
  { name: 'echo, JSON-RPC, --metrics / without (twin servers)', a: 'simpleapi echo, JSON-RPC, --metrics', b: 'simpleapi echo, JSON-RPC, twin of the --metrics server without it' },
  {
    name: 'v2-signed call, embedded store, --metrics / without (twin servers)',
    a: 'simpleapi v2-signed session call, embedded store, --metrics',
    b: 'simpleapi v2-signed session call, embedded store, twin of the --metrics server without it',
  },
  {
    name: 'v2-signed call, outcomes kept for retries / not kept',
    a: 'simpleapi v2-signed session call, embedded store, outcomes kept for retries (own server)',
    b: 'simpleapi v2-signed session call, embedded store, outcomes not kept (own server, --no-keep-outcomes)',
  },
];

const rowNamed = (rows: Row[], name: string) => rows.find((r) => r.name === name);

/**
 * Loads the rows' servers at the same time (a warm-up, then SECONDS): one row alone for the
 * one-after-the-other table, two for a pair. Returns each row's load result and its server's CPU
 * us per request (per entry for the batch).
 */
async function together(sides: Row[], running: Map<string, Server>, sessions: Map<string, { session_id: string; session_key: string }>): Promise<{ result: LoadResult; cpuUs: number; busy: number }[]> {
  const servers = sides.map((row) => running.get(row.server)!);
  const signedOf = (row: Row) => (row.signed ? sessions.get(row.server) : undefined);
  // --workers=2 and its load share both cores.
  const coreOf = (row: Row) => (row.server === 'workers' ? '' : '1');
  await Promise.all(sides.map((row, i) => load(servers[i]!.url, row.body, 1, signedOf(row), coreOf(row))));
  const before = servers.map((server) => cpuSeconds(server.proc.pid!));
  const results = await Promise.all(sides.map((row, i) => load(servers[i]!.url, row.body, SECONDS, signedOf(row), coreOf(row))));
  return results.map((result, i) => {
    const cpu = cpuSeconds(servers[i]!.proc.pid!) - before[i]!;
    // busy: the share of one core the server used over the timed seconds (a share of two for
    // --workers=2). Well under 1 alone on its core means the load did not keep it busy.
    return { result, cpuUs: (cpu * 1e6) / Math.max(1, result.requests * (sides[i]!.entries ?? 1)), busy: cpu / SECONDS / (sides[i]!.server === 'workers' ? 2 : 1) };
  });
}

interface Paired {
  ratio: number[];
  a: number[];
  b: number[];
}

async function throughput(): Promise<{ rows: Row[]; results: Map<string, Measured>; notes: string[]; many: Map<string, ManyMeasured>; paired: Map<string, Paired> }> {
  const notes: string[] = [];
  const paired = new Map<string, Paired>();
  const many = new Map<string, ManyMeasured>();
  // simpleapi as `npm start` runs it; the peers on node's defaults.
  const flags = startFlags(ROOT);
  const simpleapi = (extra: string[]) => [...flags, join(ROOT, 'bin/simpleapi.js'), 'serve', '--port=0', `--methods-dir=${join(ROOT, 'bench/methods')}`, '--log-level=info', ...NO_RATE_LIMIT, ...extra];
  const servers: Record<string, { args: string[]; core: string }> = {
    raw: { args: [join(ROOT, 'bench/servers/raw-http.mjs')], core: '0' },
    koa: { args: [join(ROOT, 'bench/servers/koa-bare.mjs')], core: '0' },
    fastify: { args: [join(ROOT, 'bench/servers/fastify.mjs')], core: '0' },
    jayson: { args: [join(ROOT, 'bench/servers/jayson.mjs')], core: '0' },
    jsonrpc2: { args: [join(ROOT, 'bench/servers/json-rpc-2.0.mjs')], core: '0' },
    // No cap per address: the 1,000-connection table comes from one address, as jayson's does.
    simpleapi: { args: simpleapi(['--max-connections-per-address=0']), core: '0' },
    metrics: { args: simpleapi(['--metrics']), core: '0' },
    // Its twin without metrics, serving the same two rows: the shared server above also takes the
    // batch and signed rows and the 1,000-connection table, and its history spread the pair's
    // rounds from 0.98x to 1.40x.
    nometrics: { args: simpleapi([]), core: '0' },
    // §6 retries' cost: two servers alike but for keeping outcomes, each serving one signed row
    // only, so neither carries the other rows' heap or JIT history.
    keep: { args: simpleapi([]), core: '0' },
    nokeep: { args: simpleapi(['--no-keep-outcomes']), core: '0' },
    // At warn: no line per request, as the peers log nothing. The issue's targets are at warn.
    warn: { args: [...flags, join(ROOT, 'bin/simpleapi.js'), 'serve', `--port=${await freePort()}`, `--methods-dir=${join(ROOT, 'bench/methods')}`, '--log-level=warn', ...NO_RATE_LIMIT], core: '0' },
    // Its twin at info, serving the same two rows: what a log line costs, with the same history.
    // (The shared server above also takes the batch and signed rows, whose kept nonces and
    // outcomes make its collector work harder: one reason two benches disagreed.)
    info: { args: simpleapi([]), core: '0' },
  };
  if (BASELINE !== '') {
    // Another checkout of simpleapi (an older commit) beside this one, for "no regression" in one run.
    servers.baseline = { args: [...startFlags(BASELINE), join(BASELINE, 'bin/simpleapi.js'), 'serve', '--port=0', `--methods-dir=${join(BASELINE, 'bench/methods')}`, '--log-level=info', ...NO_RATE_LIMIT], core: '0' };
  }
  if (MYSQL_URL !== '') {
    const url = new URL(MYSQL_URL);
    url.pathname = `/${MYSQL_BENCH_DB}`;
    servers.mysql = { args: simpleapi([`--db-url=${url}`]), core: '0' };
  }
  if (MONGODB_URL !== '') servers.mongo = { args: simpleapi([`--db-url=${MONGODB_URL}`, `--db-name=simpleapi_bench_${process.pid}`]), core: '0' };
  // --workers needs a shared database (sessions would differ per worker otherwise).
  const workersDb = servers.mongo ?? servers.mysql;
  if (workersDb !== undefined) servers.workers = { args: [...workersDb.args, '--workers=2'], core: '' };

  const rows: Row[] = [
    { name: 'node:http (raw), JSON-RPC echo', server: 'raw', body: RPC_BODY },
    { name: 'Koa + koa-bodyparser', server: 'koa', body: RPC_BODY },
    { name: 'fastify', server: 'fastify', body: RPC_BODY },
    { name: 'jayson (JSON-RPC 2.0 over HTTP)', server: 'jayson', body: RPC_BODY },
    { name: 'json-rpc-2.0 on node:http', server: 'jsonrpc2', body: RPC_BODY },
    { name: 'simpleapi echo, simple envelope', server: 'simpleapi', body: SIMPLE_BODY },
    { name: 'simpleapi echo, JSON-RPC', server: 'simpleapi', body: RPC_BODY },
    { name: 'simpleapi echo, JSON-RPC batch of 10 (per entry)', server: 'simpleapi', body: BATCH_BODY, entries: 10 },
    { name: 'simpleapi v2-signed session call, embedded store', server: 'simpleapi', body: SIGNED_BODY, signed: true },
    { name: 'simpleapi echo, simple envelope, --log-level=warn', server: 'warn', body: SIMPLE_BODY },
    { name: 'simpleapi echo, JSON-RPC, --log-level=warn', server: 'warn', body: RPC_BODY },
    { name: 'simpleapi echo, simple envelope, info (twin of the warn server)', server: 'info', body: SIMPLE_BODY },
    { name: 'simpleapi echo, JSON-RPC, info (twin of the warn server)', server: 'info', body: RPC_BODY },
    // The same two calls with --metrics, interleaved with the rows above in every round.
    { name: 'simpleapi echo, JSON-RPC, --metrics', server: 'metrics', body: RPC_BODY },
    { name: 'simpleapi v2-signed session call, embedded store, --metrics', server: 'metrics', body: SIGNED_BODY, signed: true },
    { name: 'simpleapi echo, JSON-RPC, twin of the --metrics server without it', server: 'nometrics', body: RPC_BODY },
    { name: 'simpleapi v2-signed session call, embedded store, twin of the --metrics server without it', server: 'nometrics', body: SIGNED_BODY, signed: true },
    { name: 'simpleapi v2-signed session call, embedded store, outcomes kept for retries (own server)', server: 'keep', body: SIGNED_BODY, signed: true, pair: true },
    { name: 'simpleapi v2-signed session call, embedded store, outcomes not kept (own server, --no-keep-outcomes)', server: 'nokeep', body: SIGNED_BODY, signed: true, pair: true },
  ];
  if (BASELINE !== '') {
    rows.push(
      { name: `baseline (${basename(BASELINE)}) echo, simple envelope`, server: 'baseline', body: SIMPLE_BODY },
      { name: `baseline (${basename(BASELINE)}) echo, JSON-RPC`, server: 'baseline', body: RPC_BODY },
      { name: `baseline (${basename(BASELINE)}) v2-signed session call, embedded store`, server: 'baseline', body: SIGNED_BODY, signed: true },
    );
  }
  if (MONGODB_URL !== '') rows.push({ name: 'simpleapi v2-signed session call, MongoDB (FerretDB)', server: 'mongo', body: SIGNED_BODY, signed: true });
  else notes.push('MongoDB row left out: MONGODB_URL is not set.');
  if (MYSQL_URL !== '') rows.push({ name: 'simpleapi v2-signed session call, MariaDB', server: 'mysql', body: SIGNED_BODY, signed: true });
  else notes.push('MariaDB row left out: MYSQL_URL is not set.');
  if (servers.workers !== undefined) rows.push({ name: 'simpleapi --workers=2, JSON-RPC echo (both cores, load generator shares them; on the database)', server: 'workers', body: RPC_BODY });
  else notes.push('--workers=2 row left out: it needs MONGODB_URL or MYSQL_URL (workers share sessions through a database).');

  if (ONLY !== undefined) {
    // BENCH_ONLY: measure just the rows whose name matches (and start just their servers).
    rows.splice(0, rows.length, ...rows.filter((r) => ONLY.test(r.name)));
    for (const key of Object.keys(servers)) if (!rows.some((r) => r.server === key)) delete servers[key];
  }
  const running = new Map<string, Server>();
  for (const [key, s] of Object.entries(servers)) running.set(key, await startServer(s.args, s.core));
  const sessions = new Map<string, { session_id: string; session_key: string }>();
  for (const row of rows) {
    if (row.signed && !sessions.has(row.server)) sessions.set(row.server, await createSession(running.get(row.server)!.url, `bench-${row.server}-${process.pid}`));
  }
  const results = new Map<string, Measured>(rows.map((r) => [r.name, { rps: [], p50: [], p99: [], cpuUs: [], busy: [], failures: 0 }]));
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      process.stderr.write(`round ${round}/${ROUNDS}:`);
      for (const row of [...rows, ...rows.filter((r) => r.pair === true).reverse()]) {
        const [{ result: r, cpuUs, busy }] = (await together([row], running, sessions)) as [{ result: LoadResult; cpuUs: number; busy: number }];
        const m = results.get(row.name)!;
        m.busy.push(busy);
        m.rps.push(r.rps * (row.entries ?? 1));
        m.p50.push(r.p50);
        m.p99.push(r.p99);
        m.cpuUs.push(cpuUs);
        m.failures += r.non2xx + r.errors;
        process.stderr.write('.');
      }
      process.stderr.write('\n');
    }
    // The target ratios, from pairs of servers loaded at the same time (see PAIRS).
    for (let round = 1; round <= ROUNDS; round++) {
      process.stderr.write(`pairs loaded together, round ${round}/${ROUNDS}:`);
      for (const pair of PAIRS) {
        const sides = [rowNamed(rows, pair.a), rowNamed(rows, pair.b)];
        if (sides.some((r) => r === undefined)) continue; // left out by BENCH_ONLY
        const [a, b] = (await together(sides as Row[], running, sessions)).map((side) => side.cpuUs) as [number, number];
        const m = paired.get(pair.name) ?? { ratio: [], a: [], b: [] };
        m.a.push(a);
        m.b.push(b);
        m.ratio.push(a / b);
        paired.set(pair.name, m);
        process.stderr.write('.');
      }
      process.stderr.write('\n');
    }
    // p99 under many keep-alive connections, jayson beside us, interleaved the same way.
    for (let round = 1; round <= ROUNDS; round++) {
      process.stderr.write(`${MANY} connections, round ${round}/${ROUNDS}:`);
      for (const row of MANY_ROWS) {
        const server = running.get(row.server);
        if (server === undefined) continue;
        const r = await hold(server.url, row.body, SECONDS);
        const m = many.get(row.name) ?? { rps: [], p50: [], p99: [], failures: 0, connectMs: [] };
        m.rps.push(r.rps);
        m.p50.push(r.p50);
        m.p99.push(r.p99);
        m.connectMs.push(r.connectMs);
        m.failures += r.non2xx + r.errors + r.timeouts + r.resets;
        many.set(row.name, m);
        process.stderr.write('.');
      }
      process.stderr.write('\n');
    }
  } finally {
    for (const s of running.values()) s.proc.kill('SIGTERM');
    if (MYSQL_URL !== '') await dropMySqlBenchDb();
  }
  if (!taskset) notes.push('taskset is missing: servers and load generator were not pinned to separate cores.');
  return { rows, results, notes, many, paired };
}

/**
 * Start-up time: from spawn to the listening line, with N generated method files. `again`: a
 * second start on the same files (a restart without edits: tsx's cache and the OS's file cache warm); the
 * first is cold, as on a fresh machine or after every file changed.
 */
async function startupWith(files: number, again = false): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'simpleapi-bench-methods-'));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  for (let i = 0; i < files; i++) {
    const sub = join(dir, `group${i % 50}`);
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, `m${i}.ts`), `export const auth = 'public';\nexport const params = { type: 'object', properties: { n: { type: 'integer' } } };\nexport function invoke(_ctx: unknown, p: { n?: number }) { return p.n ?? ${i}; }\n`);
  }
  const once = async (): Promise<number> => {
    const started = performance.now();
    const server = await startServer([join(ROOT, 'bin/simpleapi.js'), 'serve', '--port=0', `--methods-dir=${dir}`, '--log-level=info', ...NO_RATE_LIMIT], '0');
    const ms = performance.now() - started;
    server.proc.kill('SIGTERM');
    await new Promise((r) => server.proc.once('exit', r));
    return ms;
  };
  const cold = await once();
  return again ? once() : cold;
}

/** ns per dispatch of one call with N methods registered, in-process (median of batches). */
function dispatchScale(): Promise<{ small: number; large: number }> {
  const script = join(ROOT, 'bench/dispatch-scale.ts');
  const out = execFileSync(process.execPath, [join(ROOT, 'bin/run-ts.js'), script], { cwd: ROOT }).toString();
  return Promise.resolve(JSON.parse(out) as { small: number; large: number });
}

interface MySqlTrips {
  /** Commands on the wire, per call and before the answer. */
  perCall: number;
  beforeAnswer: number;
  /** Statements MariaDB counted (a multi-statement command counts each). */
  statements: number;
  statementsBefore: number;
}

/** Round trips of a v2-signed call on MariaDB: commands sent, and statements the database counted. */
function mysqlRoundTrips(): MySqlTrips | null {
  if (MYSQL_URL === '') return null;
  const out = execFileSync(process.execPath, [join(ROOT, 'bin/run-ts.js'), join(ROOT, 'bench/mysql-round-trips.ts')], { cwd: ROOT }).toString();
  return JSON.parse(out) as MySqlTrips;
}

interface MongoTrips {
  /** Commands the driver sent, per call, and before the answer. */
  perCall: number;
  beforeAnswer: number;
  /** Times a call waited on the database before its answer (commands sent together wait once). */
  inSequence: number;
  byCommand: Record<string, number>;
}

/**
 * Round trips of a v2-signed call on MongoDB (FerretDB here): as this server counts, and as on a
 * MongoDB whose updates are atomic (the rate limiter's count in the database, in the claim's command).
 */
function mongoRoundTrips(): { served: MongoTrips; atomic: MongoTrips } | null {
  if (MONGODB_URL === '') return null;
  const out = execFileSync(process.execPath, [join(ROOT, 'bin/run-ts.js'), join(ROOT, 'bench/mongo-round-trips.ts')], { cwd: ROOT }).toString();
  return JSON.parse(out) as { served: MongoTrips; atomic: MongoTrips };
}

async function dropMySqlBenchDb(): Promise<void> {
  const { createConnection } = await import('mysql2/promise');
  const { parseMySqlUrl } = await import('../src/store/mysql.ts');
  const { database: _db, ...server } = parseMySqlUrl(MYSQL_URL, '');
  const conn = await createConnection(server);
  await conn.query(`DROP DATABASE IF EXISTS \`${MYSQL_BENCH_DB}\``);
  await conn.end();
}

/** µs per insert before and after the oldest entries expire: nonces, and a full rate-limit counter. */
function expiryChurn(): { what: string; before: number; after: number }[] {
  const out = execFileSync(process.execPath, [join(ROOT, 'bin/run-ts.js'), join(ROOT, 'bench/expiry-churn.ts'), '--json'], { cwd: ROOT }).toString();
  return JSON.parse(out) as { what: string; before: number; after: number }[];
}

function sessionMemory(): { bytesPerSession: number } {
  const out = execFileSync(process.execPath, ['--expose-gc', join(ROOT, 'bin/run-ts.js'), join(ROOT, 'bench/session-memory.ts')], { cwd: ROOT }).toString();
  return JSON.parse(out) as { bytesPerSession: number };
}

const fmt = (n: number, digits = 1) => n.toFixed(digits);

async function main(): Promise<void> {
  const started = new Date();
  process.stderr.write(`simpleapi bench: ${ROUNDS} rounds of ${SECONDS} s per server, ${CONNECTIONS} connections, ${cpus().length} cores\n`);
  const { rows, results, notes, many, paired } = await throughput();
  // NaN for a row BENCH_ONLY left out: its ratios and targets then read NaN rather than failing.
  const cpuOf = (name: string) => { const r = results.get(name); return r === undefined ? Number.NaN : median(r.cpuUs); };
  const raw = cpuOf(rows[0]!.name);
  const jayson = cpuOf('jayson (JSON-RPC 2.0 over HTTP)');
  const jsonrpc2 = cpuOf('json-rpc-2.0 on node:http');

  const lines: string[] = [];
  lines.push(`| server | req/s (median) | p50 ms | p99 ms | server CPU us/req | busy | vs raw | vs jayson | failed |`);
  lines.push(`|---|---:|---:|---:|---:|---:|---:|---:|---:|`);
  for (const row of rows) {
    const m = results.get(row.name)!;
    const cpu = median(m.cpuUs);
    lines.push(`| ${row.name} | ${fmt(median(m.rps), 0)} | ${fmt(median(m.p50))} | ${fmt(median(m.p99))} | ${fmt(cpu)} | ${fmt(median(m.busy) * 100, 0)}% | ${fmt(cpu / raw, 2)}x | ${fmt(cpu / jayson, 2)}x | ${m.failures} |`);
  }

  const manyLines: string[] = [];
  if (many.size > 0) {
    manyLines.push(`| ${MANY} keep-alive connections | req/s (median) | p50 ms | p99 ms | time to answer every connection once | failed |`, '|---|---:|---:|---:|---:|---:|');
    for (const [name, m] of many) manyLines.push(`| ${name} | ${fmt(median(m.rps), 0)} | ${fmt(median(m.p50))} | ${fmt(median(m.p99))} | ${fmt(median(m.connectMs) / 1000, 2)} s | ${m.failures} |`);
  }

  const pairLines: string[] = [];
  if (paired.size > 0) {
    pairLines.push('| loaded together: A / B | ratio (median) | each round | A us/req | B us/req |', '|---|---:|---|---:|---:|');
    for (const [name, m] of paired) {
      const spread = [...m.ratio].sort((a, b) => a - b);
      pairLines.push(`| ${name} | ${fmt(median(m.ratio), 3)}x | ${fmt(spread[0]!, 2)}-${fmt(spread[spread.length - 1]!, 2)} | ${fmt(median(m.a))} | ${fmt(median(m.b))} |`);
    }
  }
  const pairRatio = (name: string) => {
    const m = paired.get(name);
    return m === undefined ? Number.NaN : median(m.ratio);
  };

  process.stderr.write('scale checks...\n');
  const startup = [10, 1000, 5000].map((n) => n);
  const startupMs: number[] = [];
  for (const n of startup) startupMs.push(await startupWith(n));
  const warm1000 = await startupWith(1000, true);
  const scale = await dispatchScale();
  const memory = sessionMemory();
  const churn = expiryChurn();
  const worstChurn = Math.max(...churn.map((c) => c.after / c.before));
  const roundTrips = mysqlRoundTrips();
  const mongoTrips = mongoRoundTrips();

  const targets: [string, boolean, string][] = [];
  const simpleCpu = cpuOf('simpleapi echo, simple envelope');
  const rpcCpu = cpuOf('simpleapi echo, JSON-RPC');
  const signedCpu = cpuOf('simpleapi v2-signed session call, embedded store');
  const keptCpu = cpuOf('simpleapi v2-signed session call, embedded store, outcomes kept for retries (own server)');
  const unkeptCpu = cpuOf('simpleapi v2-signed session call, embedded store, outcomes not kept (own server, --no-keep-outcomes)');
  // Judged on the pairs loaded together; the one-after-the-other table above gives the microseconds.
  const simpleVsBest = pairRatio('echo, simple envelope, at warn / json-rpc-2.0');
  const rpcVsBest = pairRatio('echo, JSON-RPC, at warn / json-rpc-2.0');
  const rpcVsJayson = pairRatio('echo, JSON-RPC, at warn / jayson');
  const logCost = pairRatio('echo, JSON-RPC, at info (a log line per request) / the same at warn (twin servers)');
  const signedVsJayson = pairRatio('v2-signed call, embedded store, at info / jayson');
  const metricsRpc = pairRatio('echo, JSON-RPC, --metrics / without (twin servers)');
  const metricsSigned = pairRatio('v2-signed call, embedded store, --metrics / without (twin servers)');
  const keptCost = pairRatio('v2-signed call, outcomes kept for retries / not kept');
  targets.push(['echo, simple envelope, at warn: CPU/req <= json-rpc-2.0 (the best JSON-RPC peer), loaded together', simpleVsBest <= 1, `${fmt(simpleVsBest, 3)}x json-rpc-2.0`]);
  targets.push(['echo, JSON-RPC, at warn: CPU/req <= json-rpc-2.0 and <= jayson, loaded together', rpcVsBest <= 1 && rpcVsJayson <= 1, `${fmt(rpcVsBest, 3)}x json-rpc-2.0, ${fmt(rpcVsJayson, 3)}x jayson`]);
  targets.push(['a log line per request (info, the default) costs < 15% more than warn (twin servers, loaded together)', logCost <= 1.15, `${fmt(logCost, 3)}x`]);
  targets.push(['v2-signed session call (embedded, at info): CPU/req <= 1.33x jayson, loaded together', signedVsJayson <= 1.33, `${fmt(signedVsJayson, 2)}x`]);
  targets.push(['--metrics on: CPU/req <= 1.05x off (echo, JSON-RPC; twin servers, loaded together)', metricsRpc <= 1.05, `${fmt(metricsRpc, 3)}x`]);
  targets.push(['--metrics on: CPU/req <= 1.05x off (v2-signed, embedded; twin servers, loaded together)', metricsSigned <= 1.05, `${fmt(metricsSigned, 3)}x`]);
  targets.push(['v2-signed call with outcomes kept for retries: CPU/req within 10% of not kept, loaded together', keptCost <= 1.1, `${fmt(keptCost, 3)}x`]);
  targets.push(['start-up with 1,000 method files < 3 s (cold)', startupMs[1]! < 3000, `${fmt(startupMs[1]! / 1000, 2)} s (warm: ${fmt(warm1000 / 1000, 2)} s)`]);
  targets.push(['dispatch with 10,000 methods within 10% of 10', scale.large <= scale.small * 1.1, `${fmt(scale.small, 0)} ns vs ${fmt(scale.large, 0)} ns`]);
  if (roundTrips !== null) {
    targets.push(['MariaDB: database round trips per v2-signed session call before the answer <= 2', roundTrips.beforeAnswer <= 2, `${fmt(roundTrips.beforeAnswer, 2)} (and ${fmt(roundTrips.perCall - roundTrips.beforeAnswer, 2)} after it: the kept outcome)`]);
  }
  if (mongoTrips !== null) {
    const { served, atomic } = mongoTrips;
    targets.push(['MongoDB (FerretDB): database round trips per v2-signed session call before the answer <= 2', served.inSequence <= 2, `${fmt(served.inSequence, 2)} (${fmt(served.beforeAnswer, 2)} commands; and ${fmt(served.perCall - served.beforeAnswer, 2)} after it: the kept outcome)`]);
    targets.push(['MongoDB with atomic updates (the rate-limit count in the database): round trips in sequence before the answer <= 2', atomic.inSequence <= 2, `${fmt(atomic.inSequence, 2)} (${fmt(atomic.beforeAnswer, 2)} commands: the count rides in the nonce's claim's command, after the claim, so a replay counts nothing)`]);
  }
  targets.push(['embedded store: < 1.5 KB resident per idle session at 100,000', memory.bytesPerSession < 1536, `${fmt(memory.bytesPerSession, 0)} B`]);
  targets.push(['an insert once the oldest entries expire (nonces, a full rate-limit counter) <= 4x one before any did', worstChurn <= 4, `${fmt(worstChurn, 1)}x at worst`]);

  const report = [
    `## simpleapi bench, ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `Command: \`npm run bench\` (BENCH_ROUNDS=${ROUNDS}, BENCH_SECONDS=${SECONDS}${MONGODB_URL ? ', MONGODB_URL set' : ''}${MYSQL_URL ? ', MYSQL_URL set' : ''}); ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}); Node ${process.version}.`,
    `simpleapi runs with the node flags of \`npm start\` (${startFlags(ROOT).join(' ') || 'none'}), the peers with node's defaults. Servers pinned to core 0, ${DRIVER_NAME} (${CONNECTIONS} keep-alive connections) to core 1; --workers=2 and its load share both cores. Medians of ${ROUNDS} interleaved rounds; CPU is the server's user+system time per request (per entry for the batch); busy is the share of its core the server used (of both for --workers=2): near 100%, the load kept it busy and its CPU per request is what it costs when it has work waiting. The two "own server" rows run twice a round, A B ... B A, and are compared with each other.`,
    '',
    ...lines,
    '',
    ...(pairLines.length > 0
      ? [
          `The targets are judged on these pairs: both servers of a pair loaded at the same time (both on core 0, a load generator each on core 1), ${ROUNDS} rounds of ${SECONDS} s; one after the other, as above, two identical servers read 0.71x to 1.81x of each other on a shared machine, loaded together 0.96x to 1.01x. "each round" is the lowest and highest ratio of a round.`,
          '',
          ...pairLines,
          '',
        ]
      : []),
    ...(manyLines.length > 0 ? [...manyLines, '', `The ${MANY}-connection table: bench/hold.mjs from core 1, the same ${ROUNDS} interleaved rounds of ${SECONDS} s; every connection is answered once before the timed part (a thousand connects at once on a busy Node 20 process queue in the kernel, see bench/hold.mjs).`, ''] : []),
    '| scale check | result |',
    '|---|---|',
    ...startup.map((n, i) => `| start-up with ${n} method files (cold: new files) | ${fmt(startupMs[i]! / 1000, 2)} s |`),
    `| start-up with 1000 method files again (warm: a restart without edits) | ${fmt(warm1000 / 1000, 2)} s |`,
    `| one dispatch, 10 methods registered | ${fmt(scale.small, 0)} ns |`,
    `| one dispatch, 10,000 methods registered | ${fmt(scale.large, 0)} ns |`,
    `| embedded store, 100,000 idle sessions | ${fmt(memory.bytesPerSession, 0)} B resident per session |`,
    ...churn.map((c) => `| ${c.what}: after the oldest expire / before (bench/expiry-churn.ts) | ${fmt(c.after, 2)} / ${fmt(c.before, 2)} us: ${fmt(c.after / c.before, 1)}x |`),
    ...(roundTrips === null ? [] : [`| MariaDB, v2-signed session call | ${fmt(roundTrips.beforeAnswer, 2)} database round trips before the answer, ${fmt(roundTrips.perCall, 2)} in all (the outcome kept for retries is written after the answer): commands on the wire; MariaDB counted ${fmt(roundTrips.statementsBefore, 2)} statements before the answer, ${fmt(roundTrips.statements, 2)} in all |`]),
    ...(mongoTrips === null
      ? []
      : ([['MongoDB (FerretDB), v2-signed session call', mongoTrips.served], ['MongoDB with atomic updates (FerretDB, updates one at a time: the path of a real MongoDB), v2-signed session call', mongoTrips.atomic]] as const).map(
          ([what, t]) => `| ${what} | ${fmt(t.inSequence, 2)} database round trips in sequence before the answer (${fmt(t.beforeAnswer, 2)} commands), ${fmt(t.perCall, 2)} commands in all: ${Object.entries(t.byCommand).map(([name, n]) => `${name} ${fmt(n, 2)}`).join(', ')} (sent by the driver) |`,
        )),
    '',
    '| target | met | measured |',
    '|---|---|---|',
    ...targets.map(([what, met, measured]) => `| ${what} | ${met ? 'met' : 'NOT met'} | ${measured} |`),
    ...(notes.length > 0 ? ['', ...notes.map((n) => `Note: ${n}`)] : []),
    '',
  ].join('\n');
  process.stdout.write(`${report}\n`);
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  const stamp = started.toISOString().slice(0, 19).replace(/[:T]/g, '-');
  writeFileSync(join(ROOT, `bench/results/${stamp}.md`), report);
  appendFileSync(
    join(ROOT, 'bench/results/history.tsv'),
    `${started.toISOString()}\traw=${fmt(raw)}\tjayson=${fmt(jayson)}\tjson-rpc-2.0=${fmt(jsonrpc2)}\tsimple=${fmt(simpleCpu)}\trpc=${fmt(rpcCpu)}\tsigned=${fmt(signedCpu)}\tsigned-kept=${fmt(keptCpu)}\tsigned-unkept=${fmt(unkeptCpu)}\tus/req\ttogether: simple/json-rpc-2.0=${fmt(simpleVsBest, 3)}x\trpc/json-rpc-2.0=${fmt(rpcVsBest, 3)}x\tinfo/warn=${fmt(logCost, 3)}x\tsigned/jayson=${fmt(signedVsJayson, 3)}x\tmetrics-rpc=${fmt(metricsRpc, 3)}x\tmetrics-signed=${fmt(metricsSigned, 3)}x\tstartup1000=${fmt(startupMs[1]! / 1000, 2)}s\tsession=${fmt(memory.bytesPerSession, 0)}B\n`,
  );
}

await main();
