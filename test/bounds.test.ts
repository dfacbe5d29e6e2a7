/**
 * Bounds on what one caller can grow, over real HTTP: session state size, sessions per user,
 * answer size, queued jobs, streams per address.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, startTestServer, type TestServer } from './helpers/server.ts';
import { createAccount, postV2 } from './helpers/signed.ts';

const call = (method: string, parameters: unknown = {}) => JSON.stringify({ method, parameters });

describe('session state and sessions per user', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ 'session.maxState': 1000, 'session.maxPerUser': 3 });
  });
  afterAll(() => server.close());

  it('refuses a saveState() over the cap with PayloadTooLarge and its size, and keeps the stored state', async () => {
    const grant = await createAccount(server.url, 'state-cap');
    expect((await postV2(server.url, grant, call('state.add', { item: 'small' }))).json).toEqual(['small']);
    const big = await postV2(server.url, grant, call('state.add', { item: 'x'.repeat(2000) }));
    expect(big.status).toBe(413);
    const error = (big.json as { error: { code: string; message: string; details: { size: number; limit: number }[] } }).error;
    expect(error.code).toBe('PayloadTooLarge');
    expect(error.message).toContain('over the limit of 1000 bytes');
    expect(error.details[0]!.limit).toBe(1000);
    expect(error.details[0]!.size).toBeGreaterThan(2000);
    expect((await postV2(server.url, grant, call('state.get'))).json).toEqual({ items: ['small'] });
  });

  it('a user holds at most session.maxPerUser sessions: a new one ends the least recently used', async () => {
    const first = await createAccount(server.url, 'many-sessions');
    const login = () => post(server.url, call('account.login', { user_id: 'many-sessions', password: 'password-one' })).then((a) => a.json as typeof first);
    const second = await login();
    const third = await login();
    expect((await postV2(server.url, first, call('whoami'))).status).toBe(200);
    const fourth = await login();
    expect((await postV2(server.url, first, call('whoami'))).status).toBe(401);
    for (const g of [second, third, fourth]) expect((await postV2(server.url, g, call('whoami'))).status).toBe(200);
  });
});
