/**
 * `npm run load`: the bounded load and soak runs of the hardening issue, against a server on the
 * embedded store (a child process, as users run it).
 *   1. LOAD_CONNECTIONS (1000) keep-alive connections for LOAD_SECONDS (30 s), each alternating a
 *      public echo and a v2-signed session call: zero errors, zero non-2xx, zero dropped. Every
 *      connection is first answered once, then all load the server together (bench/hold.mjs
 *      says why it is not autocannon here).
 *   2. A soak of SOAK_SECONDS (120 s) at 100 connections, the server's old space capped at
 *      SOAK_HEAP_MIB (192), sampling the server's resident memory
 *      every SOAK_SAMPLE_SECONDS (10 s): the curve is printed. The server must still answer at the
 *      end (with the old space capped, a leak ends in an out-of-memory exit), and the mean of the
 *      last third must stay within 25% of the middle third's: resident memory moves 30-40% with
 *      the collector's sawtooth here, so a tighter bound only measures the collector. The server runs with --hmac-window=20: the
 *      embedded store must remember every nonce for the window (300 s by default, longer than
 *      the soak), and a short window lets the curve reach its level within the run.
 * The rate limits are off: every connection comes from 127.0.0.1, and the soak measures memory.
 * Exits non-zero when either fails. Only 127.0.0.1 is ever a target.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const LOAD_CONNECTIONS = Number(process.env.LOAD_CONNECTIONS ?? 1000);
const LOAD_SECONDS = Number(process.env.LOAD_SECONDS ?? 30);
const SOAK_SECONDS = Number(process.env.SOAK_SECONDS ?? 120);
const SAMPLE_SECONDS = Number(process.env.SOAK_SAMPLE_SECONDS ?? 10);
const SOAK_HEAP_MIB = Number(process.env.SOAK_HEAP_MIB ?? 192);
const PAYLOAD = { message: 'hello world, this is a load payload', n: 12345, list: [1, 2, 3] };

function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(line?.replace(/\D+/g, '') ?? 0) / 1024;
}

/**
 * The server logs at warn: at info its request lines fill the pipe to this process, which is not
 * what is under test (with them, a few requests of a 30 s run waited over 20 s; see the issue note).
 * Readiness is polled on /health.
 */
async function startServer(): Promise<{ pid: number; url: string; stop: () => void }> {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const proc = spawn(process.execPath, [join(ROOT, 'bin/simpleapi.js'), 'serve', `--port=${port}`, `--methods-dir=${join(ROOT, 'bench/methods')}`, '--log-level=warn', '--hmac-window=20', '--rate-limit-address=0', '--rate-limit-user=0', '--max-connections-per-address=0', `--max-connections=${LOAD_CONNECTIONS + 100}`], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
    // A bounded old space: V8 otherwise grows its heap for minutes before a full collection (on
    // this 24 GiB machine), and a two-minute curve cannot tell that sawtooth from a leak. With a
    // cap, a leak ends in an out-of-memory exit, which fails the run.
    env: { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --max-old-space-size=${SOAK_HEAP_MIB}`.trim() },
  });
  const url = `http://127.0.0.1:${port}/`;
  for (let i = 0; i < 100; i++) {
    if (proc.exitCode !== null) throw new Error(`server exited with ${proc.exitCode}`);
    const up = await fetch(new URL('/health', url)).then((r) => r.status === 200, () => false);
    if (up) return { pid: proc.pid!, url, stop: () => proc.kill('SIGTERM') };
    await new Promise((r) => setTimeout(r, 100));
  }
  proc.kill('SIGKILL');
  throw new Error('the server did not answer /health within 10 s');
}

interface LoadResult {
  requests: number;
  rps: number;
  p99: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  resets: number;
  connectMs: number;
}

function load(job: Record<string, unknown>): Promise<LoadResult> {
  return new Promise((done, fail) => {
    const proc = spawn(process.execPath, [join(ROOT, 'bench/hold.mjs'), JSON.stringify(job)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.on('data', (c) => (out += c));
    proc.on('exit', (code) => (code === 0 ? done(JSON.parse(out) as LoadResult) : fail(new Error(`load exited ${code}`))));
  });
}

const server = await startServer();
let failed = false;
try {
  const grant = (await (
    await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ method: 'account.create', parameters: { user_id: 'load-test', password: 'load-test-password' } }) })
  ).json()) as { session_id: string; session_key: string };
  const job = {
    url: server.url,
    body: JSON.stringify({ method: 'secure_echo', parameters: PAYLOAD }),
    mixed: JSON.stringify({ method: 'echo', parameters: PAYLOAD }),
    signed: { session_id: grant.session_id, session_key: grant.session_key },
  };

  console.log(`load: ${LOAD_CONNECTIONS} keep-alive connections for ${LOAD_SECONDS} s, public and signed calls alternating`);
  const heavy = await load({ ...job, connections: LOAD_CONNECTIONS, duration: LOAD_SECONDS });
  const heavyOk = heavy.errors === 0 && heavy.non2xx === 0 && heavy.timeouts === 0 && heavy.resets === 0;
  console.log(`  all ${LOAD_CONNECTIONS} connections answered once within ${(heavy.connectMs / 1000).toFixed(1)} s; then`);
  console.log(`  ${heavy.requests} requests, ${heavy.rps.toFixed(0)} req/s, p99 ${heavy.p99} ms; errors ${heavy.errors}, non-2xx ${heavy.non2xx}, timeouts ${heavy.timeouts}, resets ${heavy.resets}: ${heavyOk ? 'ok' : 'FAILED'}`);
  failed ||= !heavyOk;

  console.log(`soak: 100 connections for ${SOAK_SECONDS} s, resident memory every ${SAMPLE_SECONDS} s`);
  const curve: number[] = [rssMiB(server.pid)];
  const sampler = setInterval(() => curve.push(rssMiB(server.pid)), SAMPLE_SECONDS * 1000);
  const soak = await load({ ...job, connections: 100, duration: SOAK_SECONDS });
  clearInterval(sampler);
  curve.push(rssMiB(server.pid));
  curve.forEach((mib, i) => console.log(`  t=${String(Math.min(i * SAMPLE_SECONDS, SOAK_SECONDS)).padStart(4)} s  ${mib.toFixed(1).padStart(7)} MiB  ${'#'.repeat(Math.round(mib / 4))}`));
  const third = Math.max(1, Math.floor(curve.length / 3));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const middle = mean(curve.slice(third, 2 * third));
  const last = mean(curve.slice(2 * third));
  const levelled = last <= middle * 1.25;
  const alive = await fetch(new URL('/health', server.url)).then((r) => r.status === 200, () => false);
  const soakOk = soak.errors === 0 && soak.non2xx === 0 && soak.timeouts === 0 && alive;
  if (!alive) console.log('  the server no longer answers /health');
  console.log(`  ${soak.requests} requests; errors ${soak.errors}, non-2xx ${soak.non2xx}; memory: middle third mean ${middle.toFixed(1)} MiB, last third mean ${last.toFixed(1)} MiB: ${levelled ? 'levelled off' : 'STILL RISING'}`);
  failed ||= !soakOk || !levelled;
} finally {
  server.stop();
}
console.log(failed ? 'load: FAILED' : 'load: passed');
process.exitCode = failed ? 1 : 0;
