/**
 * Many instances on one MySQL/MariaDB (PROTOCOL.md §5: "every instance that shares the database
 * honours every session"): separate server processes, as users run them. The same cases as on
 * MongoDB (mongo-instances.test.ts), plus the login throttle counted across instances.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { createConnection, type RowDataPacket } from 'mysql2/promise';
import { SimpleApiClient } from '../src/client/index.ts';
import { createMySqlDb, dropMySqlDb, hasMySql, mysqlUrlFor, uniqueMySqlDb } from './helpers/mysql.ts';
import { call, post, spawnServer, type Spawned } from './helpers/server.ts';
import { createAccount, freshNonce, postV2, type Grant } from './helpers/signed.ts';

const whoami = call('account.session');
const logLines = (s: Spawned) => s.stdout.map((l) => JSON.parse(l) as { msg: string; store?: string });

describe.skipIf(!hasMySql)('two server processes on two ports, one MariaDB', () => {
  let a: Spawned;
  let b: Spawned;
  const db = uniqueMySqlDb('instances');
  beforeAll(async () => {
    await createMySqlDb(db);
    // --rate-limit-user=8: a user's calls counted in the database (each case's users make fewer).
    const args = ['--port=0', `--db-url=${mysqlUrlFor(db)}`, '--login-max-failures=3', '--rate-limit-user=8'];
    // Both at once: start-up takes the schema lock, so one creates the tables and the other finds them.
    [a, b] = await Promise.all([spawnServer(args), spawnServer(args)]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    if (hasMySql) await dropMySqlDb(db);
  });

  it('both say they serve on MySQL, and that jobs run in-process there', () => {
    for (const s of [a, b]) {
      expect(logLines(s).find((l) => l.msg.startsWith('listening'))!.store).toBe('mysql');
      expect(logLines(s).map((l) => l.msg)).toContain(
        'jobs: background methods run in this process: the mysql store has no shared job queue, so a job runs on the instance that accepted it, /jobs/<id> answers there only, and queued and running jobs do not survive its restart',
      );
    }
  });

  it('create on A, call on B; logout on B, then A refuses the session', async () => {
    const grant = await createAccount(a.url!, 'shared-user@example.com');
    const onB = await postV2(b.url!, grant, whoami);
    expect(onB.status).toBe(200);
    expect(onB.json).toMatchObject({ user_id: 'shared-user@example.com', session_id: grant.session_id });
    expect((await postV2(b.url!, grant, call('account.logout'))).json).toEqual({ ok: true });
    const onA = await postV2(a.url!, grant, whoami);
    expect(onA.status).toBe(401);
    expect(onA.json).toMatchObject({ error: { code: 'Unauthenticated' } });
  });

  it('a user_id taken on A is taken on B, in another case', async () => {
    await createAccount(a.url!, 'Taken@Example.com');
    const again = await post(b.url!, call('account.create', { user_id: 'taken@example.COM', password: 'password-two' }));
    expect(again.status).toBe(409);
    expect(again.json).toMatchObject({ error: { code: 'Conflict' } });
  });

  it('a nonce accepted by A is refused by B', async () => {
    const grant = await createAccount(a.url!, 'nonce-user@example.com');
    const nonce = freshNonce();
    expect((await postV2(a.url!, grant, whoami, { nonce })).status).toBe(200);
    const replay = await postV2(b.url!, grant, whoami, { nonce });
    expect(replay.status).toBe(401);
    expect(replay.json).toEqual({ error: { code: 'BadSignature', message: 'x-nonce was already used', type: 'auth' } });
  });

  it('failed logins on A and B add up: the third, on either, throttles both', async () => {
    await createAccount(a.url!, 'throttle-user@example.com');
    const login = (url: string, password: string) => post(url, call('account.login', { user_id: 'throttle-user@example.com', password }));
    expect((await login(a.url!, 'wrong-password')).status).toBe(401);
    expect((await login(b.url!, 'wrong-password')).status).toBe(401);
    expect((await login(a.url!, 'wrong-password')).status).toBe(401);
    for (const url of [b.url!, a.url!]) {
      const refused = await login(url, 'password-one');
      expect(refused.status).toBe(429);
      expect(refused.json).toMatchObject({ error: { code: 'TooManyRequests', type: 'rateLimit' } });
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    }
  });

  it("a user's calls on A and B count against one limit: the ninth, on either, is refused with Retry-After", async () => {
    const grant = await createAccount(a.url!, 'limited-user@example.com');
    for (let i = 0; i < 8; i++) expect((await postV2(i % 2 === 0 ? a.url! : b.url!, grant, whoami)).status).toBe(200);
    for (const url of [a.url!, b.url!]) {
      const refused = await postV2(url, grant, whoami);
      expect(refused.status).toBe(429);
      expect(refused.json).toMatchObject({ error: { code: 'TooManyRequests' } });
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    }
  });

  it('a password change on A ends the sessions on B', async () => {
    const first = await createAccount(a.url!, 'pw-user@example.com', 'password-one');
    const onB = (await post(b.url!, call('account.login', { user_id: 'PW-USER@example.com', password: 'password-one' }))).json as Grant;
    expect((await postV2(b.url!, onB, whoami)).status).toBe(200);
    expect((await postV2(a.url!, first, call('account.password', { old_password: 'password-one', new_password: 'password-two' }))).json).toEqual({ ok: true });
    expect((await postV2(b.url!, onB, whoami)).status).toBe(401);
    expect((await postV2(b.url!, first, whoami)).status).toBe(200);
  });

  it('notes live in the notes table through ctx.sql, seen from both instances', async () => {
    const onA = new SimpleApiClient({ url: a.url! });
    const grant = await onA.create('notes-user@example.com', 'password-one');
    const onB = new SimpleApiClient({ url: b.url! });
    onB.useSession(grant);
    expect(await onB.call('notes.list')).toEqual([]);
    const first = (await onA.call('notes.add', { text: 'hello from A' })) as { id: string };
    const second = (await onB.call('notes.add', { text: 'and from B' })) as { id: string };
    const listed = (await onA.call('notes.list')) as { id: string; text: string; created: number }[];
    expect(listed).toHaveLength(2);
    expect(listed).toEqual(expect.arrayContaining([first, second]));
    // Oldest first, ties by id.
    expect(listed).toEqual([...listed].sort((x, y) => x.created - y.created || (x.id < y.id ? -1 : 1)));
    const other = new SimpleApiClient({ url: b.url! });
    await other.create('other-notes-user@example.com', 'password-one');
    expect(await other.call('notes.list')).toEqual([]);
    await expect(other.call('notes.remove', { id: first.id })).rejects.toMatchObject({ code: 'NotFound', status: 404 });
    expect(await onB.call('notes.remove', { id: first.id })).toEqual({ ok: true });
    await expect(onA.call('notes.remove', { id: first.id })).rejects.toMatchObject({ code: 'NotFound', status: 404 });
    expect(await onA.call('notes.list')).toEqual([{ id: second.id, text: 'and from B', created: expect.any(Number) }]);
  });

  it('session state saved on A is read on B, and concurrent saves across instances conflict', async () => {
    const grant = await createAccount(a.url!, 'prefs-user@example.com');
    await postV2(a.url!, grant, call('prefs.set', { key: 'theme', value: 'dark' }));
    expect((await postV2(b.url!, grant, call('prefs.get'))).json).toEqual({ theme: 'dark' });
    const results = await Promise.all(['x', 'y', 'z', 'w'].map((key, i) => postV2(i % 2 ? a.url! : b.url!, grant, call('prefs.set', { key, value: i }))));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect((await postV2(a.url!, grant, call('prefs.get'))).json).toEqual({ theme: 'dark', x: 0, y: 1, z: 2, w: 3 });
  });

  // A first attempt's count rides on its nonce's claim, one transaction in one round trip
  // (RateLimits.countedClaim): the cases below pin what that transaction must and must not count.
  it('replayed nonces do not count against the user: the eight fresh calls pass, the ninth is refused', async () => {
    const grant = await createAccount(a.url!, 'replayed-user@example.com');
    const nonce = freshNonce();
    expect((await postV2(a.url!, grant, whoami, { nonce })).status).toBe(200);
    for (let i = 0; i < 10; i++) {
      const replay = await postV2(i % 2 === 0 ? a.url! : b.url!, grant, whoami, { nonce });
      expect(replay.status).toBe(401);
      expect(replay.json).toMatchObject({ error: { message: 'x-nonce was already used' } });
    }
    for (let i = 1; i < 8; i++) expect((await postV2(i % 2 === 0 ? a.url! : b.url!, grant, whoami)).status).toBe(200);
    expect((await postV2(b.url!, grant, whoami)).status).toBe(429);
  });

  it('a signed batch counts each entry once: of ten, eight run and two are refused', async () => {
    const grant = await createAccount(a.url!, 'batch-limited@example.com');
    const batch = JSON.stringify(Array.from({ length: 10 }, (_, id) => ({ jsonrpc: '2.0', id, method: 'account.session' })));
    const answer = await postV2(a.url!, grant, batch);
    expect(answer.status).toBe(200);
    const entries = answer.json as { result?: unknown; error?: { data?: { code?: string } } }[];
    expect(entries.filter((e) => e.result !== undefined)).toHaveLength(8);
    expect(entries.filter((e) => e.error?.data?.code === 'TooManyRequests')).toHaveLength(2);
    expect((await postV2(b.url!, grant, whoami)).status).toBe(429);
  });

  it('a signed body that runs no call counts nothing: after three, the user still has eight calls', async () => {
    const grant = await createAccount(a.url!, 'runs-nothing@example.com');
    for (const body of ['[]', '{"jsonrpc":"2.0","id":1}', '[1]']) {
      const answer = await postV2(a.url!, grant, body);
      expect(answer.responseSigned).toBe(true);
      expect(answer.status).not.toBe(429);
    }
    for (let i = 0; i < 8; i++) expect((await postV2(i % 2 === 0 ? a.url! : b.url!, grant, whoami)).status).toBe(200);
    expect((await postV2(a.url!, grant, whoami)).status).toBe(429);
  });

  it("a counter row locked elsewhere holds a call about a second, not InnoDB's 50 s: it runs on the usual path", async () => {
    const grant = await createAccount(a.url!, 'counter-locked@example.com');
    expect((await postV2(a.url!, grant, whoami)).status).toBe(200); // the user's counter row exists
    const sql = await createConnection(mysqlUrlFor(db));
    try {
      await sql.query('START TRANSACTION');
      const row = createHash('sha256').update('user:counter-locked@example.com').digest('hex');
      const [locked] = await sql.query<RowDataPacket[]>('SELECT `points` FROM simpleapi_rate_limits WHERE `key` = ? FOR UPDATE', [row]);
      expect(locked).toHaveLength(1);
      const started = Date.now();
      const answer = await postV2(b.url!, grant, whoami);
      expect(answer.status).toBe(200);
      expect(answer.responseSigned).toBe(true);
      expect(Date.now() - started).toBeLessThan(20_000);
    } finally {
      await sql.query('ROLLBACK');
      await sql.end();
    }
  }, 60_000);

  it('30 concurrent calls of one user on both instances: exactly 8 pass', async () => {
    const grant = await createAccount(b.url!, 'concurrent-limited@example.com');
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => postV2(i % 2 === 0 ? a.url! : b.url!, grant, whoami)));
    const statuses = answers.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(8);
    expect(statuses.filter((s) => s === 429)).toHaveLength(22);
  });

  it('a counter that fails rolls its claim back: the call runs on the usual path, its nonce is claimed once, no transaction stays open', async () => {
    const grant = await createAccount(a.url!, 'counter-away@example.com');
    const sql = await createConnection(mysqlUrlFor(db));
    try {
      await sql.query('RENAME TABLE simpleapi_rate_limits TO simpleapi_rate_limits_away');
      try {
        const nonce = freshNonce();
        // The joined INSERT fails after the nonce's: kept open, that nonce row would lock the
        // usual path's insert for innodb_lock_wait_timeout (50 s), and this call would not answer.
        const first = await postV2(a.url!, grant, whoami, { nonce });
        expect(first.status).toBe(200);
        expect(first.responseSigned).toBe(true);
        expect((await postV2(b.url!, grant, whoami, { nonce })).status).toBe(401);
        expect((await postV2(b.url!, grant, whoami)).status).toBe(200);
      } finally {
        await sql.query('RENAME TABLE simpleapi_rate_limits_away TO simpleapi_rate_limits');
      }
      const [open] = await sql.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX t JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id WHERE p.DB = ?', [db]);
      expect(Number(open[0]!.n)).toBe(0);
      expect((await postV2(a.url!, grant, whoami)).status).toBe(200);
    } finally {
      await sql.end();
    }
  });

  it('a background job runs on the instance that took it and is read there', async () => {
    const client = new SimpleApiClient({ url: a.url! });
    await client.create('jobs-user@example.com', 'password-one');
    expect(await client.call('reports.slow', { steps: 2, stepMs: 10 }, { wait: true })).toEqual({ steps: 2, by: 'jobs-user@example.com' });
  });
});
