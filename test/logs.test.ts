/** No password, session key or signature in any log line at any level, over a whole session's life. */
import { describe, expect, it } from 'vitest';
import { SimpleApiClient } from '../src/client/index.ts';
import { startTestServer } from './helpers/server.ts';
import { postV2 } from './helpers/signed.ts';

describe('logs of a full session', () => {
  it('hold none of the secrets that went over the wire', async () => {
    const server = await startTestServer({ logLevel: 'trace', 'login.maxFailures': 2 });
    const secrets: string[] = [];
    try {
      const client = new SimpleApiClient({ url: server.url });
      const grant = await client.create('logged-user', 'first-secret-password');
      secrets.push('first-secret-password', grant.session_key);
      await client.call('whoami');
      await client.call('account.password', { old_password: 'first-secret-password', new_password: 'second-secret-password' });
      secrets.push('second-secret-password');
      await client.login('logged-user', 'wrong-secret-password').catch(() => {});
      secrets.push('wrong-secret-password');
      const login = await client.login('logged-user', 'second-secret-password');
      secrets.push(login.session_key);
      const signed = await postV2(server.url, login, '{"method":"echo","parameters":{"password":"in-params-secret"}}');
      secrets.push(signed.headers.get('x-hmac')!, 'in-params-secret');
      await client.logout();
      // One line per request at least: the search below ran over real output.
      expect(server.logs.lines.filter((l) => l.msg === "request").length).toBe(7);
      const all = server.logs.raw.join('\n');
      for (const secret of secrets) expect(all, secret).not.toContain(secret);
      // Nor the request MACs, which the client made: none of the logged lines carries a 64-hex value.
      expect(all).not.toMatch(/[0-9a-f]{64}/);
    } finally {
      await server.close();
    }
  });
});
