/**
 * The `simpleapi` command as users run it: child processes, real ports and sockets, real files.
 */
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SimpleApiClient } from '../src/client/index.ts';
import { OPTIONS } from '../src/config.ts';
import { freePort, post, ROOT, runCli, spawnServer, SHIPPED_METHODS, type Spawned } from './helpers/server.ts';

const running: Spawned[] = [];
afterAll(async () => {
  await Promise.all(running.map((s) => s.stop()));
});
async function serve(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Promise<Spawned> {
  const s = await spawnServer(args, env, cwd);
  running.push(s);
  return s;
}


const tmp = () => mkdtempSync(join(tmpdir(), 'simpleapi-test-'));
/** A methods folder as users have it: inside a package whose package.json says "type": "module". */
function methodsDir(): string {
  const dir = tmp();
  writeFileSync(join(dir, 'package.json'), '{"type": "module"}');
  return dir;
}

describe('simpleapi --help', () => {
  it('lists every option with its default and meaning, and exits 0', async () => {
    const { code, stdout } = await runCli(['--help']);
    expect(code).toBe(0);
    for (const option of OPTIONS) {
      expect(stdout).toContain(`--${option.flag}=`);
      expect(stdout).toContain(option.description);
    }
    expect(stdout).toContain('default 8888; env SIMPLEAPI_PORT; config "port"');
    expect(stdout).toContain('--config=<file>');
  });
});

describe('bad flags and values exit 2 naming them', () => {
  it('an unknown flag, with a suggestion for a near miss', async () => {
    const { code, stderr } = await runCli(['serve', '--prot=9999']);
    expect(code).toBe(2);
    expect(stderr).toContain("unknown option '--prot' (did you mean '--port'?)");
  });
  it('a value the schema refuses, naming the flag and not the environment variable', async () => {
    const a = await runCli(['serve', '--port=abc']);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain('--port: must be integer');
    expect(a.stderr).not.toContain('SIMPLEAPI_PORT');
    const b = await runCli(['serve', '--hmac-scheme', 'v3']);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('--hmac-scheme: must be one of v1, v2');
    expect(b.stderr).not.toContain('SIMPLEAPI_HMAC_SCHEME');
  });
  it('a bad value in the environment names the variable; a flag given beside it wins', async () => {
    const a = await runCli(['serve'], { SIMPLEAPI_BATCH_LIMIT: '0' });
    expect(a.code).toBe(2);
    expect(a.stderr).toContain('environment variable SIMPLEAPI_BATCH_LIMIT: must be >= 1');
    const b = await runCli(['serve', '--port=abc'], { SIMPLEAPI_LOG_LEVEL: 'loud' });
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('--port: must be integer');
    expect(b.stderr).toContain('environment variable SIMPLEAPI_LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent');
    // An enum option's allowed values come from its schema, whatever the option.
    for (const option of OPTIONS.filter((o) => Array.isArray(o.schema.enum))) {
      const c = await runCli(['serve', `--${option.flag}=nonsense`]);
      expect(c.code).toBe(2);
      expect(c.stderr).toContain(`--${option.flag}: must be one of ${(option.schema.enum as unknown[]).join(', ')}`);
    }
  });
  it('a near-miss environment variable and a bad boolean say what was meant', async () => {
    const a = await runCli(['serve'], { SIMPLEAPI_PROT: '8889' });
    expect(a.code).toBe(2);
    expect(a.stderr).toContain('environment variable SIMPLEAPI_PROT is not a setting (did you mean SIMPLEAPI_PORT?)');
    // Further than one typo from every setting's: someone else's (other tools use the prefix), left alone.
    const b = await runCli(['methods'], { SIMPLEAPI_HOME: '/srv', SIMPLEAPI_DB_PASSWORD: 'x', SIMPLEAPI_SECRET: 'y' });
    expect(b.code).toBe(0);
    expect(b.stderr).toBe('');
    const swapped = await runCli(['methods'], { SIMPLEAPI_LOG_LEVL: 'warn' });
    expect(swapped.stderr).toContain('did you mean SIMPLEAPI_LOG_LEVEL?');
    const c = await runCli(['serve', '--docs=maybe']);
    expect(c.code).toBe(2);
    expect(c.stderr).toContain('--docs: must be true or false (--docs or --no-docs)');
  });
  it('a bad value or a near-miss key in the config file', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'server.conf.json'), JSON.stringify({ prot: 1, db: { ulr: 'x' }, zzzzzz: 1 }));
    const a = await runCli(['serve'], {}, dir);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain("unknown setting 'prot' (did you mean 'port'?)");
    expect(a.stderr).toContain("unknown setting 'db.ulr' (did you mean 'db.url'?)");
    expect(a.stderr).toMatch(/unknown setting 'zzzzzz'(;|\n)/);
    writeFileSync(join(dir, 'server.conf.json'), JSON.stringify({ hmac: { scheme: 'v9' } }));
    const b = await runCli(['serve'], {}, dir);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain(`${join(dir, 'server.conf.json')}: 'hmac.scheme': must be one of v1, v2`);
    const c = await runCli(['serve', '--config', join(dir, 'missing.json')]);
    expect(c.code).toBe(2);
    expect(c.stderr).toContain('cannot read config');
  });
});

describe('commands: help, --version, near misses', () => {
  it('--version and version print the version of package.json', async () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const args of [['--version'], ['version'], ['serve', '--version']]) {
      const { code, stdout } = await runCli(args);
      expect(code).toBe(0);
      expect(stdout).toBe(`simpleapi ${version} (Node ${process.version})\n`);
    }
  });
  it('help lists every command; help <command> and <command> --help show that command', async () => {
    const all = await runCli(['help']);
    expect(all.code).toBe(0);
    for (const command of ['serve', 'new', 'types', 'methods', 'call', 'createuser', 'help', 'version']) expect(all.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
    expect(all.stdout).toContain('--port=<n>');
    const call = await runCli(['help', 'call']);
    expect(call.code).toBe(0);
    expect(call.stdout).toMatch(/^Usage: simpleapi call <method>/);
    for (const flag of ['--url=', '--unix=', '--user=', '--password=']) expect(call.stdout).toContain(flag);
    expect(call.stdout).toContain('Each call logs in afresh');
    expect((await runCli(['call', '--help'])).stdout).toBe(call.stdout);
    const serve = await runCli(['help', 'serve']);
    expect(serve.stdout).toContain('npm start -- --port=8889');
    expect(serve.stdout).toContain('--watch');
    expect(serve.stdout).toContain('--db-url=<text>');
  });
  it("a near-miss command says which was meant and exits 2; a far one does not guess", async () => {
    const a = await runCli(['server']);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain("unknown command 'server' (did you mean 'serve'?)");
    const b = await runCli(['help', 'cal']);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain("unknown command 'cal' (did you mean 'call'?)");
    const c = await runCli(['frobnicate']);
    expect(c.code).toBe(2);
    expect(c.stderr).toContain("unknown command 'frobnicate'\n");
  });
});

describe('config precedence: defaults < server.conf.json < environment < flags', () => {
  it('each layer overrides the one before', async () => {
    const [filePort, envPort, flagPort] = [await freePort(), await freePort(), await freePort()];
    const dir = tmp();
    writeFileSync(join(dir, 'server.conf.json'), JSON.stringify({ port: filePort, methodsDir: SHIPPED_METHODS }));
    const fromFile = await serve([], {}, dir);
    expect(fromFile.url).toBe(`http://127.0.0.1:${filePort}/`);
    const fromEnv = await serve([], { SIMPLEAPI_PORT: String(envPort) }, dir);
    expect(fromEnv.url).toBe(`http://127.0.0.1:${envPort}/`);
    const fromFlag = await serve([`--port=${flagPort}`], { SIMPLEAPI_PORT: String(envPort + 1) }, dir);
    expect(fromFlag.url).toBe(`http://127.0.0.1:${flagPort}/`);
    // All three run side by side from one config file.
    for (const s of [fromFile, fromEnv, fromFlag]) {
      expect((await post(s.url!, '{"method":"math.sum","parameters":[2,3]}')).json).toBe(5);
    }
  });
});

describe('simpleapi serve', () => {
  it('logs the address, the number of methods, the store and the signing scheme', async () => {
    const s = await serve(['--port=0']);
    const listening = s.stdout.map((l) => JSON.parse(l)).find((l) => l.msg.startsWith('listening'));
    const { discoverMethods } = await import('../src/core/registry.ts');
    const shipped = Object.keys(await discoverMethods(SHIPPED_METHODS)).length;
    // The shipped method files, plus the built-in rpc.discover.
    expect(listening).toMatchObject({ methods: shipped + 1, store: 'embedded', hmacScheme: 'v2' });
    await expect.poll(() => s.stdout.join('\n')).toContain('store: embedded in-process store');
  });

  it('two instances on two ports (--port 1 and --port=2) serve side by side', async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const a = await serve(['--port', String(p1)]);
    const b = await serve([`--port=${p2}`]);
    expect(a.url).toBe(`http://127.0.0.1:${p1}/`);
    expect(b.url).toBe(`http://127.0.0.1:${p2}/`);
    const [ra, rb] = await Promise.all([post(a.url!, '{"method":"echo","parameters":"a"}'), post(b.url!, '{"method":"echo","parameters":"b"}')]);
    expect([ra.json, rb.json]).toEqual(['a', 'b']);
  });

  it('serves on a Unix socket alone, and on TCP and a socket together', async () => {
    const dir = tmp();
    const only = await serve(['--port=-1', `--socket=${join(dir, 'only.sock')}`]);
    expect(only.url).toBeNull();
    const viaSocket = new SimpleApiClient({ socketPath: join(dir, 'only.sock') });
    expect(await viaSocket.call('math.sum', [1, 2, 3])).toBe(6);

    const both = await serve(['--port=0', `--socket=${join(dir, 'both.sock')}`]);
    expect(await new SimpleApiClient({ socketPath: join(dir, 'both.sock') }).call('echo', { via: 'socket' })).toEqual({ via: 'socket' });
    expect((await post(both.url!, '{"method":"echo","parameters":"tcp"}')).json).toBe('tcp');
    // A session made over TCP is honoured over the socket of the same process.
    const tcpClient = new SimpleApiClient({ url: both.url! });
    const grant = await tcpClient.create('socket-user', 'password-one');
    const socketClient = new SimpleApiClient({ socketPath: join(dir, 'both.sock') });
    socketClient.useSession(grant);
    expect(await socketClient.call('account.logout')).toEqual({ ok: true });
  });

  it('--port=-1 without --socket exits 2', async () => {
    const { code, stderr } = await runCli(['serve', '--port=-1']);
    expect(code).toBe(2);
    expect(stderr).toContain('--port=-1 serves no TCP: give --socket too');
  });

  it('exits 0 on SIGTERM', async () => {
    const s = await spawnServer(['--port=0']);
    expect(await s.stop('SIGTERM')).toBe(0);
  });
});

describe('start-up stops on a broken method file, naming it', () => {
  const cases: [string, Record<string, string>, string][] = [
    ['no invoke', { 'thing.ts': 'export const auth = "public";' }, "method 'thing' exports no invoke function"],
    ['a schema that does not compile', { 'thing.ts': 'export const params = { type: "nope" }; export function invoke() {}' }, 'the params schema does not compile'],
    ['an unknown schema keyword', { 'thing.ts': 'export const params = { type: "object", propertys: {} }; export function invoke() {}' }, 'unknown keyword: "propertys"'],
    ['a bad name', { 'bad-name.ts': 'export function invoke() {}' }, "'bad-name.ts' is not a valid method name"],
    ['a bad folder name', { '1st/x.ts': 'export function invoke() {}' }, "'1st/x.ts' is not a valid method name"],
    ['a duplicate', { 'dup.ts': 'export function invoke() {}', 'dup.js': 'export function invoke() {}' }, "method 'dup' is also defined by"],
    ['a syntax error', { 'broken.ts': 'export function invoke( {' }, 'cannot load'],
    ['a reserved rpc. name', { 'rpc/mine.ts': 'export function invoke() {}' }, "names under 'rpc.' are reserved"],
    ['a bad auth value', { 'thing.ts': 'export const auth = "everyone"; export function invoke() {}' }, "auth must be 'public' or 'session'"],
  ];
  for (const [what, files, message] of cases) {
    it(what, async () => {
      const dir = methodsDir();
      for (const [name, text] of Object.entries(files)) {
        mkdirSync(join(dir, name, '..'), { recursive: true });
        writeFileSync(join(dir, name), text);
      }
      const { code, stderr } = await runCli(['serve', '--port=0', `--methods-dir=${dir}`]);
      expect(code).toBe(1);
      expect(stderr).toContain(message);
      expect(stderr).toContain(dir);
    });
  }

  it('says what to do when the methods are not in an ES module package', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'thing.ts'), 'export function invoke() {}');
    const { code, stderr } = await runCli(['serve', '--port=0', `--methods-dir=${dir}`]);
    expect(code).toBe(1);
    expect(stderr).toContain(`${join(dir, 'thing.ts')}: cannot load`);
    expect(stderr).toContain('put a package.json with {"type": "module"} in the methods folder or above it');
  });

  it('skips _files, _folders, tests and declaration files', async () => {
    const dir = methodsDir();
    mkdirSync(join(dir, '_lib'));
    writeFileSync(join(dir, '_helper.ts'), 'export const x = 1;');
    writeFileSync(join(dir, '_lib', 'util.ts'), 'export const y = 2;');
    writeFileSync(join(dir, 'ok.test.ts'), 'export const z = 3;');
    writeFileSync(join(dir, 'types.d.ts'), 'export type T = 1;');
    writeFileSync(join(dir, 'ok.ts'), 'export const auth = "public"; export const description = "fine"; export function invoke() { return 1; }');
    const { code, stdout } = await runCli(['methods', `--methods-dir=${dir}`]);
    expect(code).toBe(0);
    expect(stdout.trim().split('\n')).toEqual([`METHOD  AUTH     DESCRIPTION`, `ok      public   fine`]);
  });
});

describe('simpleapi methods', () => {
  it('prints a table of name, auth and description', async () => {
    const { code, stdout } = await runCli(['methods']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^math\.sum\s+public\s+Adds numbers$/m);
    expect(stdout).toMatch(/^account\.logout\s+session\s+Ends the calling session on every instance$/m);
  });
});
