/**
 * `npm run abuse`: replays each attack of the hardening issue (13) against a real server on the
 * embedded store (a child process, the shipped methods), beside a baseline in the same run, and
 * prints for each: a legitimate client's p50/p99 without and under the attack, the server's RSS
 * growth during it, and what the attacker got (status counts, refusals, cut connections).
 *
 * A benchmark, not a test: it asserts nothing. Loops are bounded (ABUSE_SECONDS per attack, 6 by
 * default; every attacker loop stops then), and the only target is 127.0.0.1. The attacker
 * connects from 127.0.0.2, .3, … (one per attack) and the legitimate client from 127.0.0.1 (all
 * loopback), so per-address limits tell them apart as they would two machines.
 */
import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SECONDS = Number(process.env.ABUSE_SECONDS ?? 6);
const BASELINE_SECONDS = Number(process.env.ABUSE_BASELINE_SECONDS ?? 3);
const LEGIT = '127.0.0.1';
/** Each attack comes from an address of its own (127.0.0.2, .3, …): one's 429s do not carry into the next. */
const attackerOf = (n: number) => `127.0.0.${n + 1}`;
let ATTACKER = attackerOf(1);

interface Answer {
  status: number;
  text: string;
  headers: Record<string, string | string[] | undefined>;
}
interface Grant {
  user_id: string;
  session_id: string;
  session_key: string;
}

const agents = new Map<string, Agent>();
const agentFor = (from: string) => {
  let agent = agents.get(from);
  if (agent === undefined) agents.set(from, (agent = new Agent({ keepAlive: true, maxSockets: 64, localAddress: from })));
  return agent;
};

let port = 0;
function post(body: string, from: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((done) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/', agent: agentFor(from), headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
      res.on('error', () => done({ status: -1, text: '', headers: {} }));
    });
    req.on('error', () => done({ status: -1, text: '', headers: {} }));
    req.end(body);
  });
}

function signed(grant: Grant, body: string, from: string): Promise<Answer> {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const nonce = randomBytes(16).toString('base64url');
  const mac = createHmac('sha256', Buffer.from(grant.session_key, 'base64url')).update(`simpleapi-v2\n${timestamp}\n${nonce}\n`).update(body).digest('hex');
  return post(body, from, { 'x-session-id': grant.session_id, 'x-timestamp': timestamp, 'x-nonce': nonce, 'x-hmac': mac });
}

const call = (method: string, parameters: unknown) => JSON.stringify({ method, parameters });
const rpcBatch = (n: number, method: string, params: (i: number) => unknown) => JSON.stringify(Array.from({ length: n }, (_, i) => ({ jsonrpc: '2.0', method, params: params(i), id: i })));

async function account(userId: string, from = LEGIT): Promise<Grant> {
  const a = await post(call('account.create', { user_id: userId, password: 'password-one' }), from);
  if (a.status !== 200) throw new Error(`account.create ${userId}: ${a.status} ${a.text.slice(0, 200)}`);
  return JSON.parse(a.text) as Grant;
}

let serverPid = 0;
const rssMiB = () => Number(readFileSync(`/proc/${serverPid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)![1]) / 1024;

/** Outcomes the attacker saw, by status (or by what happened to its connection). */
class Tally {
  readonly counts = new Map<string, number>();
  add(what: string | number, n = 1): void {
    this.counts.set(String(what), (this.counts.get(String(what)) ?? 0) + n);
  }
  /** Statuses of a batch answer's entries: the HTTP status, and each entry's error code or ok. */
  batch(answer: Answer): void {
    if (answer.status !== 200) return this.add(answer.status);
    try {
      for (const e of JSON.parse(answer.text) as { error?: { data?: { code?: string } } }[]) this.add(e.error === undefined ? 'entry ok' : `entry ${e.error.data?.code ?? 'error'}`);
    } catch {
      this.add('unparsable');
    }
  }
  toString(): string {
    return [...this.counts].map(([k, v]) => `${k}: ${v}`).join(', ') || 'nothing';
  }
}

const pct = (sorted: number[], p: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!);

/**
 * The legitimate client: a call every 20 ms at most (50/s, within the default per-address limit
 * of 6000 a minute) for `seconds`; latencies in ms.
 */
async function legit(probe: () => Promise<Answer>, seconds: number): Promise<{ p50: number; p99: number; n: number; failed: number }> {
  const times: number[] = [];
  let failed = 0;
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    const t = performance.now();
    const a = await probe();
    times.push(performance.now() - t);
    if (a.status < 200 || a.status >= 300) failed++;
    const left = 20 - (performance.now() - t);
    if (left > 0) await new Promise((r) => setTimeout(r, left));
  }
  times.sort((a, b) => a - b);
  return { p50: pct(times, 50), p99: pct(times, 99), n: times.length, failed };
}

/** Runs `attack` (which must stop when `until()` says so) beside the legitimate client. */
async function scenario(name: string, attack: (until: () => boolean, tally: Tally) => Promise<void>, probe: () => Promise<Answer>, note = ''): Promise<string> {
  const base = await legit(probe, BASELINE_SECONDS);
  const rssBefore = rssMiB();
  const tally = new Tally();
  const end = Date.now() + SECONDS * 1000;
  const until = () => Date.now() < end;
  const attacking = attack(until, tally).catch((err: Error) => tally.add(`attack error ${err.message}`));
  const under = await legit(probe, SECONDS);
  await attacking;
  const rssAfter = rssMiB();
  const f = (n: number) => (Number.isNaN(n) ? '-' : n < 10 ? n.toFixed(2) : n.toFixed(0));
  return [
    `## ${name}`,
    `  legit p50/p99: ${f(base.p50)}/${f(base.p99)} ms alone (${base.n} calls) -> ${f(under.p50)}/${f(under.p99)} ms under attack (${under.n} calls, ${under.failed} not 2xx)`,
    `  server RSS: ${rssBefore.toFixed(0)} -> ${rssAfter.toFixed(0)} MiB (${rssAfter - rssBefore >= 0 ? '+' : ''}${(rssAfter - rssBefore).toFixed(0)})`,
    `  attacker got: ${tally}`,
    ...(note === '' ? [] : [`  ${note}`]),
  ].join('\n');
}

async function main(): Promise<void> {
  port = 20000 + Math.floor(Math.random() * 20000);
  const proc = spawn(process.execPath, [join(ROOT, 'bin/simpleapi.js'), 'serve', `--port=${port}`, '--host=127.0.0.1', `--methods-dir=${join(ROOT, 'methods')}`, '--log-level=info'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  // The longest log line that names the 1 MB method of attack 6a: what one such request costs the log.
  let longestNamed = 0;
  let partial = '';
  proc.stdout!.on('data', (c: Buffer) => {
    const lines = (partial + c.toString('utf8')).split('\n');
    partial = lines.pop()!;
    for (const line of lines) if (line.includes('"xxxxxxxx')) longestNamed = Math.max(longestNamed, Buffer.byteLength(line));
  });
  serverPid = proc.pid!;
  try {
    for (let i = 0; ; i++) {
      const up = await post(call('echo', 1), LEGIT).then((a) => a.status === 200);
      if (up) break;
      if (i > 100) throw new Error('the server did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    const echo = () => post(call('echo', { hello: 'world' }), LEGIT);
    const out: string[] = [`abuse run ${new Date().toISOString()}: ${SECONDS} s per attack, ${BASELINE_SECONDS} s baseline before each; server on the embedded store with default limits; Node ${process.version}`];

    // 1. Streams that never read: raw sockets that send the request and never read the answer.
    out.push(
      await scenario('1. 40 non-reading streams (clock.ticks at 10 ms) + 40 at 60 s intervals', async (until, tally) => {
        const sockets: ReturnType<typeof connect>[] = [];
        const body = (ms: number) => call('clock.ticks', { intervalMs: ms, count: 100000 });
        for (let i = 0; i < 80; i++) {
          const s = connect({ host: '127.0.0.1', port, localAddress: ATTACKER });
          s.on('error', () => {});
          const b = body(i < 40 ? 10 : 60000);
          s.write(`POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(b)}\r\n\r\n${b}`);
          let first = true;
          s.once('data', (d: Buffer) => {
            if (first) tally.add(`stream ${d.toString('latin1').slice(9, 12)}`);
            first = false;
            s.pause(); // and never read again
          });
          s.on('close', () => tally.add('connection closed by server'));
          sockets.push(s);
        }
        while (until()) await new Promise((r) => setTimeout(r, 100));
        for (const s of sockets) s.destroy();
      }, echo, 'the server cuts a stream whose client has not read for --stream-idle-timeout (30 s), so within this run unread data stays bounded by the socket buffers'),
    );

    ATTACKER = attackerOf(2);
    // 2. Failed logins: three connections of batches of 100 wrong logins for one user.
    await account('victim');
    out.push(
      await scenario('2. failed logins: 3 connections of batches of 100 wrong logins for one user', async (until, tally) => {
        const batch = rpcBatch(100, 'account.login', () => ({ user_id: 'victim', password: 'wrong-password' }));
        await Promise.all([0, 1, 2].map(async () => {
          while (until()) tally.batch(await post(batch, ATTACKER));
        }));
      }, echo),
    );

    ATTACKER = attackerOf(3);
    // 3. Session state: 40 values of 900 KB, then a batch of 20 prefs.get.
    const hoarder = await account('hoarder', ATTACKER);
    out.push(
      await scenario('3. session state: prefs.set of 900 KB values, then batches of 20 prefs.get', async (until, tally) => {
        for (let i = 0; i < 40 && until(); i++) tally.add(`prefs.set ${(await signed(hoarder, call('prefs.set', { key: `k${i}`, value: 'x'.repeat(900_000) }), ATTACKER)).status}`);
        const gets = rpcBatch(20, 'prefs.get', () => ({}));
        while (until()) {
          const a = await signed(hoarder, gets, ATTACKER);
          tally.add(`prefs.get batch ${a.status} (${(a.text.length / 1024).toFixed(0)} KiB)`);
        }
      }, echo),
    );

    ATTACKER = attackerOf(4);
    // 4. account.create for a taken id: batches of 8, a legitimate login as the probe.
    await account('taken');
    const login = () => post(call('account.login', { user_id: 'victim-2', password: 'password-one' }), LEGIT);
    await account('victim-2');
    out.push(
      await scenario('4. account.create for a taken id: 30 requests of 8 creates at a time, repeated', async (until, tally) => {
        const batch = rpcBatch(8, 'account.create', () => ({ user_id: 'taken', password: 'password-one' }));
        while (until()) {
          const answers = await Promise.all(Array.from({ length: 30 }, () => post(batch, ATTACKER)));
          for (const a of answers) tally.batch(a);
        }
      }, login, 'probe: a legitimate account.login (one scrypt) from another address'),
    );

    ATTACKER = attackerOf(5);
    // 5. Jobs: one user floods reports.slow; another user's 10 ms job is the probe.
    const flooder = await account('flooder', ATTACKER);
    const bystander = await account('bystander');
    const jobProbe = async (): Promise<Answer> => {
      const started = await signed(bystander, call('reports.slow', { steps: 1, stepMs: 10 }), LEGIT);
      const location = String(started.headers.location ?? '');
      if (started.status !== 202 || location === '') return started;
      for (let i = 0; i < 400; i++) {
        const a = await new Promise<Answer>((done) => {
          const timestamp = String(Math.floor(Date.now() / 1000));
          const nonce = randomBytes(16).toString('base64url');
          const mac = createHmac('sha256', Buffer.from(bystander.session_key, 'base64url')).update(`simpleapi-v2\n${timestamp}\n${nonce}\n${location}`).digest('hex');
          request({ host: '127.0.0.1', port, path: location, agent: agentFor(LEGIT), headers: { 'x-session-id': bystander.session_id, 'x-timestamp': timestamp, 'x-nonce': nonce, 'x-hmac': mac } }, (res) => {
            let text = '';
            res.on('data', (c) => (text += c));
            res.on('end', () => done({ status: res.statusCode ?? 0, text, headers: res.headers }));
          }).end();
        });
        if (a.status === 200) return a;
        await new Promise((r) => setTimeout(r, 10));
      }
      return { status: 0, text: 'still queued', headers: {} };
    };
    out.push(
      await scenario('5. job flood: one user sends batches of 100 hour-long reports.slow', async (until, tally) => {
        const batch = rpcBatch(100, 'reports.slow', () => ({ steps: 100, stepMs: 36000 }));
        while (until()) tally.batch(await signed(flooder, batch, ATTACKER));
      }, jobProbe, "probe: another user's 10 ms job, from start to its result at GET /jobs/<id>"),
    );

    // 6. Smaller: a 1 MB method name (log growth), and 1 MB invalid arrays (validation work).
    ATTACKER = attackerOf(6);
    out.push(
      await scenario('6a. 20 requests naming a 1 MB method', async (until, tally) => {
        const body = call('x'.repeat(1_000_000), {});
        for (let i = 0; i < 20 && until(); i++) tally.add((await post(body, ATTACKER)).status);
      }, echo),
    );
    out.push(`  the longest log line naming that method: ${longestNamed} bytes (at the default level info, one request line each; names are cut to 128 characters)`);
    ATTACKER = attackerOf(7);
    out.push(
      await scenario('6b. math.sum with a 1 MB invalid array, 4 connections', async (until, tally) => {
        const body = call('math.sum', Array.from({ length: 250_000 }, () => 'x'));
        await Promise.all([0, 1, 2, 3].map(async () => {
          while (until()) tally.add((await post(body, ATTACKER)).status);
        }));
      }, echo),
    );
    out.push('  nonces: `npm run load` (bench/soak.ts) shows the resident memory level at a sustained signed-call rate');
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    proc.kill('SIGTERM');
    for (const agent of agents.values()) agent.destroy();
  }
}

await main();
