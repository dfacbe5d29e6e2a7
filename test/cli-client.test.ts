/** `simpleapi call` and `simpleapi createuser`, run as commands against real servers. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasMongo, MONGODB_URL, uniqueDbName } from './helpers/mongo.ts';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort, ROOT, runCli, spawnServer, type Spawned } from './helpers/server.ts';

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
    const [errorPart, hint] = b.stderr.split('\nsimpleapi: ');
    expect(JSON.parse(errorPart!)).toEqual({ error: { code: 'Unauthenticated', message: 'account.session needs a signed-in session', type: 'auth' } });
    // A session method called without a user: say how to give one.
    expect(hint).toContain('account.session needs a session: pass --user=<user_id>');
    const c = await runCli(['call', 'account.session', `--url=${server.url}`, '--user=cli-user'], { SIMPLEAPI_PASSWORD: 'wrong-password' });
    expect(c.code).toBe(1);
    expect(JSON.parse(c.stderr)).toMatchObject({ error: { code: 'Unauthenticated', message: 'Wrong user_id or password' } });
    // A public method's own Unauthenticated (a wrong password) gets no --user hint.
    const d = await runCli(['call', 'account.login', '{"user_id":"cli-user","password":"wrong-password"}', `--url=${server.url}`]);
    expect(d.code).toBe(1);
    // The password in the params is warned about first (they could have come on stdin with -).
    const [warning, ...rest] = d.stderr.split('\n');
    expect(warning).toContain('warning: the params hold "password"');
    expect(JSON.parse(rest.join('\n'))).toMatchObject({ error: { code: 'Unauthenticated' } });
  });

  it("prints a raw method's event stream as it arrives, and a finite one to its end", async () => {
    const finite = await runCli(['call', 'clock.ticks', '{"count":3,"intervalMs":50}', `--url=${server.url}`]);
    expect(finite.code).toBe(0);
    expect(finite.stderr).toBe('');
    expect(finite.stdout.match(/^event: tick$/gm)).toHaveLength(3);
    expect(finite.stdout).toContain('data: {"now":');
    // An endless stream: its first events are printed while it still runs.
    const seen = await new Promise<string>((done) => {
      const proc = spawn(process.execPath, [resolve(ROOT, 'bin/simpleapi.js'), 'call', 'clock.ticks', '{"intervalMs":50}', `--url=${server.url}`], { cwd: ROOT });
      let out = '';
      proc.stdout.on('data', (c: Buffer) => {
        out += c.toString('utf8');
        if (out.includes('"n":2}')) proc.kill('SIGTERM');
      });
      proc.on('close', () => done(out));
    });
    expect(seen).toMatch(/id: 0\nevent: tick\ndata: \{"now":"[^"]+","n":0\}/);
  });

  it('over a socket with --unix, and a stream through it too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'simpleapi-call-'));
    const viaSocket = await spawnServer(['--port=-1', `--socket=${join(dir, 'api.sock')}`]);
    try {
      const sum = await runCli(['call', 'math.sum', '[2, 2]', `--unix=${join(dir, 'api.sock')}`]);
      expect(JSON.parse(sum.stdout)).toBe(4);
      const stream = await runCli(['call', 'clock.ticks', '{"count":2,"intervalMs":20}', `--unix=${join(dir, 'api.sock')}`]);
      expect(stream.stdout.match(/^event: tick$/gm)).toHaveLength(2);
    } finally {
      await viaSocket.stop();
    }
  });

  it('something that is not a simpleapi server: says so with its status and the URL', async () => {
    const { createServer } = await import('node:http');
    const other = createServer((_req, res) => {
      res.statusCode = 404;
      res.end();
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (other.address() as { port: number }).port;
      const a = await runCli(['call', 'math.sum', '[1,2]', `--port=${port}`]);
      expect(a.code).toBe(1);
      expect(a.stderr).toContain('The server answered HTTP 404 with an empty body; is it a simpleapi server at this address?');
      expect(a.stderr).toContain(`http://127.0.0.1:${port}/ did not answer as a simpleapi server does`);
    } finally {
      other.close();
    }
  });

  it('--socket on call is named as the server flag it is; a reader that stops early ends call quietly', async () => {
    const a = await runCli(['call', 'math.sum', '[1]', `--url=${server.url}`, '--socket=/tmp/nowhere.sock']);
    expect(a.code).toBe(0);
    expect(a.stderr).toContain('--socket is where a server listens; to call through a socket, use --unix=/tmp/nowhere.sock');
    // `| head -3` on an endless stream: the pipe closes under call, which exits without a stack.
    const piped = await new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
      const cmd = `"${process.execPath}" "${resolve(ROOT, 'bin/simpleapi.js')}" call clock.ticks '{"intervalMs":20}' --url=${server.url} | head -3`;
      const proc = spawn('sh', ['-c', cmd], { cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME } });
      let stdout = '';
      let stderr = '';
      proc.stdout.on('data', (c) => (stdout += c));
      proc.stderr.on('data', (c) => (stderr += c));
      proc.on('close', (code) => done({ code, stdout, stderr }));
    });
    expect(piped.stdout.split('\n').filter(Boolean)).toHaveLength(3);
    expect(piped.stderr).not.toContain('EPIPE');
    expect(piped.stderr).toBe('');
  });

  it('a server it cannot reach: names the URL, the cause and the flags that point call elsewhere', async () => {
    const port = await freePort();
    const down = await runCli(['call', 'math.sum', '[1]', `--port=${port}`]);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain(`cannot reach the server at http://127.0.0.1:${port}/: nothing listens there (connection refused) (ECONNREFUSED)`);
    expect(down.stderr).toContain('--url=http://host:port/, --port=<n> or --unix=<socket path>');
    expect(down.stderr).not.toContain('fetch failed');

    const noScheme = await runCli(['call', 'math.sum', '[1]', `--url=127.0.0.1:${port}`]);
    expect(noScheme.code).toBe(2);
    expect(noScheme.stderr).toContain(`--url=127.0.0.1:${port} is not an http(s) URL: write it with its scheme, e.g. --url=http://127.0.0.1:${port}`);

    // --socket is the server's option; call goes through a socket with --unix.
    const wrongFlag = await runCli(['call', 'math.sum', '[1]', `--port=${port}`, '--socket=/tmp/simpleapi-none.sock']);
    expect(wrongFlag.code).toBe(1);
    expect(wrongFlag.stderr).toContain('to call through a socket, use --unix=/tmp/simpleapi-none.sock');

    const noSocket = await runCli(['call', 'math.sum', '[1]', '--unix=/tmp/simpleapi-none.sock']);
    expect(noSocket.code).toBe(1);
    expect(noSocket.stderr).toContain('cannot reach the server at unix:/tmp/simpleapi-none.sock: no socket at that path (ENOENT)');
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
