/** hmac.scheme v1: SimpleAPIServer clients keep working, end to end (docs/protocol.md §6 v1). */
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimpleApiClient } from '../src/client/index.ts';
import { post, spawnServer, startTestServer, type TestServer } from './helpers/server.ts';
import { postV1, type Grant } from './helpers/signed.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ 'hmac.scheme': 'v1' });
});
afterAll(() => server.close());

const sha1 = (key: string, text: string) => createHmac('sha1', Buffer.from(key, 'utf8')).update(text, 'utf8').digest('hex');
const whoami = '{"method":"whoami","parameters":{}}';

describe('v1 signing', () => {
  it('create is signed with HMAC-SHA1(user_id, body); calls signed that way are accepted and answered signed', async () => {
    const a = await post(server.url, JSON.stringify({ method: 'account.create', parameters: { user_id: 'zoë@example.com', password: 'pässwörd-1' } }));
    expect(a.status).toBe(200);
    const grant = a.json as Grant;
    expect(a.headers.get('x-hmac')).toBe(sha1('zoë@example.com', a.text));
    const call = await postV1(server.url, grant.user_id, grant.session_id, whoami);
    expect(call.status).toBe(200);
    expect(call.json).toMatchObject({ userId: 'zoë@example.com' });
    expect(call.responseSigned).toBe(true);
  });

  it('a wrong MAC is BadSignature, unsigned (the MAC never verified)', async () => {
    const grant = (await post(server.url, JSON.stringify({ method: 'account.create', parameters: { user_id: 'v1-wrong', password: 'password-one' } }))).json as Grant;
    const bad = await postV1(server.url, grant.user_id, grant.session_id, whoami, { hmac: sha1('someone-else', whoami) });
    expect(bad.status).toBe(401);
    expect(bad.json).toEqual({ error: { code: 'BadSignature', message: 'x-hmac does not match the request', type: 'auth' } });
    expect(bad.responseSigned).toBe(false);
    expect(bad.headers.get('x-hmac')).toBeNull();
  });

  it("v1's known weakness: anyone who knows a user_id and a session id can sign (accepted when v1 is chosen)", async () => {
    const grant = (await post(server.url, JSON.stringify({ method: 'account.create', parameters: { user_id: 'v1-victim', password: 'password-one' } }))).json as Grant;
    // No session_key is involved: the MAC is computed from public facts only.
    const forged = await post(server.url, whoami, { 'x-session-id': grant.session_id, 'x-hmac': sha1('v1-victim', whoami) });
    expect(forged.status).toBe(200);
    // And a v1 request can be replayed as is: there is no timestamp or nonce.
    const again = await post(server.url, whoami, { 'x-session-id': grant.session_id, 'x-hmac': sha1('v1-victim', whoami) });
    expect(again.status).toBe(200);
  });

  it('the project client speaks v1', async () => {
    const client = new SimpleApiClient({ url: server.url, scheme: 'v1' });
    await client.create('v1-client', 'password-one');
    expect(await client.call('whoami')).toMatchObject({ userId: 'v1-client' });
    expect(await client.batch([{ method: 'sum', params: [1, 1] }])).toEqual([{ ok: true, result: 2 }]);
    await client.logout();
    const again = new SimpleApiClient({ url: server.url, scheme: 'v1' });
    await again.login('V1-CLIENT', 'password-one');
    expect(await again.call('whoami')).toMatchObject({ userId: 'v1-client' });
  });

  it('the server warns at start-up when v1 is chosen', async () => {
    const s = await spawnServer(['--port=0', '--hmac-scheme=v1']);
    try {
      await expect.poll(() => s.stdout.join('\n')).toContain('hmac.scheme is v1');
      const warning = s.stdout.map((l) => JSON.parse(l)).find((l) => String(l.msg).includes('hmac.scheme is v1'));
      expect(warning.level).toBe(40);
    } finally {
      await s.stop();
    }
  });
});
