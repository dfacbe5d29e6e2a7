/**
 * The security regression suite, in one place, to be read top to bottom. Each block is an attack
 * and what the server must do about it, over a real listening server, with requests built by hand
 * from docs/protocol.md §6.
 */
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testClock } from '../src/core/clock.ts';
import { call, post, startTestServer, type TestServer } from './helpers/server.ts';
import { createAccount, freshNonce, nowSeconds, postV2, v2Headers, type Grant } from './helpers/signed.ts';

let server: TestServer;
let alice: Grant;
let bob: Grant;
const whoami = JSON.stringify({ method: 'whoami', parameters: {} });
const errorCode = (json: unknown) => (json as { error: { code: string } }).error.code;

beforeAll(async () => {
  server = await startTestServer({ bodyLimit: 8192, batchLimit: 20, 'login.maxFailures': 3, 'login.maxFailuresPerIp': 1000, 'session.ttl': 3600 });
  alice = await createAccount(server.url, 'alice@example.com', 'alice-password');
  bob = await createAccount(server.url, 'bob@example.com', 'bob-password');
});
afterAll(() => server.close());

describe('1. signature tampering', () => {
  it('a changed body, MAC, timestamp or nonce fails verification: 401 BadSignature, the method never runs', async () => {
    const body = call('state.add', { item: 'tampered' });
    const headers = v2Headers(alice, body);
    const attempts: Record<string, string>[] = [
      { ...headers, 'x-hmac': headers['x-hmac']!.replace(/.$/, (c) => (c === '0' ? '1' : '0')) },
      { ...headers, 'x-timestamp': String(Number(headers['x-timestamp']) - 1) },
      { ...headers, 'x-nonce': freshNonce() },
      { ...headers, 'x-hmac': headers['x-hmac']!.toUpperCase() },
    ];
    for (const h of attempts) {
      const a = await post(server.url, body, h);
      expect(a.status).toBe(401);
      expect(errorCode(a.json)).toBe('BadSignature');
    }
    const changedBody = await post(server.url, call('state.add', { item: 'other' }), headers);
    expect(errorCode(changedBody.json)).toBe('BadSignature');
    expect((await postV2(server.url, alice, call('state.get'))).json).toEqual({});
  });
});

describe('2. replay', () => {
  it('the same signed request sent twice runs once', async () => {
    const body = call('whoami');
    const headers = v2Headers(alice, body);
    expect((await post(server.url, body, headers)).status).toBe(200);
    const again = await post(server.url, body, headers);
    expect(again.status).toBe(401);
    expect(again.json).toEqual({ error: { code: 'BadSignature', message: 'x-nonce was already used', type: 'auth' } });
    // Step 4 failed after the MAC verified: signed over the nonce the client chose, as §6 says.
    expect(again.headers.get('x-hmac')).not.toBeNull();
  });

  it('a signed response cannot be passed off as the answer to another request', async () => {
    const first = await postV2(server.url, alice, whoami);
    const second = await postV2(server.url, alice, whoami);
    // The response MAC covers the request nonce: the first MAC does not verify for the second nonce.
    const key = Buffer.from(alice.session_key, 'base64url');
    const macFor = (nonce: string, text: string) => createHmac('sha256', key).update(`simpleapi-v2-response\n${nonce}\n${text}`).digest('hex');
    expect(first.headers.get('x-hmac')).toBe(macFor(first.nonce, first.text));
    expect(macFor(second.nonce, first.text)).not.toBe(first.headers.get('x-hmac'));
  });
});

describe('3. clock skew', () => {
  it('timestamps more than the window away are refused, with the server time to correct by', async () => {
    for (const skew of [-301, 301]) {
      const a = await postV2(server.url, alice, whoami, { timestamp: String(nowSeconds() + skew) });
      expect(a.status).toBe(401);
      expect((a.json as { error: { details: { server_time: number }[] } }).error.details[0]!.server_time).toBeGreaterThan(0);
    }
  });
});

describe('4. expired and deleted sessions', () => {
  it('an expired session is refused', async () => {
    const short = await startTestServer({ 'session.ttl': 1 });
    try {
      const grant = await createAccount(short.url, 'short-lived@example.com');
      testClock.advance(2);
      const a = await postV2(short.url, grant, whoami);
      expect(a.status).toBe(401);
      expect(errorCode(a.json)).toBe('Unauthenticated');
    } finally {
      testClock.reset();
      await short.close();
    }
  });

  it('a logged-out session is refused, and so are sessions ended by a password change', async () => {
    const grant = await createAccount(server.url, 'leaving@example.com', 'leaving-password');
    const other = (await post(server.url, call('account.login', { user_id: 'leaving@example.com', password: 'leaving-password' }))).json as Grant;
    await postV2(server.url, grant, call('account.password', { old_password: 'leaving-password', new_password: 'changed-password' }));
    expect(errorCode((await postV2(server.url, other, whoami)).json)).toBe('Unauthenticated');
    await postV2(server.url, grant, call('account.logout'));
    expect(errorCode((await postV2(server.url, grant, whoami)).json)).toBe('Unauthenticated');
  });
});

describe("5. another user's session id with one's own key", () => {
  it('is refused: the key belongs to the session, not to the caller', async () => {
    const a = await postV2(server.url, alice, whoami, { sessionId: bob.session_id });
    expect(a.status).toBe(401);
    expect(errorCode(a.json)).toBe('BadSignature');
  });
});

describe('6. method-name traversal', () => {
  it('paths, prototype names and reserved names are Method Not Found', async () => {
    for (const name of ['../../etc/passwd', '..%2f..', 'account/../account.login', '__proto__', 'constructor', 'rpc.discover.x', 'account..login']) {
      const a = await post(server.url, call(name));
      expect(a.status, name).toBe(404);
      expect(errorCode(a.json)).toBe('MethodNotFound');
    }
  });
});

describe('7. oversize bodies and batch abuse', () => {
  it('a body over the limit is 413 and is not read', async () => {
    const a = await post(server.url, call('echo', 'x'.repeat(10_000)));
    expect(a.status).toBe(413);
  });

  it('a batch over the limit is one Invalid Request and runs nothing', async () => {
    const entries = Array.from({ length: 21 }, (_, i) => ({ jsonrpc: '2.0', method: 'state.add', params: { item: `b${i}` }, id: i }));
    const a = await postV2(server.url, alice, JSON.stringify(entries));
    expect(a.json).toMatchObject({ error: { code: -32600, message: 'A batch holds at most 20 entries; this one has 21' } });
    expect((await postV2(server.url, alice, call('state.get'))).json).toEqual({});
  });

  it('session methods in an unsigned batch are refused entry by entry, notifications included', async () => {
    const a = await post(server.url, JSON.stringify([{ jsonrpc: '2.0', method: 'state.add', params: { item: 'x' } }, { jsonrpc: '2.0', method: 'whoami', id: 1 }]));
    expect(a.json).toEqual([{ jsonrpc: '2.0', error: expect.objectContaining({ code: -32001 }), id: 1 }]);
  });
});

describe('8. login brute force', () => {
  it('a batch of guesses is throttled like separate requests', async () => {
    await createAccount(server.url, 'target@example.com', 'target-password');
    const guesses = Array.from({ length: 10 }, (_, i) => ({ jsonrpc: '2.0', method: 'account.login', params: { user_id: 'target@example.com', password: `guess-${i}-xxxx` }, id: i }));
    const a = await post(server.url, JSON.stringify(guesses));
    const codes = (a.json as { error: { data: { code: string } } }[]).map((r) => r.error.data.code);
    // However many run at once, no more than the limit reach the password check.
    expect(codes.filter((c) => c === 'Unauthenticated').length).toBeLessThanOrEqual(3);
    expect(codes.filter((c) => c === 'TooManyRequests').length).toBeGreaterThanOrEqual(7);
    expect(codes).toHaveLength(10);
    const right = await post(server.url, call('account.login', { user_id: 'target@example.com', password: 'target-password' }));
    expect(right.status).toBe(429);
  });

  it('a burst of parallel requests is held to the limit too', async () => {
    await createAccount(server.url, 'burst@example.com', 'burst-password');
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => post(server.url, call('account.login', { user_id: 'burst@example.com', password: `guess-${i}-xxxx` }))));
    expect(answers.filter((a) => a.status === 401).length).toBeLessThanOrEqual(3);
    expect(answers.filter((a) => a.status === 429).length).toBeGreaterThanOrEqual(9);
    expect(answers.every((a) => a.status === 401 || a.status === 429)).toBe(true);
  });

  it('an unknown user and a wrong password get the same answer', async () => {
    const wrong = await post(server.url, call('account.login', { user_id: 'bob@example.com', password: 'not-bobs-password' }));
    const unknown = await post(server.url, call('account.login', { user_id: 'nobody@example.com', password: 'not-bobs-password' }));
    expect([wrong.status, unknown.status]).toEqual([401, 401]);
    expect(unknown.text).toBe(wrong.text);
  });
});

describe('9. errors show nothing internal', () => {
  it('an unexpected throw is a generic InternalError with no stack or message of its own', async () => {
    const a = await post(server.url, call('fail.internal'));
    expect(a.status).toBe(500);
    expect(a.text).toBe('{"error":{"code":"InternalError","message":"Internal error","type":"server"}}');
  });
});

describe("10. v1's known weakness (accepted when hmac.scheme is v1)", () => {
  it('under v1, the user_id and the session id are all it takes to sign', async () => {
    const v1 = await startTestServer({ 'hmac.scheme': 'v1' });
    try {
      const grant = await createAccount(v1.url, 'v1-user@example.com');
      const forged = await post(v1.url, whoami, { 'x-session-id': grant.session_id, 'x-hmac': createHmac('sha1', 'v1-user@example.com').update(whoami).digest('hex') });
      expect(forged.status).toBe(200);
    } finally {
      await v1.close();
    }
  });
});
