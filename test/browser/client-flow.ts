// Runs the client's browser path against SIMPLEAPI_URL with Node built-ins hidden from it and
// node:crypto's global gone: only WebCrypto (globalThis.crypto) and fetch remain.
import { SimpleApiClient } from '../../src/client/index.ts';

const url = process.env.SIMPLEAPI_URL!;
const userId = `browser-${Date.now()}`;
const client = new SimpleApiClient({ url });
const grant = await client.create(userId, 'password-one');
const who = await client.call('whoami');
const batch = await client.batch([{ method: 'sum', params: [20, 22] }, { method: 'whoami' }]);
await client.logout();
let afterLogout = 'no error';
try {
  await new SimpleApiClient({ url }).call('whoami');
} catch (err) {
  afterLogout = (err as { code: string }).code;
}
const relogin = new SimpleApiClient({ url });
await relogin.login(userId, 'password-one');
process.stdout.write(JSON.stringify({ grantUser: grant.user_id, who, batch, afterLogout, relogged: (await relogin.call('whoami') as { userId: string }).userId }));
