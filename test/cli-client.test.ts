/** `simpleapi call` and `simpleapi createuser`, run as commands against real servers. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasMongo, MONGODB_URL, uniqueDbName } from './helpers/mongo.ts';
import { runCli, spawnServer, type Spawned } from './helpers/server.ts';

describe('simpleapi call', () => {
  let server: Spawned;
  beforeAll(async () => {
    server = await spawnServer(['--port=0']);
  });
  afterAll(() => server.stop());

  it('calls a public method and prints the result as JSON', async () => {
    const { code, stdout } = await runCli(['call', 'math.sum', '[1, 2, 3.5]', `--url=${server.url}`]);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toBe(6.5);
  });

  it('logs in, signs, and prints; exits non-zero with the error printed', async () => {
    const created = await runCli(['call', 'account.create', '{"user_id":"cli-user","password":"password-one"}', `--url=${server.url}`]);
    expect(created.code).toBe(0);
    const a = await runCli(['call', 'account.session', `--url=${server.url}`, '--user=cli-user'], { SIMPLEAPI_PASSWORD: 'password-one' });
    expect(a.code).toBe(0);
    expect(JSON.parse(a.stdout)).toMatchObject({ user_id: 'cli-user' });
    const b = await runCli(['call', 'account.session', `--url=${server.url}`]);
    expect(b.code).toBe(1);
    expect(JSON.parse(b.stderr)).toEqual({ error: { code: 'Unauthenticated', message: 'account.session needs a signed-in session', type: 'auth' } });
    const c = await runCli(['call', 'account.session', `--url=${server.url}`, '--user=cli-user'], { SIMPLEAPI_PASSWORD: 'wrong-password' });
    expect(c.code).toBe(1);
    expect(JSON.parse(c.stderr)).toMatchObject({ error: { code: 'Unauthenticated', message: 'Wrong user_id or password' } });
  });

  it('refuses params that are not JSON, with status 2', async () => {
    const { code, stderr } = await runCli(['call', 'echo', '{oops', `--url=${server.url}`]);
    expect(code).toBe(2);
    expect(stderr).toContain('the params are not valid JSON');
  });
});

describe('simpleapi createuser', () => {
  it('without a database, says the in-process store cannot be reached and exits non-zero', async () => {
    const { code, stderr, stdout } = await runCli(['createuser', 'someone']);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toContain('which another process cannot reach');
  });

  it.skipIf(!hasMongo)('with a database, creates the account and prints a generated password once', async () => {
    const db = [`--db-url=${MONGODB_URL}`, `--db-name=${uniqueDbName('createuser')}`];
    const made = await runCli(['createuser', 'Made-By-CLI', ...db]);
    expect(made.code).toBe(0);
    const password = /password: (\S+)/.exec(made.stdout)![1]!;
    expect(password.length).toBeGreaterThanOrEqual(20);
    const again = await runCli(['createuser', 'made-by-cli', ...db]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('That user_id is already taken');
    const server = await spawnServer(['--port=0', ...db]);
    try {
      const login = await runCli(['call', 'account.session', `--url=${server.url}`, '--user=made-by-cli'], { SIMPLEAPI_PASSWORD: password });
      expect(login.code).toBe(0);
      expect(JSON.parse(login.stdout)).toMatchObject({ user_id: 'Made-By-CLI' });
    } finally {
      await server.stop();
    }
  });
});
