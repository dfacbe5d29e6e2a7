/**
 * §6 "v2 retries" on the embedded store, over a real listening server: the shared scenarios, the
 * step-1 checks, the window, the bounds, GET, and keeping turned off.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, newAttempt, postSigned, retryUntilSettled, until } from './helpers/retry.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { createAccount, freshNonce, getV2, nowSeconds, type Grant } from './helpers/signed.ts';
import { retryScenarios, runsOver } from './retry-scenarios.ts';

const unique = (label: string) => `${label}-${randomBytes(4).toString('hex')}`;

retryScenarios('embedded store', async () => {
  const server = await startTestServer();
  return { a: server.url, b: server.url, runs: runsOver([server.url]), close: () => server.close() };
});

describe('retries (§6) on one server', () => {
  let server: TestServer;
  let grant: Grant;
  const runs = (key: string) => runsOver([server.url])(key);
  beforeAll(async () => {
    server = await startTestServer({ 'retries.maxOutcome': 300 });
    grant = await createAccount(server.url, 'retry-checks@example.com');
  });
  afterAll(() => server.close());

  describe('step 1: malformed retry headers are BadSignature, unsigned, and nothing runs', () => {
    const cases: [string, (first: { nonce: string; timestamp: string }, nonce: string) => Record<string, string | undefined>][] = [
      ['only x-retry-of', () => ({ 'x-retry-timestamp': undefined })],
      ['only x-retry-timestamp', () => ({ 'x-retry-of': undefined })],
      ['x-retry-of too short', () => ({ 'x-retry-of': 'short' })],
      ['x-retry-of with a character outside [A-Za-z0-9_-]', (f) => ({ 'x-retry-of': `${f.nonce.slice(0, 20)}.` })],
      ['x-retry-timestamp not Unix seconds', () => ({ 'x-retry-timestamp': '17e8' })],
      ['x-retry-of equal to x-nonce', (_f, nonce) => ({ 'x-retry-of': nonce })],
    ];
    for (const [name, breakIt] of cases) {
      it(name, async () => {
        const key = unique('malformed');
        const first = newAttempt();
        const nonce = freshNonce();
        const answer = await postSigned(server.url, grant, call('once.hold', { key }), { nonce, retryOf: first, headers: breakIt(first, nonce) });
        expect(answer.status).toBe(401);
        expect(answer.json).toMatchObject({ error: { code: 'BadSignature', type: 'auth' } });
        expect(answer.headers.get('x-hmac')).toBeNull();
        expect(await runs(key)).toBe(0);
      });
    }

    it('a retry signed over the plain v2 string does not verify', async () => {
      const key = unique('plain');
      const answer = await postSigned(server.url, grant, call('once.hold', { key }), { retryOf: newAttempt(), signPlain: true });
      expect(answer.status).toBe(401);
      expect(answer.json).toMatchObject({ error: { code: 'BadSignature', message: 'x-hmac does not match the request' } });
      expect(answer.headers.get('x-hmac')).toBeNull();
      expect(await runs(key)).toBe(0);
    });

    it('a JSON-RPC request with malformed retry headers keeps 401 too', async () => {
      const body = JSON.stringify({ jsonrpc: '2.0', method: 'once.hold', params: { key: unique('rpc') }, id: 1 });
      const answer = await postSigned(server.url, grant, body, { retryOf: newAttempt(), headers: { 'x-retry-of': undefined } });
      expect(answer.status).toBe(401);
      expect(answer.json).toMatchObject({ jsonrpc: '2.0', error: { data: { code: 'BadSignature' } }, id: null });
    });
  });

  it('x-retry-timestamp outside the window, with no record of the first attempt: 409 "outcome not kept", never a run', async () => {
    const key = unique('window');
    const old = { nonce: freshNonce(), timestamp: String(nowSeconds() - 3600) };
    const answer = await postSigned(server.url, grant, call('once.hold', { key }), { retryOf: old });
    expect(answer.status).toBe(409);
    expect(answer.json).toMatchObject({ error: { code: 'Conflict', details: [{ reason: 'outcome not kept' }] } });
    expect(answer.signed).toBe(true);
    expect(await runs(key)).toBe(0);
  });

  it('a retry naming the nonce of another retry: 409 "outcome not kept"', async () => {
    const key = unique('chain');
    const body = call('once.hold', { key });
    const first = newAttempt();
    const retry = await postSigned(server.url, grant, body, { retryOf: first });
    expect(retry.status).toBe(200);
    const chained = await postSigned(server.url, grant, body, { retryOf: { nonce: retry.nonce, timestamp: retry.timestamp } });
    expect(chained.status).toBe(409);
    expect(chained.json).toMatchObject({ error: { details: [{ reason: 'outcome not kept' }] } });
    expect(chained.signed).toBe(true);
    expect(await runs(key)).toBe(1);
  });

  it('an answer larger than retries.maxOutcome is not kept: its retry is 409 "outcome not kept", not a second run', async () => {
    const key = unique('large');
    const body = call('once.hold', { key, pad: 'x'.repeat(400) });
    const first = newAttempt();
    const original = await postSigned(server.url, grant, body, first);
    expect(original.status).toBe(200);
    const retry = await retryUntilSettled(server.url, grant, body, first);
    expect(retry.status).toBe(409);
    expect(retry.json).toMatchObject({ error: { details: [{ reason: 'outcome not kept' }] } });
    expect(await runs(key)).toBe(1);
  });

  it('an error answer is an outcome too: the retry gets the same 400, marked retried', async () => {
    const body = call('once.hold', { key: '' }); // minLength 1: InvalidParams
    const first = newAttempt();
    const original = await postSigned(server.url, grant, body, first);
    expect(original.status).toBe(400);
    const retry = await retryUntilSettled(server.url, grant, body, first);
    expect(retry).toMatchObject({ status: 400, retried: true, signed: true, text: original.text });
  });

  it('a late original racing its retry: exactly one of them runs', async () => {
    const key = unique('race');
    const body = call('once.hold', { key });
    const first = newAttempt();
    const [original, retry] = await Promise.all([postSigned(server.url, grant, body, first), postSigned(server.url, grant, body, { retryOf: first })]);
    expect(await runs(key)).toBe(1);
    const ran = [original, retry].filter((a) => a.status === 200 && !a.retried);
    expect(ran).toHaveLength(1);
    for (const a of [original, retry]) expect(a.signed).toBe(true);
  });

  it('GET ignores retry headers: a signed job read carrying malformed ones is answered as without them', async () => {
    const key = unique('get');
    const accepted = await postSigned(server.url, grant, call('once.job', { key }));
    expect(accepted.status).toBe(202);
    const target = accepted.headers.get('location')!;
    const base = new URL(server.url);
    await until(async () => (await getV2(base.href, target, grant)).json.state === 'done');
    const timestamp = String(nowSeconds());
    const nonce = freshNonce();
    const mac = createHmac('sha256', Buffer.from(grant.session_key, 'base64url')).update(`simpleapi-v2\n${timestamp}\n${nonce}\n${target}`).digest('hex');
    // Malformed, lone, and naming the request's own nonce: each would be BadSignature on a POST.
    const res = await fetch(new URL(target, base), {
      headers: { 'x-session-id': grant.session_id, 'x-timestamp': timestamp, 'x-nonce': nonce, 'x-hmac': mac, 'x-retry-of': nonce },
    });
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(JSON.parse(text)).toMatchObject({ state: 'done', result: { done: key } });
    expect(res.headers.get('x-hmac')).toBe(createHmac('sha256', Buffer.from(grant.session_key, 'base64url')).update(`simpleapi-v2-response\n${nonce}\n${text}`).digest('hex'));
    expect(res.headers.get('x-retried')).toBeNull();
  });
});

describe('retries with outcomes not kept (--no-keep-outcomes)', () => {
  let server: TestServer;
  let grant: Grant;
  const runs = (key: string) => runsOver([server.url])(key);
  beforeAll(async () => {
    server = await startTestServer({ 'retries.keep': false });
    grant = await createAccount(server.url, 'no-keeping@example.com');
  });
  afterAll(() => server.close());

  it('a retry of a call that finished is 409 "outcome not kept", never a second run', async () => {
    const key = unique('off');
    const body = call('once.hold', { key });
    const first = newAttempt();
    expect((await postSigned(server.url, grant, body, first)).status).toBe(200);
    const retry = await postSigned(server.url, grant, body, { retryOf: first });
    expect(retry.status).toBe(409);
    expect(retry.json).toMatchObject({ error: { details: [{ reason: 'outcome not kept' }] } });
    expect(await runs(key)).toBe(1);
  });

  it('a retry whose first attempt never arrived still runs once and refuses the late original', async () => {
    const key = unique('off-first');
    const body = call('once.hold', { key });
    const first = newAttempt();
    expect((await postSigned(server.url, grant, body, { retryOf: first })).status).toBe(200);
    expect((await postSigned(server.url, grant, body, first)).json).toMatchObject({ error: { code: 'BadSignature', message: 'x-nonce was already used' } });
    expect(await runs(key)).toBe(1);
  });
});
