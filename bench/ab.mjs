// A/B of whole servers: CPU microseconds per request of simpleapi checkouts (or one checkout with
// different flags), measured side by side: each server pinned to core 0, its load on core 1,
// ROUNDS interleaved rounds of SECONDS s, CPU from /proc/<pid>/stat. Used to show what a change
// costs against the last release without the whole `npm run bench`.
//   node bench/ab.mjs '[{"name":"release","cwd":"/path/to/old/checkout","args":[]},{"name":"now","cwd":".","args":["--rate-limit-address=1000000000"]}]'
// A peer from bench/servers is {"name":"jayson","script":"bench/servers/jayson.mjs"}. "node": [flags]
// are given to node itself (V8's, such as --max-semi-space-size=32); a checkout's default is the
// flags of its own `npm start`, a peer's none.
// A server's own "body" replaces BODY for it; "signed": true loads it with v2-signed calls of
// secure_echo in a session it creates first (bench/hold.mjs signs them as it sends them).
// The load is bench/hold.mjs, as in `npm run bench`; DRIVER=autocannon loads with bench/load.mjs
// instead, which rebuilds every pre-signed request and cannot keep a signed server busy. "busy" in
// the output says how much of its core each server used (well under 100% alone: the figure
// carries idle wake-ups).
// BODY (default: a JSON-RPC echo), ROUNDS (3), SECONDS (4). Only 127.0.0.1 is a target. Prints each
// server's median and, for every server after the first, the median of its per-round ratios to the first.
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
const run = async (cmd, args) => (await promisify(execFile)(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 24 })).stdout;
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { createSession, SIGNED_BODY } from './sign-v2.mjs';
import { NO_RATE_LIMIT, startFlags } from './serve-args.mjs';
const connects = (port) => new Promise((done) => { const s = connect(port, '127.0.0.1', () => { s.destroy(); done(true); }); s.on('error', () => done(false)); });
const body = process.env.BODY ?? '{"jsonrpc":"2.0","method":"echo","params":{"a":1,"b":[1,2,3],"c":"hello"},"id":1}';
const configs = JSON.parse(process.argv[2]); // [{name, cwd, args}]
const tick = 100;
/** A process's CPU seconds so far: user and kernel together, and the kernel's part. */
function times(pid) { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return { cpu: (Number(f[11]) + Number(f[12])) / tick, sys: Number(f[12]) / tick }; }
async function start(c, i) {
  // A port of our choosing and /health polled: at --log-level=warn there is no listening line to read.
  const port = 41000 + (process.pid % 1000) * 10 + i;
  // `script`: a peer from bench/servers (it listens on PORT); otherwise a simpleapi checkout at `cwd`.
  const argv = c.script !== undefined ? [c.script] : ['bin/simpleapi.js', 'serve', `--port=${port}`, '--methods-dir=bench/methods', '--log-level=info', ...NO_RATE_LIMIT, ...c.args];
  const proc = spawn('taskset', ['-c', '0', 'node', ...(c.node ?? (c.script !== undefined ? [] : startFlags(c.cwd ?? '.'))), ...argv], { cwd: c.cwd ?? '.', env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'inherit'] });
  proc.stdout.resume();
  const url = `http://127.0.0.1:${port}/`;
  for (let tries = 0; tries < 200; tries++) {
    // A peer has no /health (json-rpc-2.0's dies of a GET): a connection accepted will do.
    const up = c.script !== undefined ? await connects(port) : await fetch(new URL('/health', url)).then((r) => r.ok, () => false);
    if (up) return { proc, url };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${c.name} did not answer /health within 20 s`);
}
const servers = [];
for (const [i, c] of configs.entries()) {
  const s = { c, ...(await start(c, i)), us: [] };
  s.body = c.body ?? (c.signed ? SIGNED_BODY : body);
  if (c.signed) s.signed = await createSession(s.url, `ab-${process.pid}-${i}`);
  servers.push(s);
}
// Not execFileSync: this process must keep reading the servers' logs while they are loaded, or a
// pipe left full stalls their writes and the log line looks free.
const driver = process.env.DRIVER === 'autocannon' ? 'bench/load.mjs' : 'bench/hold.mjs';
const drive = (s, seconds) => run('taskset', ['-c', '1', 'node', driver, JSON.stringify({ url: s.url, body: s.body, connections: 10, duration: Number(seconds), signed: s.signed })]);
/** Loads the group's servers at once (a warm-up, then SECONDS) and records each one's CPU us per request. */
async function measure(group) {
  await Promise.all(group.map((s) => drive(s, 1)));
  const before = group.map((s) => times(s.proc.pid));
  const wall = performance.now();
  const outs = await Promise.all(group.map((s) => drive(s, process.env.SECONDS ?? 4)));
  group.forEach((s, i) => {
    const after = times(s.proc.pid);
    // The server's share of its core: well under 100% (alone on it) means the load did not keep it
    // busy, and an idle server pays a wake-up per request that reads as its own cost.
    (s.busy ??= []).push((after.cpu - before[i].cpu) / ((performance.now() - wall) / 1000));
    const r = JSON.parse(outs[i]);
    if (r.non2xx + r.errors > 0) console.error(`${s.c.name}: ${r.non2xx} answers not 2xx, ${r.errors} errors: its figure is not a served call's cost`);
    (s.sys ??= []).push((after.sys - before[i].sys) / (after.cpu - before[i].cpu));
    s.us.push(((after.cpu - before[i].cpu) * 1e6) / r.requests);
  });
}
for (let round = 0; round < Number(process.env.ROUNDS ?? 3); round++) {
  // TOGETHER=1: all servers loaded at once, sharing core 0: whatever slows the machine down slows
  // them alike, so their ratio holds where back-to-back runs swing.
  if (process.env.TOGETHER === '1') await measure(servers);
  else for (const s of servers) await measure([s]);
}
// Each round measures every server once, back to back, so the ratio within a round cancels the
// machine's drift between rounds; its median is steadier than the ratio of the medians.
const sorted = (xs) => [...xs].sort((a, b) => a - b);
const median = (xs) => sorted(xs)[Math.floor(xs.length / 2)];
const ratios = servers.map((s) => sorted(s.us.map((us, i) => us / servers[0].us[i])));
for (const [i, s] of servers.entries()) if (i > 0) console.log(`${s.c.name} / ${servers[0].c.name}: ${median(ratios[i]).toFixed(3)}x (median of per-round ratios: ${ratios[i].map((x) => x.toFixed(2)).join(', ')})`);
/** The most resident memory the process held (VmHWM), in MB. */
const peakMb = (pid) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
for (const s of servers) { console.log(`${s.c.name.padEnd(40)} ${median(s.us).toFixed(1)} us/req  (${sorted(s.us).map((x) => x.toFixed(1)).join(', ')}; in the kernel: ${(100 * median(s.sys)).toFixed(0)}%, busy: ${(100 * median(s.busy)).toFixed(0)}% of a core, peak resident ${peakMb(s.proc.pid).toFixed(0)} MB)`); s.proc.kill(); }
