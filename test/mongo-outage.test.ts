/**
 * The database stops under a running server and comes back (issue: outages). Uses a FerretDB of
 * its own, started and stopped with .ci/ferretdb.sh, so the shared test database is not touched.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasMongo, uniqueDbName } from './helpers/mongo.ts';
import { freePort, post, ROOT, spawnServer, type Spawned } from './helpers/server.ts';
import { createAccount, postV2, type Grant } from './helpers/signed.ts';

const run = promisify(execFile);
const script = resolve(ROOT, '.ci/ferretdb.sh');
const env = { ...process.env, FERRETDB_STATE: mkdtempSync(join(tmpdir(), 'simpleapi-outage-')), FERRETDB_PG_DB: 'simpleapi_outage' };


const session = JSON.stringify({ method: 'account.session', parameters: {} });

describe.skipIf(!hasMongo)('a database outage under a running server', () => {
  let port: number;
  let url: string;
  let server: Spawned;
  beforeAll(async () => {
    port = await freePort();
    url = (await run('bash', [script, 'start', String(port)], { env })).stdout.trim();
    server = await spawnServer(['--port=0', `--db-url=${url}`, `--db-name=${uniqueDbName('outage')}`]);
  }, 300_000);
  afterAll(async () => {
    await server?.stop();
    await run('bash', [script, 'stop'], { env });
  });

  it('answers 503 with Retry-After while down, keeps public methods up, and recovers by itself', async () => {
    const grant: Grant = await createAccount(server.url!, 'outage-user@example.com', 'password-one');
    expect((await postV2(server.url!, grant, session)).status).toBe(200);

    await run('bash', [script, 'stop'], { env });

    const signed = await postV2(server.url!, grant, session);
    expect(signed.status).toBe(503);
    expect(signed.headers.get('retry-after')).toBe('5');
    expect(signed.json).toEqual({ error: { code: 'Unavailable', message: 'The database does not answer; try again shortly', type: 'server' } });
    const rpc = await postV2(server.url!, grant, JSON.stringify({ jsonrpc: '2.0', method: 'account.session', id: 1 }));
    expect(rpc.status).toBe(503);
    expect(rpc.json).toMatchObject({ jsonrpc: '2.0', error: { code: -32050, data: { code: 'Unavailable', type: 'server' } }, id: null });
    const login = await post(server.url!, JSON.stringify({ method: 'account.login', parameters: { user_id: 'outage-user@example.com', password: 'password-one' } }));
    expect(login.status).toBe(503);
    expect(login.headers.get('retry-after')).toBe('5');

    expect((await post(server.url!, '{"method":"math.sum","parameters":[1,2]}')).json).toBe(3);
    const health = await fetch(new URL('/health', server.url!));
    expect(health.status).toBe(503);
    expect(await health.json()).toEqual({ status: 'degraded', db: 'down' });
    expect(server.proc.exitCode).toBeNull();

    await run('bash', [script, 'start', String(port)], { env });

    await expect.poll(async () => (await fetch(new URL('/health', server.url!))).status, { timeout: 30_000, interval: 500 }).toBe(200);
    // Written before the outage, still there: the session and the account.
    const after = await postV2(server.url!, grant, session);
    expect(after.status).toBe(200);
    expect(after.json).toMatchObject({ user_id: 'outage-user@example.com', session_id: grant.session_id });
    const relogin = await post(server.url!, JSON.stringify({ method: 'account.login', parameters: { user_id: 'outage-user@example.com', password: 'password-one' } }));
    expect(relogin.status).toBe(200);
    expect(server.proc.exitCode).toBeNull();
  }, 120_000);
});
