/**
 * The account and signing findings of the red-team pass (issue 14), one block each, reproduced
 * against a real listening server and shown fixed. Client addresses are varied through
 * X-Forwarded-For on a server that trusts one proxy hop (the test is the proxy).
 */
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimpleApiClient } from '../src/client/index.ts';
import { userKeyOf } from '../src/core/user-id.ts';
import { MemoryStore } from '../src/store/memory.ts';
import type { Store } from '../src/store/types.ts';
import { hasMongo, openMongoStore, uniqueDbName } from './helpers/mongo.ts';
import { dropMySqlDb, hasMySql, openMySqlStore, uniqueMySqlDb } from './helpers/mysql.ts';
import { post, ROOT, SHIPPED_METHODS, startTestServer, type TestServer } from './helpers/server.ts';
import { createAccount, getV2, nowSeconds, postV2, v2Headers, type Grant } from './helpers/signed.ts';
import { ApiError } from '../src/core/errors.ts';

const call = (method: string, parameters: unknown = {}) => JSON.stringify({ method, parameters });
const whoami = call('whoami');
let counter = 0;
const unique = (label: string) => `${label}-${process.pid}-${++counter}`;
const from = (address: string) => ({ 'x-forwarded-for': `10.9.9.9, ${address}` });

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ trustProxy: 1 });
});
afterAll(() => server.close());

/**
 * Rounds of: logins with the right password from many addresses, and while they are in flight a
 * password change; then every session those logins were given is tried. Returns the survivors.
 */
async function passwordRace(url: string, rounds: number, logins: number): Promise<{ survivors: number; minted: number; refused: number }> {
  let survivors = 0;
  let minted = 0;
  let refused = 0;
  for (let r = 0; r < rounds; r++) {
    const userId = unique('race');
    const owner = await createAccount(url, userId, 'old-password');
    // Spread over the change's own two hashes, so that some logins are mid-check when it lands.
    const attempts = Array.from({ length: logins }, async (_, i) => {
      await new Promise((r) => setTimeout(r, i * 25));
      return post(url, call('account.login', { user_id: userId, password: 'old-password' }), from(`192.0.2.${i + 1}`));
    });
    const change = await postV2(url, owner, call('account.password', { old_password: 'old-password', new_password: 'new-password' }));
    expect(change.status).toBe(200);
    for (const answer of await Promise.all(attempts)) {
      if (answer.status !== 200) {
        expect(answer.status).toBe(401);
        refused++;
        continue;
      }
      minted++;
      if ((await postV2(url, answer.json as Grant, whoami)).status !== 401) survivors++;
    }
    // The changing session itself lives on.
    expect((await postV2(url, owner, whoami)).status).toBe(200);
  }
  return { survivors, minted, refused };
}

describe('1. a password change is final, logins in flight included', () => {
  it('embedded store: 15 rounds of 8 logins racing a change leave no session', async () => {
    const outcome = await passwordRace(server.url, 15, 8);
    console.log(`password race (embedded): ${JSON.stringify(outcome)}`);
    expect(outcome.survivors).toBe(0);
    expect(outcome.minted + outcome.refused).toBe(120);
  }, 180_000);

  const onStore = (name: string, enabled: boolean, open: () => Promise<{ store: Store; drop: () => Promise<void> }>) =>
    it.skipIf(!enabled)(`${name}: 8 rounds of 8 logins racing a change leave no session`, async () => {
      const { store, drop } = await open();
      const shared = await startTestServer({ trustProxy: 1 }, store);
      try {
        const outcome = await passwordRace(shared.url, 8, 8);
        console.log(`password race (${name}): ${JSON.stringify(outcome)}`);
        expect(outcome.survivors).toBe(0);
      } finally {
        await shared.close();
        await drop();
      }
    }, 240_000);
  onStore('MongoDB', hasMongo, async () => {
    const store = await openMongoStore(uniqueDbName('race'));
    return { store, drop: async () => { await store.db.dropDatabase(); await store.close(); } };
  });
  onStore('MySQL', hasMySql, async () => {
    const db = uniqueMySqlDb('race');
    const store = await openMySqlStore(db);
    return { store, drop: async () => { await store.close(); await dropMySqlDb(db); } };
  });
});

describe('2. --trust-proxy takes the right-most untrusted address', () => {
  it('a spoofed left-most X-Forwarded-For entry neither changes ctx.ip nor dodges the address budget', async () => {
    const strict = await startTestServer({ trustProxy: true, 'login.maxFailuresPerIp': 10 });
    try {
      const seen = await post(strict.url, call('peek'), { 'x-forwarded-for': '6.6.6.6, 203.0.113.7' });
      expect((seen.json as { ip: string }).ip).toBe('203.0.113.7');
      const statuses: number[] = [];
      for (let i = 0; i < 14; i++) {
        const a = await post(strict.url, call('account.login', { user_id: unique('spray'), password: 'password-xx' }), { 'x-forwarded-for': `198.51.100.${i}, 203.0.113.7` });
        statuses.push(a.status);
      }
      expect(statuses.slice(0, 10)).toEqual(Array(10).fill(401));
      expect(statuses.slice(10)).toEqual(Array(4).fill(429));
    } finally {
      await strict.close();
    }
  });

  it('IPv6 addresses count per /64: rotating through one network meets the address budget', async () => {
    const strict = await startTestServer({ trustProxy: true, 'login.maxFailuresPerIp': 10 });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 14; i++) {
        const a = await post(strict.url, call('account.login', { user_id: unique('v6'), password: 'password-xx' }), { 'x-forwarded-for': `2001:db8:1:2:${(i + 1).toString(16)}::${i + 7}` });
        statuses.push(a.status);
      }
      expect(statuses.slice(0, 10)).toEqual(Array(10).fill(401));
      expect(statuses.slice(10)).toEqual(Array(4).fill(429));
      // Another /64 has its own budget, and ctx.ip stays the whole address.
      expect((await post(strict.url, call('account.login', { user_id: unique('v6'), password: 'password-xx' }), { 'x-forwarded-for': '2001:db8:1:3::1' })).status).toBe(401);
      expect(((await post(strict.url, call('peek'), { 'x-forwarded-for': '2001:db8:1:2::abcd' })).json as { ip: string }).ip).toBe('2001:db8:1:2::abcd');
    } finally {
      await strict.close();
    }
  });

  it('--trust-proxy reads as a flag, a hop count or a list, from flags and the environment', async () => {
    const { loadConfig, parseArgs } = await import('../src/config.ts');
    const flag = (argv: string[]) => loadConfig({ argvOptions: parseArgs(argv).options, env: {}, cwd: ROOT }).trustProxy;
    expect(flag([])).toBe(false);
    expect(flag(['--trust-proxy'])).toBe(true);
    expect(flag(['--no-trust-proxy'])).toBe(false);
    expect(flag(['--trust-proxy=2'])).toBe(2);
    expect(flag(['--trust-proxy=loopback,10.0.0.0/8'])).toBe('loopback,10.0.0.0/8');
    expect(loadConfig({ env: { SIMPLEAPI_TRUST_PROXY: '3' }, cwd: ROOT }).trustProxy).toBe(3);
    expect(() => flag(['--trust-proxy=a, b'])).toThrow(/--trust-proxy/);
    expect(() => flag(['--trust-proxy=10.0.0.0/8,proxy.example'])).toThrow(/--trust-proxy \(SIMPLEAPI_TRUST_PROXY\): invalid IP address: proxy.example/);
  });

  it('as a hop count or a list of proxy addresses and CIDRs', async () => {
    const hops = await startTestServer({ trustProxy: 2 });
    const list = await startTestServer({ trustProxy: '127.0.0.1,10.0.0.0/8' });
    try {
      const headers = { 'x-forwarded-for': '6.6.6.6, 203.0.113.9, 10.1.2.3' };
      expect(((await post(hops.url, call('peek'), headers)).json as { ip: string }).ip).toBe('203.0.113.9');
      expect(((await post(list.url, call('peek'), headers)).json as { ip: string }).ip).toBe('203.0.113.9');
      expect(((await post(list.url, call('peek'), { 'x-forwarded-for': '10.1.1.1, 10.2.2.2' })).json as { ip: string }).ip).toBe('10.1.1.1');
    } finally {
      await hops.close();
      await list.close();
    }
  });
});

describe('3. account.password checks old_password under the throttle', () => {
  it('a signed batch of 20 guesses reaches the check 5 times; the right one among them is refused', async () => {
    const grant = await createAccount(server.url, unique('stolen'), 'the-right-one');
    const guesses = Array.from({ length: 20 }, (_, i) => ({
      jsonrpc: '2.0',
      method: 'account.password',
      params: { old_password: i === 12 ? 'the-right-one' : `guess-${i}-xxxx`, new_password: 'attacker-owns-it' },
      id: i,
    }));
    const body = JSON.stringify(guesses);
    const a = await post(server.url, body, { ...v2Headers(grant, body), ...from('198.51.100.77') });
    const codes = (a.json as { id: number; error?: { data: { code: string } } }[]).sort((x, y) => x.id - y.id).map((r) => r.error?.data.code ?? 'ok');
    expect(codes.filter((c) => c === 'Forbidden')).toHaveLength(5);
    expect(codes.filter((c) => c === 'TooManyRequests')).toHaveLength(15);
    expect(codes[12]).toBe('TooManyRequests');
    // The password did not change: the owner still logs in with it.
    expect((await post(server.url, call('account.login', { user_id: grant.user_id, password: 'the-right-one' }), from('192.0.2.200'))).status).toBe(200);
  });
});

describe('4. no remote lockout', () => {
  it("a stranger's wrong passwords do not lock the owner out from another address", async () => {
    const userId = unique('victim');
    await createAccount(server.url, userId, 'owner-password');
    for (let i = 0; i < 8; i++) await post(server.url, call('account.login', { user_id: userId, password: `wrong-${i}-xxxx` }), from('198.51.100.66'));
    const attacker = await post(server.url, call('account.login', { user_id: userId, password: 'owner-password' }), from('198.51.100.66'));
    expect(attacker.status).toBe(429);
    expect(Number(attacker.headers.get('retry-after'))).toBeGreaterThan(0);
    const owner = await post(server.url, call('account.login', { user_id: userId, password: 'owner-password' }), from('192.0.2.55'));
    expect(owner.status).toBe(200);
  });

  it('8 concurrent right-password logins from one address all succeed', async () => {
    const userId = unique('busy');
    await createAccount(server.url, userId, 'owner-password');
    const answers = await Promise.all(Array.from({ length: 8 }, () => post(server.url, call('account.login', { user_id: userId, password: 'owner-password' }), from('192.0.2.88'))));
    expect(answers.map((a) => a.status)).toEqual(Array(8).fill(200));
  });

  it('a right password ends the run of failures; the per-user ceiling holds across addresses', async () => {
    const strict = await startTestServer({ trustProxy: 1, 'login.maxFailures': 3, 'login.maxFailuresPerUser': 6 });
    try {
      const userId = unique('ceiling');
      await createAccount(strict.url, userId, 'owner-password');
      const login = (password: string, address: string) => post(strict.url, call('account.login', { user_id: userId, password }), from(address));
      for (let i = 0; i < 2; i++) expect((await login('wrong-password', '192.0.2.1')).status).toBe(401);
      expect((await login('owner-password', '192.0.2.1')).status).toBe(200);
      // The pair's run was reset: three more wrong ones before the pair is held.
      for (let i = 0; i < 3; i++) expect((await login('wrong-password', '192.0.2.1')).status).toBe(401);
      expect((await login('wrong-password', '192.0.2.1')).status).toBe(429);
      // Five failures so far for the user; one more from elsewhere reaches the ceiling of 6.
      expect((await login('wrong-password', '192.0.2.2')).status).toBe(401);
      expect((await login('owner-password', '192.0.2.3')).status).toBe(429);
    } finally {
      await strict.close();
    }
  });
});

describe('5. signing oracles: nothing before the MAC verifies is signed', () => {
  let grant: Grant;
  beforeAll(async () => {
    grant = await createAccount(server.url, unique('oracle'));
  });

  it('a known session with a stale timestamp and a wrong MAC: 401 for the MAC, unsigned, no server_time', async () => {
    const a = await postV2(server.url, grant, whoami, { timestamp: String(nowSeconds() - 3600), hmac: 'f'.repeat(64) });
    expect(a.status).toBe(401);
    expect(a.json).toEqual({ error: { code: 'BadSignature', message: 'x-hmac does not match the request', type: 'auth' } });
    expect(a.headers.get('x-hmac')).toBeNull();
    expect(a.text).not.toContain('server_time');
  });

  it('malformed timestamps and nonces of a known session are answered unsigned, whatever nonce was sent', async () => {
    for (const o of [{ timestamp: 'soon' }, { nonce: 'short' }, { nonce: 'x'.repeat(65) }]) {
      const a = await postV2(server.url, grant, whoami, o);
      expect(a.status).toBe(401);
      expect(a.headers.get('x-hmac')).toBeNull();
    }
  });

  it('a store failure after the MAC verified is answered signed (§6: from step 3 on), one before it unsigned', async () => {
    // A store that stops answering on demand, at the nonce claim (step 4) or the session read (step 1).
    // `throws`: it throws instead of rejecting (the embedded store answers these two at once, so
    // the core calls them outside any async function).
    let failAt: 'nonce' | 'session' | null = null;
    let throws = false;
    const down = () => new ApiError('Unavailable', 'The database does not answer; try again shortly', { retryAfter: 5 });
    const fail = () => {
      if (throws) throw down();
      return Promise.reject(down());
    };
    class FlakyStore extends MemoryStore {
      override rememberNonce(...args: Parameters<MemoryStore['rememberNonce']>) {
        return failAt === 'nonce' ? fail() : super.rememberNonce(...args);
      }
      override getSession(...args: Parameters<MemoryStore['getSession']>) {
        return failAt === 'session' ? fail() : super.getSession(...args);
      }
    }
    const flaky = await startTestServer({}, new FlakyStore());
    try {
      const mine = await createAccount(flaky.url, unique('flaky'));
      for (const thrown of [false, true]) {
        throws = thrown;
        failAt = 'nonce';
        const atNonce = await postV2(flaky.url, mine, whoami);
        expect(atNonce.status).toBe(503);
        expect(atNonce.headers.get('retry-after')).toBe('5');
        expect(atNonce.responseSigned).toBe(true);
        const job = await getV2(flaky.url, `/jobs/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}`, mine);
        expect(job.status).toBe(503);
        expect(job.signed).toBe(true);
        failAt = 'session';
        const atSession = await postV2(flaky.url, mine, whoami);
        expect(atSession.status).toBe(503);
        expect(atSession.headers.get('x-hmac')).toBeNull();
        failAt = null;
        expect((await postV2(flaky.url, mine, whoami)).status).toBe(200);
      }
    } finally {
      await flaky.close();
    }
  });

  it('a store answering with thenables that are not native promises is waited for: a replayed nonce is still refused', async () => {
    // `await` accepts any thenable; the core's checks of the store's answers must too, or a
    // thenable would read as "fresh" (a replay runs) and as a session record.
    const later = <T>(value: T | Promise<T>): PromiseLike<T> => ({ then: (ok, ko) => Promise.resolve(value).then(ok, ko) });
    class ThenableStore extends MemoryStore {
      override rememberNonce(...args: Parameters<MemoryStore['rememberNonce']>) {
        return later(super.rememberNonce(...args)) as unknown as ReturnType<MemoryStore['rememberNonce']>;
      }
      override getSession(...args: Parameters<MemoryStore['getSession']>) {
        return later(super.getSession(...args)) as unknown as ReturnType<MemoryStore['getSession']>;
      }
    }
    const thenable = await startTestServer({}, new ThenableStore());
    try {
      const mine = await createAccount(thenable.url, unique('thenable'));
      const first = await postV2(thenable.url, mine, whoami, { nonce: 'thenable-nonce-0001' });
      expect(first.status).toBe(200);
      expect(first.responseSigned).toBe(true);
      const replay = await postV2(thenable.url, mine, whoami, { nonce: 'thenable-nonce-0001' });
      expect(replay.status).toBe(401);
      expect((replay.json as { error: { message: string } }).error.message).toMatch(/already used/);
    } finally {
      await thenable.close();
    }
  });

  it('a 401 with server_time signed under another key leaves the client clock alone', async () => {
    const other = await createAccount(server.url, unique('other'));
    const { createHmac } = await import('node:crypto');
    const forged: typeof fetch = async (_input, init) => {
      const nonce = new Headers(init?.headers).get('x-nonce') ?? '';
      const body = JSON.stringify({ error: { code: 'BadSignature', message: 'skew', type: 'auth', details: [{ server_time: nowSeconds() + 330 }] } });
      const mac = createHmac('sha256', Buffer.from(other.session_key, 'base64url')).update(`simpleapi-v2-response\n${nonce}\n${body}`).digest('hex');
      return new Response(body, { status: 401, headers: { 'content-type': 'application/json', 'x-hmac': mac } });
    };
    const client = new SimpleApiClient({ url: server.url, fetch: forged });
    client.useSession(grant);
    await expect(client.call('whoami')).rejects.toThrow();
    expect(client.clockOffset).toBe(0);
  });
});

describe('7. user_ids are identifiers', () => {
  it('look-alikes of an existing id are refused with InvalidParams saying why, or are the same account', async () => {
    const base = `ada${++counter}`;
    await createAccount(server.url, base, 'password-one');
    const refused: [string, RegExp][] = [
      [`${base}\u200b`, /invisible or formatting character \(U\+200B/],
      [`a\u200d${base.slice(1)}`, /invisible or formatting character \(U\+200D/],
      [`\u0430${base.slice(1)}`, /must not mix letters of Cyrillic and Latin/],
      [`${base} `, /must not begin or end with a space/],
      [` ${base}`, /must not begin or end with a space/],
      [`\u202e${base}`, /invisible or formatting character \(U\+202E/],
      [`${base}\u0000`, /control character \(U\+0000/],
      [`${base}\n`, /control character \(U\+000A/],
      [`${base}\u00a0x`, /a space other than U\+0020/],
      // Compatibility forms (RFC 8265 disallows them): mathematical, circled, ligature, superscript.
      [`\u{1D68A}${base.slice(1)}`, /compatibility form of another character \(U\+1D68A at character 1, which stands for "a"\)/u],
      [`\u24d0${base.slice(1)}`, /compatibility form .*U\+24D0/],
      [`\ufb01${base}`, /compatibility form .*U\+FB01.*"fi"/],
      [`\u1d43${base.slice(1)}`, /compatibility form .*U\+1D43/],
      // Lisu's ꓮ and Cherokee's Ꭺ pass for Latin A.
      [`\ua4ee${base.slice(1)}`, /must not mix letters of Lisu and Latin/],
      [`\u13aa${base.slice(1)}`, /must not mix letters of Cherokee and Latin/],
    ];
    for (const [id, why] of refused) {
      const a = await post(server.url, call('account.create', { user_id: id, password: 'password-one' }), from('203.0.113.7'));
      expect(a.status, JSON.stringify(id)).toBe(400);
      const error = (a.json as { error: { code: string; message: string; details: { path: string; message: string }[] } }).error;
      expect(error.code).toBe('InvalidParams');
      expect(error.message).toMatch(why);
      expect(error.details).toEqual([{ path: '/user_id', message: error.message }]);
    }
    // Width and case fold to the same account: Conflict on create, the same user on login. (From an
    // address of its own, as every create here: 127.0.0.1's account.create budget goes to the other blocks.)
    const fullWidth = [...base].map((c) => String.fromCodePoint(c.codePointAt(0)! + 0xfee0)).join('');
    for (const id of [fullWidth, base.toUpperCase()]) {
      expect((await post(server.url, call('account.create', { user_id: id, password: 'password-one' }), from('203.0.113.7'))).status).toBe(409);
    }
    const login = await post(server.url, call('account.login', { user_id: fullWidth, password: 'password-one' }), from('192.0.2.7'));
    expect((login.json as Grant).user_id).toBe(base);
  });

  it('existing ids keep their key; an account stored under the old key of a width form still logs in', async () => {
    expect(userKeyOf('Ada.Lovelace@Example.com')).toBe('ada.lovelace@example.com');
    expect(userKeyOf('Ĉu Ĝi')).toBe('Ĉu Ĝi'.normalize('NFC').toLowerCase());
    const store = new MemoryStore();
    const legacy = await startTestServer({}, store);
    try {
      const { hashPassword } = await import('../src/core/passwords.ts');
      // What an earlier release stored for a full-width id: NFC and lower case only.
      await store.createAccount({ userKey: 'ｏｌｄ', userId: 'ＯＬＤ', password: await hashPassword('password-one', { N: 1024, r: 8, p: 1 }), created: 1 });
      const a = await post(legacy.url, call('account.login', { user_id: 'ＯＬＤ', password: 'password-one' }));
      expect(a.status).toBe(200);
      expect((a.json as Grant).user_id).toBe('ＯＬＤ');
    } finally {
      await legacy.close();
    }
  });
});

describe('8. session state keys are data', () => {
  const keys = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'];
  const roundTrip = async (store: Store) => {
    const shipped = await startTestServer({ methodsDir: SHIPPED_METHODS }, store);
    try {
      const grant = await createAccount(shipped.url, unique('prefs'));
      for (const key of keys) {
        const a = await postV2(shipped.url, grant, call('prefs.set', { key, value: { v: key } }));
        expect(a.status, key).toBe(200);
      }
      const got = await postV2(shipped.url, grant, call('prefs.get'));
      expect(JSON.parse(got.text)).toEqual(Object.fromEntries(keys.map((k) => [k, { v: k }])));
      expect(Object.keys(JSON.parse(got.text)).sort()).toEqual([...keys].sort());
    } finally {
      await shipped.close();
    }
  };
  it('embedded store: __proto__, constructor and friends are stored and returned', () => roundTrip(new MemoryStore()));
  it.skipIf(!hasMongo)('MongoDB: the same', async () => {
    const store = await openMongoStore(uniqueDbName('prefs'));
    try {
      await roundTrip(store);
    } finally {
      await store.db.dropDatabase();
      await store.close();
    }
  });
  it.skipIf(!hasMySql)('MySQL: the same', async () => {
    const db = uniqueMySqlDb('prefs');
    const store = await openMySqlStore(db);
    try {
      await roundTrip(store);
    } finally {
      await store.close();
      await dropMySqlDb(db);
    }
  });
});

describe('9. CLI passwords stay off the command line', () => {
  const cli = (args: string[], env: NodeJS.ProcessEnv, stdin?: string) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
      const proc = spawn(process.execPath, [resolve(ROOT, 'bin/simpleapi.js'), ...args], { cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } });
      let stdout = '';
      let stderr = '';
      proc.stdout.on('data', (c) => (stdout += c));
      proc.stderr.on('data', (c) => (stderr += c));
      proc.on('close', (code) => done({ code, stdout, stderr }));
      if (stdin !== undefined) proc.stdin.end(stdin);
      else proc.stdin.end();
    });

  it('from --password-stdin or SIMPLEAPI_PASSWORD; --password works with a warning; none is an error', async () => {
    const userId = unique('cli');
    // From an address of its own: the other blocks' creates used up 127.0.0.1's account.create budget.
    expect((await post(server.url, call('account.create', { user_id: userId, password: 'cli-password' }), from('203.0.113.9'))).status).toBe(200);
    const base = ['call', 'account.session', `--url=${server.url}`, `--user=${userId}`];
    const piped = await cli([...base, '--password-stdin'], {}, 'cli-password\n');
    expect(piped.code).toBe(0);
    expect(JSON.parse(piped.stdout)).toMatchObject({ user_id: userId });
    expect(piped.stderr).toBe('');
    const env = await cli(base, { SIMPLEAPI_PASSWORD: 'cli-password' });
    expect(env.code).toBe(0);
    expect(env.stderr).toBe('');
    const argv = await cli([...base, '--password=cli-password'], {});
    expect(argv.code).toBe(0);
    expect(argv.stderr).toContain('warning: a password given with --password is visible to other users');
    const none = await cli(base, {});
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('--user needs a password');
  });

  it('params holding a password come from standard input with -; on the command line they are warned about', async () => {
    const own = await startTestServer({});
    try {
      const userId = unique('clip');
      const piped = await cli(['call', 'account.create', '-', `--url=${own.url}`], {}, JSON.stringify({ user_id: userId, password: 'piped-password' }));
      expect(piped.code).toBe(0);
      expect(piped.stderr).toBe('');
      expect(JSON.parse(piped.stdout)).toMatchObject({ user_id: userId });
      const argv = await cli(['call', 'account.password', JSON.stringify({ old_password: 'piped-password', new_password: 'second-password' }), `--url=${own.url}`, `--user=${userId}`], { SIMPLEAPI_PASSWORD: 'piped-password' });
      expect(argv.code).toBe(0);
      expect(argv.stderr).toContain('warning: the params hold "old_password", which is visible to other users on the command line');
      const both = await cli(['call', 'account.password', '-', `--url=${own.url}`, `--user=${userId}`, '--password-stdin'], {}, 'second-password\n');
      expect(both.code).toBe(2);
      expect(both.stderr).toContain('both read standard input');
      const bad = await cli(['call', 'echo', '-', `--url=${own.url}`], {}, '{nope');
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('the params on standard input are not valid JSON');
    } finally {
      await own.close();
    }
  });
});

describe('10. a loopback server answers loopback Host names only', () => {
  const raw = (url: string, method: string, path: string, host: string, body = '') =>
    new Promise<{ status: number; text: string }>((done, fail) => {
      const u = new URL(url);
      const req = request({ host: '127.0.0.1', port: u.port, method, path, headers: { host, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => done({ status: res.statusCode!, text }));
      });
      req.on('error', fail);
      req.end(body);
    });

  it('421 for another name on the endpoint, the console and /health; loopback names and --allowed-hosts pass', async () => {
    const port = new URL(server.url).port;
    const body = call('sum', [1, 2]);
    for (const [method, path] of [['POST', '/'], ['GET', '/docs'], ['GET', '/health'], ['GET', '/jobs/x']] as const) {
      const a = await raw(server.url, method, path, `rebind.example:${port}`, method === 'POST' ? body : '');
      expect(a.status, path).toBe(421);
      expect(JSON.parse(a.text).error).toMatchObject({ code: 'MisdirectedRequest' });
      expect(JSON.parse(a.text).error.message).toContain("'rebind.example:");
    }
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, 'app.localhost']) {
      expect((await raw(server.url, 'POST', '/', host, body)).status, host).toBe(200);
    }
    const allowing = await startTestServer({ allowedHosts: 'dev.test,api.test:9999' });
    try {
      expect((await raw(allowing.url, 'POST', '/', 'dev.test:1234', body)).status).toBe(200);
      expect((await raw(allowing.url, 'POST', '/', 'api.test:9999', body)).status).toBe(200);
      expect((await raw(allowing.url, 'POST', '/', 'api.test:1', body)).status).toBe(421);
    } finally {
      await allowing.close();
    }
  });
});
