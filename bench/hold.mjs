// Many keep-alive connections, every one of them held and busy: the driver of `npm run load`.
// argv[2]: JSON { url, connections, duration, body, mixed?, signed?: { session_id, session_key }, timeout? }
// With `mixed`, each connection alternates a public request (that body) and a signed one (`body`).
// Prints { requests, rps, p50, p99, non2xx, errors, timeouts, resets, connectMs } as JSON on stdout.
//
// Why not autocannon, which the side-by-side bench uses: autocannon sends on every connection at
// once, so the first few hundred connections saturate the server before the rest are accepted, and
// Node 20's libuv accepts one connection per turn of a busy event loop (libuv PR #3696): the last
// connections then wait in the kernel's queue for tens of seconds, on a bare node:http server as
// on ours. That measures accept order under a burst, not whether a thousand connections are
// served. Here every connection first gets one answer (the time that takes is printed), then all
// of them load the server together, and a request unanswered for `timeout` seconds counts.
import { connect } from 'node:net';
import { signV2 } from './sign-v2.mjs';

const job = JSON.parse(process.argv[2]);
const target = new URL(job.url);
const port = Number(target.port || 80);
const timeoutMs = (job.timeout ?? 20) * 1000;
const key = job.signed ? Buffer.from(job.signed.session_key, 'base64url') : null;

function request(body, extra = '') {
  return `POST ${target.pathname} HTTP/1.1\r\nhost: ${target.host}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
}
const publicRequest = request(job.mixed ?? job.body);
function signedRequest() {
  const { timestamp, nonce, mac } = signV2(key, job.body);
  return request(job.body, `x-session-id: ${job.signed.session_id}\r\nx-timestamp: ${timestamp}\r\nx-nonce: ${nonce}\r\nx-hmac: ${mac}\r\n`);
}

const counts = { requests: 0, non2xx: 0, errors: 0, timeouts: 0, resets: 0 };
let latencies = new Float64Array(1 << 16);
let measuring = false;
let stopping = false;

function record(ms) {
  if (counts.requests === latencies.length) {
    const grown = new Float64Array(latencies.length * 2);
    grown.set(latencies);
    latencies = grown;
  }
  latencies[counts.requests++] = ms;
}

/**
 * One connection: writes a request, reads its answer (status line, headers, content-length body),
 * and writes the next. A cut or timed-out connection is counted and replaced, as a client would.
 */
class Connection {
  constructor(onFirstAnswer) {
    this.onFirstAnswer = onFirstAnswer;
    this.signedNext = !job.mixed && Boolean(job.signed);
    this.open();
  }

  open() {
    this.buffer = Buffer.alloc(0);
    this.sentAt = 0;
    this.socket = connect({ host: target.hostname, port, noDelay: true });
    let connected = false;
    this.socket.on('connect', () => {
      connected = true;
      this.send();
    });
    this.socket.on('data', (chunk) => this.read(chunk));
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      if (stopping && !this.sentAt) return;
      if (this.sentAt && measuring) counts.resets++;
      // A refused connect is tried again shortly, not in a tight loop.
      if (!stopping) setTimeout(() => this.open(), connected ? 0 : 50);
    });
  }

  send() {
    if (stopping) return this.socket.end();
    // The first request of a connection is public: it only shows the connection is served.
    const signed = !this.onFirstAnswer && this.signedNext && key !== null;
    if (!this.onFirstAnswer && job.mixed && key) this.signedNext = !this.signedNext;
    this.sentAt = performance.now();
    this.socket.write(signed ? signedRequest() : publicRequest);
  }

  read(chunk) {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    const head = this.buffer.indexOf('\r\n\r\n');
    if (head < 0) return;
    const lines = this.buffer.subarray(0, head).toString('latin1').split('\r\n');
    const status = Number(lines[0].split(' ')[1]);
    const length = lines.find((l) => /^content-length:/i.test(l));
    if (!length) {
      // Every answer of this server to these calls has a length; one without is a fault to see.
      counts.errors++;
      this.socket.destroy();
      return;
    }
    const end = head + 4 + Number(length.slice(15).trim());
    if (this.buffer.length < end) return;
    this.buffer = this.buffer.subarray(end);
    const ms = performance.now() - this.sentAt;
    this.sentAt = 0;
    if (this.onFirstAnswer) {
      const first = this.onFirstAnswer;
      this.onFirstAnswer = null;
      first();
      return;
    }
    if (measuring) {
      record(ms);
      if (status < 200 || status > 299) counts.non2xx++;
    }
    this.send();
  }

  /** Called every second: a request unanswered for the timeout is counted, its connection replaced. */
  check(now) {
    if (this.sentAt && now - this.sentAt > timeoutMs) {
      if (measuring || this.onFirstAnswer) counts.timeouts++;
      this.sentAt = 0;
      this.socket.destroy();
    }
  }
}

const connections = [];
const started = performance.now();
const early = setInterval(() => connections.forEach((c) => c.check(performance.now())), 1000);
let waiting = job.connections;
const allAnswered = await new Promise((settle) => {
  const answered = () => --waiting === 0 && settle(true);
  for (let i = 0; i < job.connections; i++) connections.push(new Connection(answered));
  // A server that closes connections past a cap of its own never answers them all.
  setTimeout(() => settle(false), timeoutMs).unref();
});
clearInterval(early);
if (!allAnswered) {
  process.stderr.write(`hold: ${waiting} of ${job.connections} connections were not answered within ${timeoutMs / 1000} s (does the server cap connections per address?)\n`);
  process.exit(1);
}
const connectMs = performance.now() - started;

measuring = true;
const checker = setInterval(() => connections.forEach((c) => c.check(performance.now())), 1000);
const from = performance.now();
for (const c of connections) c.send();
await new Promise((r) => setTimeout(r, job.duration * 1000));
stopping = true;
const seconds = (performance.now() - from) / 1000;
// In-flight answers are awaited up to the timeout, so a request parked by the server still counts.
const deadline = performance.now() + timeoutMs + 1000;
while (connections.some((c) => c.sentAt) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 100));
clearInterval(checker);
for (const c of connections) {
  if (c.sentAt) counts.timeouts++;
  c.socket.destroy();
}

const sorted = latencies.subarray(0, counts.requests).sort();
// Tenths of a millisecond: most answers here take well under one.
const at = (q) => (sorted.length ? Math.round(10 * sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]) / 10 : 0);
process.stdout.write(JSON.stringify({ ...counts, rps: counts.requests / seconds, p50: at(0.5), p99: at(0.99), connectMs: Math.round(connectMs) }));
