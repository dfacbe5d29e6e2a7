// One bounded autocannon run, in its own process (pinned by the caller to the other core).
// argv[2]: JSON { url, body, connections, duration, signed?: { session_id, session_key }, mixed?: publicBody }
// With `mixed`, each connection alternates a public request (that body) and a signed one.
// Prints autocannon's result as JSON on stdout.
import autocannon from 'autocannon';
import { signV2 } from './sign-v2.mjs';

const job = JSON.parse(process.argv[2]);
const headers = { 'content-type': 'application/json' };
const options = {
  url: job.url,
  method: 'POST',
  connections: job.connections,
  duration: job.duration,
  headers,
  body: job.body,
  // Seconds before a request counts as timed out. Not autocannon's default of 10: a run of exactly
  // 10 s then reports the requests still in flight when it stops as timeouts.
  timeout: job.timeout ?? 20,
};
if (job.signed) {
  // A fresh timestamp, nonce and MAC for every request, as a real client sends them; made before
  // the run, so this process keeps up with the server. Signing each request as it went out left
  // the load generator the bottleneck: the signed server sat idle part of the time, and an
  // underloaded server pays more CPU per request (a wake-up each), which read as the server's cost.
  const key = Buffer.from(job.signed.session_key, 'base64url');
  const signedHeaders = () => {
    const { timestamp, nonce, mac } = signV2(key, job.body);
    return { ...headers, 'x-session-id': job.signed.session_id, 'x-timestamp': timestamp, 'x-nonce': nonce, 'x-hmac': mac };
  };
  const ready = Array.from({ length: Math.min(400_000, Math.ceil(job.duration * 40_000)) }, signedHeaders);
  let next = 0;
  options.requests = [
    ...(job.mixed ? [{ method: 'POST', headers, body: job.mixed }] : []),
    {
      setupRequest(request) {
        request.headers = next < ready.length ? ready[next++] : signedHeaders();
        request.body = job.body;
        return request;
      },
    },
  ];
}
const result = await autocannon(options);
process.stdout.write(JSON.stringify({
  requests: result.requests.total,
  rps: result.requests.average,
  p50: result.latency.p50,
  p99: result.latency.p99,
  non2xx: result.non2xx,
  errors: result.errors,
  timeouts: result.timeouts,
  resets: result.resets ?? 0,
}));
