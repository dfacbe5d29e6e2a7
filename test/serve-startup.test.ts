/**
 * What `simpleapi serve` says and refuses at start-up, run as users run it: the start-up summary,
 * both log formats, a taken port or socket, and --workers without a shared database.
 */
import { spawn } from 'node:child_process';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SimpleApiClient } from '../src/client/index.ts';
import { hasMongo, MONGODB_URL, uniqueDbName } from './helpers/mongo.ts';
import { freePort, post, ROOT, runCli, spawnServer, type Spawned } from './helpers/server.ts';

const running: Spawned[] = [];
const blockers: NetServer[] = [];
afterAll(async () => {
  await Promise.all(running.map((s) => s.stop()));
  for (const b of blockers) b.close();
});
async function serve(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Spawned> {
  const s = await spawnServer(args, env);
  running.push(s);
  return s;
}
const tmp = () => mkdtempSync(join(tmpdir(), 'simpleapi-startup-'));

/** A TCP port held by another process's listener (here: a plain net server of this test). */
async function takenPort(): Promise<number> {
  const blocker = createNetServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  blockers.push(blocker);
  return (blocker.address() as { port: number }).port;
}

/** Runs `serve` with raw output until `until` appears in stdout, then stops it. */
function serveUntil(args: string[], until: (stdout: string) => boolean, whileUp?: (stdout: string) => Promise<void>): Promise<string> {
  return new Promise((done, fail) => {
    const proc = spawn(process.execPath, [resolve(ROOT, 'bin/simpleapi.js'), 'serve', ...args], { cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME } });
    let stdout = '';
    let acted = false;
    proc.stdout.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
      if (!acted && until(stdout)) {
        acted = true;
        void (whileUp?.(stdout) ?? Promise.resolve()).then(
          () => setTimeout(() => proc.kill('SIGTERM'), 300),
          (err: unknown) => {
            proc.kill('SIGTERM');
            fail(err);
          },
        );
      }
    });
    proc.on('close', () => done(stdout));
  });
}

describe('the start-up summary', () => {
  it('gives the addresses, the console URL, one method count, the store, the signing scheme and the job runner', async () => {
    const dir = tmp();
    const s = await serve(['--port=0', `--socket=${join(dir, 'api.sock')}`]);
    const line = s.stdout.map((l) => JSON.parse(l)).find((l) => l.msg.startsWith('listening'));
    const url = s.url!.replace(/\/$/, '');
    expect(line).toMatchObject({ url, socket: join(dir, 'api.sock'), console: `${url}/docs`, store: 'embedded', hmacScheme: 'v2', jobs: 'in-process' });
    expect(line.methods).toBe(line.methodFiles + 1);
    expect(line.msg).toBe(
      `listening on ${url} and unix:${join(dir, 'api.sock')}; console ${url}/docs; ${line.methods} methods (${line.methodFiles} from files + rpc.discover); ` +
        'store embedded (in this process; no --db-url); signing v2; jobs in this process',
    );
    // The console is where the line says.
    expect((await fetch(line.console)).status).toBe(200);
  });

  it('says the console is off with --no-docs', async () => {
    const s = await serve(['--port=0', '--no-docs']);
    const line = s.stdout.map((l) => JSON.parse(l)).find((l) => l.msg.startsWith('listening'));
    expect(line.console).toBeNull();
    expect(line.msg).toContain('console off (--no-docs)');
  });
});

describe('--log-format', () => {
  it('json (the default off a terminal): one JSON object a line, request lines included, with pid', async () => {
    const s = await serve(['--port=0']);
    await post(s.url!, '{"method":"echo","parameters":1}');
    await expect.poll(() => s.stdout.some((l) => l.includes('"msg":"request"')), { timeout: 5000 }).toBe(true);
    for (const l of s.stdout) expect(() => JSON.parse(l)).not.toThrow();
    expect(JSON.parse(s.stdout.find((l) => l.includes('"msg":"request"'))!)).toMatchObject({ level: 30, pid: s.proc.pid, method: 'echo', status: 200 });
  });

  it('pretty: readable times, level names, the request line on one line, stacks unescaped', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'package.json'), '{"type": "module"}');
    writeFileSync(join(dir, 'ok.ts'), `export const auth = 'public';\nexport const invoke = () => 3;\n`);
    writeFileSync(join(dir, 'boom.ts'), `export const auth = 'public';\nexport function invoke() { throw new Error('kaboom'); }\n`);
    const out = await serveUntil(
      ['--port=0', '--log-format=pretty', `--methods-dir=${dir}`],
      (o) => /listening on http:\/\/127\.0\.0\.1:(\d+)/.test(o),
      async (o) => {
        const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(o)![1]);
        await post(`http://127.0.0.1:${port}/`, '{"method":"ok","parameters":{}}');
        await post(`http://127.0.0.1:${port}/`, '{"method":"boom","parameters":{}}');
      },
    );
    expect(out).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: listening on http:\/\/127\.0\.0\.1:\d+; console http:\/\/127\.0\.0\.1:\d+\/docs; /m);
    expect(out).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: ok 200 [\d.]+ ms \([0-9a-f-]{36}\)$/m);
    expect(out).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] ERROR: method threw$/m);
    // The stack as lines, not one JSON string with \n in it.
    expect(out).toMatch(/Error: kaboom\n\s+at .*boom\.ts/);
    expect(out).not.toContain('"level"');
  });

  it('auto is pretty on a terminal', async () => {
    // `script` gives the server a pseudo-terminal as standard output.
    const hasScript = existsSync('/usr/bin/script');
    if (!hasScript) {
      console.warn('skipped: /usr/bin/script (util-linux) is not installed, so no terminal can be given to the server');
      return;
    }
    const out = await new Promise<string>((done) => {
      // The shell prints its pid, then becomes the server (exec): the test stops the server by that
      // pid. Stopping only `script` left the server behind on a dead terminal, spinning a core.
      const command = `sh -c 'echo SERVER_PID=$$; exec ${process.execPath} ${resolve(ROOT, 'bin/simpleapi.js')} serve --port=0'`;
      const proc = spawn('/usr/bin/script', ['-qfec', command, '/dev/null'], { cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME, TERM: 'dumb' } });
      let text = '';
      let stopped = false;
      proc.stdout.on('data', (c: Buffer) => {
        text += c.toString('utf8');
        const pid = /SERVER_PID=(\d+)/.exec(text)?.[1];
        if (!stopped && pid !== undefined && text.includes('listening on')) {
          stopped = true;
          process.kill(Number(pid), 'SIGTERM');
        }
      });
      proc.on('close', () => done(text));
    });
    // eslint-disable-next-line no-control-regex
    expect(out.replace(/\x1b\[[0-9;]*m/g, '')).toMatch(/\[\d\d:\d\d:\d\d\.\d{3}\] INFO: listening on http/);
  });
});

describe('a port or socket that is taken', () => {
  it('a port in use exits non-zero, naming the port and --port', async () => {
    const port = await takenPort();
    const { code, stderr } = await runCli(['serve', `--port=${port}`]);
    expect(code).toBe(1);
    expect(stderr).toContain(`port ${port} on 127.0.0.1 is in use by another process: choose another with --port=<n>`);
  });

  it('a socket a live server answers on is refused, and the live server keeps it', async () => {
    const dir = tmp();
    const path = join(dir, 'live.sock');
    await serve(['--port=-1', `--socket=${path}`]);
    const { code, stderr } = await runCli(['serve', '--port=-1', `--socket=${path}`]);
    expect(code).toBe(1);
    expect(stderr).toContain(`socket ${path} is in use by another process (a server answers on it): choose another path with --socket=<path>`);
    expect(await new SimpleApiClient({ socketPath: path }).call('echo', 'still mine')).toBe('still mine');
  });

  it('a stale socket file (its server died) is replaced; on exit a server removes only its own socket', async () => {
    const dir = tmp();
    const path = join(dir, 'api.sock');
    // A socket file nobody listens on: a server killed with SIGKILL leaves one behind.
    const dead = await serve(['--port=-1', `--socket=${path}`]);
    expect(await dead.stop('SIGKILL')).toBeNull();
    expect(existsSync(path)).toBe(true);
    const next = await serve(['--port=-1', `--socket=${path}`]);
    expect(await new SimpleApiClient({ socketPath: path }).call('echo', 'replaced')).toBe('replaced');
    expect(await next.stop()).toBe(0);
    expect(existsSync(path)).toBe(false);

    // A server whose socket path was taken over by another's file leaves that file alone.
    const first = await serve(['--port=-1', `--socket=${path}`]);
    const other = join(dir, 'other.sock');
    const second = await serve(['--port=-1', `--socket=${other}`]);
    const { renameSync } = await import('node:fs');
    renameSync(other, path); // the second server's socket now sits at the first one's path
    expect(await first.stop()).toBe(0);
    expect(await new SimpleApiClient({ socketPath: path }).call('echo', 'second')).toBe('second');
    await second.stop();
  });

  it('a path that is not a socket is refused and left alone', async () => {
    const dir = tmp();
    const path = join(dir, 'notes.txt');
    writeFileSync(path, 'mine');
    const { code, stderr } = await runCli(['serve', '--port=-1', `--socket=${path}`]);
    expect(code).toBe(1);
    expect(stderr).toContain(`--socket=${path} exists and is not a socket`);
    expect(existsSync(path)).toBe(true);
  });
});

describe('--workers', () => {
  it('refuses several workers on the embedded store (exit 2): sessions need a shared database', async () => {
    const { code, stderr } = await runCli(['serve', '--workers=2', `--port=${await freePort()}`]);
    expect(code).toBe(2);
    expect(stderr).toContain('--workers=2 needs a shared database');
    expect(stderr).toContain('--db-url=mongodb://');
  });

  it('exits 1 when the workers cannot start, instead of forking them again forever', async () => {
    // An address where no database answers: every worker fails before it listens.
    const { code, stdout, stderr } = await runCli(['serve', '--workers=2', `--port=${await freePort()}`, '--db-url=mongodb://127.0.0.1:9/', '--db-connect-timeout=1']);
    expect(code).toBe(1);
    expect(stderr).toContain('did not answer within 1 s');
    expect(stdout).toContain('a worker could not start (its error is above): stopping the others and exiting');
  }, 60_000);

  it.skipIf(!hasMongo)('with the port taken, exits 1 naming the port', async () => {
    const port = await takenPort();
    const { code, stderr } = await runCli(['serve', '--workers=2', `--port=${port}`, `--db-url=${MONGODB_URL}`, `--db-name=${uniqueDbName('workersport')}`]);
    expect(code).toBe(1);
    expect(stderr).toContain(`port ${port} on 127.0.0.1 is in use by another process: choose another with --port=<n>`);
  }, 60_000);
});
