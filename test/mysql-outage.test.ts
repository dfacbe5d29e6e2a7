/**
 * MariaDB stops under a running server and comes back. Uses a MariaDB of its own
 * (helpers/mariadb.ts), killed and restarted, so the machine's shared database is not touched.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimpleApiClient } from '../src/client/index.ts';
import { hasMariadbBinaries, startThrowAwayMariaDb, type ThrowAwayMariaDb } from './helpers/mariadb.ts';
import { post, spawnServer, type Spawned } from './helpers/server.ts';
import { createAccount, postV2, type Grant } from './helpers/signed.ts';

const session = JSON.stringify({ method: 'account.session', parameters: {} });
const UNAVAILABLE = { error: { code: 'Unavailable', message: 'The database does not answer; try again shortly', type: 'server' } };

describe.skipIf(!hasMariadbBinaries)('a MariaDB outage under a running server', () => {
  let mariadb: ThrowAwayMariaDb;
  let server: Spawned;
  beforeAll(async () => {
    mariadb = await startThrowAwayMariaDb();
    server = await spawnServer(['--port=0', `--db-url=${mariadb.url('simpleapi_outage')}`]);
  }, 180_000);
  afterAll(async () => {
    await server?.stop();
    await mariadb?.destroy();
  });

  it('answers 503 with Retry-After while down, keeps public methods up, and recovers by itself', async () => {
    const grant: Grant = await createAccount(server.url!, 'outage-user@example.com', 'password-one');
    expect((await postV2(server.url!, grant, session)).status).toBe(200);
    const notes = new SimpleApiClient({ url: server.url! });
    notes.useSession(grant);
    const kept = (await notes.call('notes.add', { text: 'written before' })) as { id: string };

    await mariadb.kill();

    const signed = await postV2(server.url!, grant, session);
    expect(signed.status).toBe(503);
    expect(signed.headers.get('retry-after')).toBe('5');
    expect(signed.json).toEqual(UNAVAILABLE);
    const rpc = await postV2(server.url!, grant, JSON.stringify({ jsonrpc: '2.0', method: 'account.session', id: 1 }));
    expect(rpc.status).toBe(503);
    expect(rpc.json).toMatchObject({ jsonrpc: '2.0', error: { code: -32050, data: { code: 'Unavailable', type: 'server' } }, id: null });
    const login = await post(server.url!, JSON.stringify({ method: 'account.login', parameters: { user_id: 'outage-user@example.com', password: 'password-one' } }));
    expect(login.status).toBe(503);
    expect(login.headers.get('retry-after')).toBe('5');
    expect(login.json).toEqual(UNAVAILABLE);

    expect((await post(server.url!, '{"method":"math.sum","parameters":[1,2]}')).json).toBe(3);
    const health = await fetch(new URL('/health', server.url!));
    expect(health.status).toBe(503);
    expect(await health.json()).toEqual({ status: 'degraded', db: 'down' });
    expect(server.proc.exitCode).toBeNull();

    await mariadb.start();

    await expect.poll(async () => (await fetch(new URL('/health', server.url!))).status, { timeout: 30_000, interval: 500 }).toBe(200);
    // Written before the outage, still there: the session, the account and the note.
    const after = await postV2(server.url!, grant, session);
    expect(after.status).toBe(200);
    expect(after.json).toMatchObject({ user_id: 'outage-user@example.com', session_id: grant.session_id });
    expect(await notes.call('notes.list')).toEqual([{ id: kept.id, text: 'written before', created: expect.any(Number) }]);
    const relogin = await post(server.url!, JSON.stringify({ method: 'account.login', parameters: { user_id: 'outage-user@example.com', password: 'password-one' } }));
    expect(relogin.status).toBe(200);
    expect(server.proc.exitCode).toBeNull();
  }, 120_000);
});
