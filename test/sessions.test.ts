/**
 * Accounts, sessions and v2 signing (docs/protocol.md §5-§6) over a real server, with requests signed
 * by hand from the protocol text (helpers/signed.ts) and with the project's client.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nowSeconds as serverNow, testClock } from '../src/core/clock.ts';
import { SignatureError, SimpleApiClient } from '../src/client/index.ts';
import { call, post, startTestServer, type TestServer } from './helpers/server.ts';
import { createAccount, freshNonce, nowSeconds, postV2, v2Headers, type Grant } from './helpers/signed.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ 'login.maxFailures': 3, 'login.maxFailuresPerIp': 1000 });
});
afterAll(() => server.close());

const whoami = call('whoami');
let counter = 0;
const uniqueUser = (prefix: string) => `${prefix}-${process.pid}-${++counter}@example.com`;

describe('account.create and account.login', () => {
  it('create answers {user_id, session_id, session_key, expires}, signed with the new key', async () => {
    const before = nowSeconds();
    const nonce = freshNonce();
    const userId = uniqueUser('Create');
    const a = await post(server.url, call('account.create', { user_id: userId, password: 'password-one' }), { 'x-nonce': nonce });
    expect(a.status).toBe(200);
    const grant = a.json as Grant;
    expect(Object.keys(grant).sort()).toEqual(['expires', 'session_id', 'session_key', 'user_id']);
    expect(grant.user_id).toBe(userId);
    expect(grant.session_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(Buffer.from(grant.session_key, 'base64url')).toHaveLength(32);
    expect(grant.session_key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(grant.expires).toBeGreaterThanOrEqual(before + 86400);
    const { createHmac } = await import('node:crypto');
    const expected = createHmac('sha256', Buffer.from(grant.session_key, 'base64url')).update(`simpleapi-v2-response\n${nonce}\n${a.text}`).digest('hex');
    expect(a.headers.get('x-hmac')).toBe(expected);
  });

  it('without an x-nonce, the create/login response is signed over the empty nonce', async () => {
    const userId = uniqueUser('nononce');
    const a = await post(server.url, call('account.create', { user_id: userId, password: 'password-one' }));
    const grant = a.json as Grant;
    const { createHmac } = await import('node:crypto');
    expect(a.headers.get('x-hmac')).toBe(createHmac('sha256', Buffer.from(grant.session_key, 'base64url')).update(`simpleapi-v2-response\n\n${a.text}`).digest('hex'));
  });

  it('login: right password, wrong password, unknown user (same answer), any case of user_id', async () => {
    const userId = uniqueUser('Login');
    await createAccount(server.url, userId, 'password-one');
    const ok = await post(server.url, call('account.login', { user_id: userId.toUpperCase(), password: 'password-one' }));
    expect(ok.status).toBe(200);
    expect((ok.json as Grant).user_id).toBe(userId);
    const wrong = await post(server.url, call('account.login', { user_id: userId, password: 'password-two' }));
    const unknown = await post(server.url, call('account.login', { user_id: uniqueUser('nobody'), password: 'password-two' }));
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(wrong.json).toEqual({ error: { code: 'Unauthenticated', message: 'Wrong user_id or password', type: 'auth' } });
    expect(unknown.json).toEqual(wrong.json);
  });

  it('user_id and password lengths are checked: 1-254 and 8-1024', async () => {
    const cases: [unknown, string][] = [
      [{ user_id: 'x'.repeat(255), password: 'password-one' }, '/user_id'],
      [{ user_id: 'ok', password: 'x'.repeat(1025) }, '/password'],
      [{ user_id: 'ok', password: 'seven77' }, '/password'],
      [{ user_id: 5, password: 'password-one' }, '/user_id'],
    ];
    for (const [params, path] of cases) {
      const a = await post(server.url, call('account.create', params));
      expect(a.status).toBe(400);
      expect((a.json as { error: { details: { path: string }[] } }).error.details.map((d) => d.path)).toEqual([path]);
    }
    const edge = await post(server.url, call('account.create', { user_id: `${'y'.repeat(250)}${counter++}`.slice(0, 254), password: 'x'.repeat(1024) }));
    expect(edge.status).toBe(200);
  });
});

describe('signed requests (v2)', () => {
  let grant: Grant;
  beforeAll(async () => {
    grant = await createAccount(server.url, uniqueUser('signer'));
  });

  it('a signed call reaches a session method, sees ctx.session, and its response is signed', async () => {
    const a = await postV2(server.url, grant, whoami);
    expect(a.status).toBe(200);
    expect(a.json).toMatchObject({ userId: grant.user_id, sessionId: grant.session_id });
    expect(a.responseSigned).toBe(true);
  });

  it('a public method called with x-session-id is verified and sees the session', async () => {
    const a = await postV2(server.url, grant, call('peek'));
    expect(a.json).toMatchObject({ user: grant.user_id });
    const forged = await postV2(server.url, grant, call('peek'), { hmac: 'f'.repeat(64) });
    expect(forged.status).toBe(401);
  });

  it('tampered body: 401 BadSignature, unsigned (the MAC never verified, §6)', async () => {
    const a = await postV2(server.url, grant, call('echo', { amount: 1000 }), { signedBody: call('echo', { amount: 1 }) });
    expect(a.status).toBe(401);
    expect(a.json).toEqual({ error: { code: 'BadSignature', message: 'x-hmac does not match the request', type: 'auth' } });
    expect(a.responseSigned).toBe(false);
    expect(a.headers.get('x-hmac')).toBeNull();
  });

  it('tampered signature: one hex digit changed', async () => {
    const headers = v2Headers(grant, whoami);
    const mac = headers['x-hmac']!;
    headers['x-hmac'] = (mac[0] === 'a' ? 'b' : 'a') + mac.slice(1);
    const a = await post(server.url, whoami, headers);
    expect(a.status).toBe(401);
    expect((a.json as { error: { code: string } }).error.code).toBe('BadSignature');
  });

  it('missing headers: each of x-hmac, x-timestamp, x-nonce', async () => {
    const expectations = {
      'x-hmac': 'x-hmac is missing',
      'x-timestamp': 'x-timestamp must be Unix seconds',
      'x-nonce': 'x-nonce must be 16 to 64 characters of [A-Za-z0-9_-]',
    } as const;
    for (const [header, message] of Object.entries(expectations)) {
      const a = await postV2(server.url, grant, whoami, { omit: [header as 'x-hmac'] });
      expect(a.status, header).toBe(401);
      expect((a.json as { error: { code: string; message: string } }).error).toMatchObject({ code: 'BadSignature', message });
    }
  });

  it('timestamp too old and too new: 401 with server_time in details', async () => {
    for (const offset of [-301, 301, -100000]) {
      const before = nowSeconds();
      const a = await postV2(server.url, grant, whoami, { timestamp: String(nowSeconds() + offset) });
      expect(a.status).toBe(401);
      const error = (a.json as { error: { code: string; details: { server_time: number }[] } }).error;
      expect(error.code).toBe('BadSignature');
      expect(error.details).toHaveLength(1);
      expect(error.details[0]!.server_time).toBeGreaterThanOrEqual(before);
      expect(error.details[0]!.server_time).toBeLessThanOrEqual(nowSeconds());
      // The MAC verified (step 2), so this answer is signed: a client may trust its server_time.
      expect(a.responseSigned).toBe(true);
    }
    const edge = await postV2(server.url, grant, whoami, { timestamp: String(nowSeconds() - 290) });
    expect(edge.status).toBe(200);
  });

  it('a replayed nonce is refused; the same nonce from another session is allowed', async () => {
    const nonce = freshNonce();
    const first = await postV2(server.url, grant, whoami, { nonce });
    expect(first.status).toBe(200);
    const replay = await postV2(server.url, grant, whoami, { nonce });
    expect(replay.status).toBe(401);
    expect(replay.json).toEqual({ error: { code: 'BadSignature', message: 'x-nonce was already used', type: 'auth' } });
    const other = await createAccount(server.url, uniqueUser('other'));
    const elsewhere = await postV2(server.url, other, whoami, { nonce });
    expect(elsewhere.status).toBe(200);
  });

  it("another user's session id with one's own key is refused", async () => {
    const victim = await createAccount(server.url, uniqueUser('victim'));
    const a = await postV2(server.url, grant, whoami, { sessionId: victim.session_id });
    expect(a.status).toBe(401);
    expect((a.json as { error: { code: string } }).error.code).toBe('BadSignature');
  });

  it('an unsigned call with a malformed session id is Unauthenticated', async () => {
    const a = await post(server.url, whoami, { 'x-session-id': 'not-a-uuid' });
    expect(a.status).toBe(401);
    expect(a.json).toEqual({ error: { code: 'Unauthenticated', message: 'x-session-id is not a session id', type: 'auth' } });
  });

  it('a signed batch: each entry authorised on its own, one signed response', async () => {
    const body = JSON.stringify([
      { jsonrpc: '2.0', method: 'whoami', id: 1 },
      { jsonrpc: '2.0', method: 'sum', params: [1, 2], id: 2 },
    ]);
    const a = await postV2(server.url, grant, body);
    expect(a.responseSigned).toBe(true);
    expect(a.json).toEqual([
      { jsonrpc: '2.0', result: expect.objectContaining({ userId: grant.user_id }), id: 1 },
      { jsonrpc: '2.0', result: 3, id: 2 },
    ]);
  });
});

describe('logout, expiry and sliding renewal', () => {
  it('after logout the session is unusable', async () => {
    const grant = await createAccount(server.url, uniqueUser('logout'));
    const out = await postV2(server.url, grant, call('account.logout'));
    expect(out.json).toEqual({ ok: true });
    expect(out.responseSigned).toBe(true);
    const after = await postV2(server.url, grant, whoami);
    expect(after.status).toBe(401);
    expect(after.json).toEqual({ error: { code: 'Unauthenticated', message: 'The session is unknown or has expired', type: 'auth' } });
  });

  it('a session expires after its TTL, and each signed use slides it', async () => {
    // Expiry is in whole seconds, so a TTL of 3 s can leave as little as 2 s: uses 1 s apart keep it.
    const short = await startTestServer({ 'session.ttl': 3, 'session.touchFraction': 0 });
    try {
      const idle = await createAccount(short.url, uniqueUser('idle'));
      const busy = await createAccount(short.url, uniqueUser('busy'));
      // The server's clock moves 1 s at a time (a controllable clock, not sleeps).
      for (let i = 0; i < 4; i++) {
        testClock.advance(1);
        const a = await postV2(short.url, busy, whoami);
        expect(a.status).toBe(200);
        expect((a.json as { expires: number }).expires).toBeGreaterThanOrEqual(serverNow() + 2);
      }
      // 4 s after creation: the idle session is gone, the busy one lives on.
      expect((await postV2(short.url, idle, whoami)).status).toBe(401);
      expect((await postV2(short.url, busy, whoami)).status).toBe(200);
    } finally {
      testClock.reset();
      await short.close();
    }
  });
});

describe('account.password', () => {
  it('ends every other session of the user and keeps the calling one', async () => {
    const userId = uniqueUser('pw');
    const first = await createAccount(server.url, userId, 'password-one');
    const second = (await post(server.url, call('account.login', { user_id: userId, password: 'password-one' }))).json as Grant;
    const change = await postV2(server.url, first, call('account.password', { old_password: 'password-one', new_password: 'password-two' }));
    expect(change.json).toEqual({ ok: true });
    expect((await postV2(server.url, first, whoami)).status).toBe(200);
    expect((await postV2(server.url, second, whoami)).status).toBe(401);
    expect((await post(server.url, call('account.login', { user_id: userId, password: 'password-one' }))).status).toBe(401);
    expect((await post(server.url, call('account.login', { user_id: userId, password: 'password-two' }))).status).toBe(200);
  });
});

describe('concurrent session state changes', () => {
  it('the later saveState fails with Conflict; nothing is silently lost', async () => {
    const grant = await createAccount(server.url, uniqueUser('state'));
    const [a, b] = await Promise.all([
      postV2(server.url, grant, call('state.add', { item: 'a', delayMs: 150 })),
      postV2(server.url, grant, call('state.add', { item: 'b', delayMs: 150 })),
    ]);
    const statuses = [a.status, b.status].sort();
    expect(statuses).toEqual([200, 409]);
    const loser = a.status === 409 ? a : b;
    expect(loser.json).toMatchObject({ error: { code: 'Conflict', type: 'conflict' } });
    const stored = (await postV2(server.url, grant, call('state.get'))).json as { items: string[] };
    expect(stored.items).toHaveLength(1);
  });

  it('a method that retries on Conflict keeps both changes', async () => {
    const grant = await createAccount(server.url, uniqueUser('state-retry'));
    const answers = await Promise.all(['a', 'b', 'c'].map((item) => postV2(server.url, grant, call('state.add', { item, delayMs: 80, retry: true }))));
    expect(answers.map((x) => x.status)).toEqual([200, 200, 200]);
    const stored = (await postV2(server.url, grant, call('state.get'))).json as { items: string[] };
    expect(stored.items.sort()).toEqual(['a', 'b', 'c']);
  });
});

describe('login throttling', () => {
  it('per user_id: TooManyRequests with Retry-After after maxFailures, for right passwords too', async () => {
    const userId = uniqueUser('brute');
    await createAccount(server.url, userId, 'password-one');
    for (let i = 0; i < 3; i++) expect((await post(server.url, call('account.login', { user_id: userId, password: `guess-${i}-xx` }))).status).toBe(401);
    const blocked = await post(server.url, call('account.login', { user_id: userId.toUpperCase(), password: 'password-one' }));
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
    // Another user from the same address is not affected.
    const other = uniqueUser('bystander');
    await createAccount(server.url, other, 'password-one');
    expect((await post(server.url, call('account.login', { user_id: other, password: 'password-one' }))).status).toBe(200);
  });

  it('per client address, across user_ids', async () => {
    const strict = await startTestServer({ 'login.maxFailures': 100, 'login.maxFailuresPerIp': 2 });
    try {
      for (let i = 0; i < 2; i++) await post(strict.url, call('account.login', { user_id: `spray-${i}`, password: 'password-xx' }));
      const a = await post(strict.url, call('account.login', { user_id: 'spray-9', password: 'password-xx' }));
      expect(a.status).toBe(429);
      expect(a.json).toMatchObject({ error: { code: 'TooManyRequests', type: 'rateLimit' } });
    } finally {
      await strict.close();
    }
  });
});

describe('the project client (v2)', () => {
  it('create, call, batch, logout; verifies every response', async () => {
    const client = new SimpleApiClient({ url: server.url });
    const userId = uniqueUser('client');
    const grant = await client.create(userId, 'password-one');
    expect(client.session).toMatchObject({ userId, sessionId: grant.session_id });
    expect(await client.call('whoami')).toMatchObject({ userId });
    const results = await client.batch([{ method: 'sum', params: [2, 2] }, { method: 'whoami' }, { method: 'update', params: ['x'], notify: true }, { method: 'fail.code', params: { code: 'NotFound' } }]);
    expect(results[0]).toEqual({ ok: true, result: 4 });
    expect(results[1]).toMatchObject({ ok: true, result: { userId } });
    expect(results[2]).toBeUndefined();
    expect(results[3]).toMatchObject({ ok: false, error: { code: 'NotFound', type: 'notInDatabase', rpcCode: -32004 } });
    await expect(client.call('account.password', { old_password: 'password-one', new_password: 'x' })).rejects.toMatchObject({
      code: 'InvalidParams',
      details: [{ path: '/new_password', message: 'must NOT have fewer than 8 characters' }],
    });
    await client.logout();
    expect(client.session).toBeNull();
    const again = new SimpleApiClient({ url: server.url });
    await again.login(userId, 'password-one');
    expect(await again.call('whoami')).toMatchObject({ userId });
  });

  it('throws SignatureError when a response signature does not match', async () => {
    const tamper: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      const headers = new Headers(res.headers);
      const mac = headers.get('x-hmac');
      if (mac !== null) headers.set('x-hmac', mac.replace(/^./, (c) => (c === '0' ? '1' : '0')));
      return new Response(await res.arrayBuffer(), { status: res.status, headers });
    };
    const honest = new SimpleApiClient({ url: server.url });
    const grant = await honest.create(uniqueUser('tamper'), 'password-one');
    const client = new SimpleApiClient({ url: server.url, fetch: tamper });
    client.useSession(grant);
    await expect(client.call('whoami')).rejects.toBeInstanceOf(SignatureError);
    await expect(new SimpleApiClient({ url: server.url, fetch: tamper }).login(grant.user_id, 'password-one')).rejects.toBeInstanceOf(SignatureError);
  });

  it('leaves its clock alone when a 401 carrying server_time is not signed (forged on the path)', async () => {
    const honest = new SimpleApiClient({ url: server.url });
    const grant = await honest.create(uniqueUser('forged-clock'), 'password-one');
    const forged: typeof fetch = async () =>
      new Response(JSON.stringify({ error: { code: 'BadSignature', message: 'x-timestamp is more than 300 s from the server clock', type: 'auth', details: [{ server_time: 1 }] } }), {
        status: 401,
        headers: { 'content-type': 'application/json' },
      });
    const client = new SimpleApiClient({ url: server.url, fetch: forged });
    client.useSession(grant);
    await expect(client.call('whoami')).rejects.toMatchObject({ code: 'BadSignature', status: 401 });
    expect(client.clockOffset).toBe(0);
  });

  it('corrects its clock offset once from server_time', async () => {
    // The client's clock is an hour slow; the server's is right.
    const client = new SimpleApiClient({ url: server.url, clock: () => Date.now() - 3600_000 });
    await client.create(uniqueUser('clock'), 'password-one');
    expect(await client.call('whoami')).toMatchObject({ sessionId: client.session!.sessionId });
    expect(client.clockOffset).toBeGreaterThanOrEqual(3599);
    expect(client.clockOffset).toBeLessThanOrEqual(3601);
    expect(await client.call('whoami')).toMatchObject({ sessionId: client.session!.sessionId });
  });
});
