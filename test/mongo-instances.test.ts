/**
 * Many instances on one MongoDB (docs/protocol.md §5: "every instance that shares the database honours
 * every session"): separate server processes, as users run them.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimpleApiClient } from '../src/client/index.ts';
import { hasMongo, MONGODB_URL, uniqueDbName } from './helpers/mongo.ts';
import { call, post, spawnServer, startTestServer, type Spawned } from './helpers/server.ts';
import { createAccount, freshNonce, postV2, type Grant } from './helpers/signed.ts';

const whoami = call('account.session');

describe.skipIf(!hasMongo)('two server processes on two ports, one database', () => {
  let a: Spawned;
  let b: Spawned;
  const dbName = uniqueDbName('instances');
  beforeAll(async () => {
    const args = ['--port=0', `--db-url=${MONGODB_URL}`, `--db-name=${dbName}`];
    [a, b] = await Promise.all([spawnServer(args), spawnServer(args)]);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('both say they serve on MongoDB', () => {
    for (const s of [a, b]) {
      const listening = s.stdout.map((l) => JSON.parse(l)).find((l) => String(l.msg).startsWith('listening'));
      expect(listening.store).toBe('mongodb');
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

  it('a nonce accepted by A is refused by B', async () => {
    const grant = await createAccount(a.url!, 'nonce-user@example.com');
    const nonce = freshNonce();
    expect((await postV2(a.url!, grant, whoami, { nonce })).status).toBe(200);
    const replay = await postV2(b.url!, grant, whoami, { nonce });
    expect(replay.status).toBe(401);
    expect(replay.json).toEqual({ error: { code: 'BadSignature', message: 'x-nonce was already used', type: 'auth' } });
  });

  it('a password change on A ends the sessions on B', async () => {
    const first = await createAccount(a.url!, 'pw-user@example.com', 'password-one');
    const onB = (await post(b.url!, call('account.login', { user_id: 'PW-USER@example.com', password: 'password-one' }))).json as Grant;
    expect((await postV2(b.url!, onB, whoami)).status).toBe(200);
    expect((await postV2(a.url!, first, call('account.password', { old_password: 'password-one', new_password: 'password-two' }))).json).toEqual({ ok: true });
    expect((await postV2(b.url!, onB, whoami)).status).toBe(401);
    expect((await postV2(b.url!, first, whoami)).status).toBe(200);
  });

  it('notes live in the notes collection through ctx.db, seen from both instances', async () => {
    const onA = new SimpleApiClient({ url: a.url! });
    const grant = await onA.create('notes-user@example.com', 'password-one');
    const onB = new SimpleApiClient({ url: b.url! });
    onB.useSession(grant);
    const added = (await onA.call('notes.add', { text: 'hello from A' })) as { id: string };
    expect(await onB.call('notes.list')).toEqual([{ id: added.id, text: 'hello from A', created: expect.any(Number) }]);
    expect(await onB.call('notes.remove', { id: added.id })).toEqual({ ok: true });
    await expect(onA.call('notes.remove', { id: added.id })).rejects.toMatchObject({ code: 'NotFound', status: 404 });
    expect(await onA.call('notes.list')).toEqual([]);
  });

  it('session state saved on A is read on B, and concurrent saves across instances conflict', async () => {
    const grant = await createAccount(a.url!, 'prefs-user@example.com');
    await postV2(a.url!, grant, call('prefs.set', { key: 'theme', value: 'dark' }));
    expect((await postV2(b.url!, grant, call('prefs.get'))).json).toEqual({ theme: 'dark' });
    const results = await Promise.all(['x', 'y', 'z', 'w'].map((key, i) => postV2(i % 2 ? a.url! : b.url!, grant, call('prefs.set', { key, value: i }))));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect((await postV2(a.url!, grant, call('prefs.get'))).json).toEqual({ theme: 'dark', x: 0, y: 1, z: 2, w: 3 });
  });
});

describe('on the embedded store', () => {
  it('ctx.db is null and a method that needs it says which setting to change', async () => {
    const server = await startTestServer({ methodsDir: (await import('./helpers/server.ts')).SHIPPED_METHODS });
    try {
      const client = new SimpleApiClient({ url: server.url });
      await client.create('embedded-notes', 'password-one');
      await expect(client.call('notes.add', { text: 'x' })).rejects.toMatchObject({
        code: 'DatabaseRequired',
        status: 501,
        type: 'server',
        message: 'This method needs a database: start the server with --db-url (db.url in server.conf.json)',
      });
    } finally {
      await server.close();
    }
  });
});

/** POSTs on a fresh connection each time, so the cluster spreads them over workers. */
function postFresh(url: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent: false, headers: { 'content-type': 'application/json', connection: 'close', ...headers } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe.skipIf(!hasMongo)('--workers=2', () => {
  it('both workers answer, and a session works across them', async () => {
    const server = await spawnServer(['--port=0', '--workers=2', `--db-url=${MONGODB_URL}`, `--db-name=${uniqueDbName('workers')}`]);
    try {
      const grant = await createAccount(server.url!, 'worker-user@example.com');
      const { v2Headers } = await import('./helpers/signed.ts');
      for (let i = 0; i < 20; i++) {
        const answer = await postFresh(server.url!, whoami, v2Headers(grant, whoami));
        expect(answer.status).toBe(200);
      }
      await expect
        .poll(() => new Set(server.stdout.map((l) => JSON.parse(l)).filter((l) => l.msg === 'request' && l.method === 'account.session').map((l) => l.worker)).size, { timeout: 5000 })
        .toBe(2);
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });
});
