/** For developers: watch mode over a real server, scaffolding, and typed clients through a real compiler. */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { call, post, ROOT, runCli, spawnServer, type Spawned } from './helpers/server.ts';

const run = promisify(execFile);
/** Scratch folders inside the repository, so `simpleapi` (the package's own name) resolves from them. */
const scratch: string[] = [];
function scratchDir(label: string): string {
  const dir = mkdtempSync(join(ROOT, `test/.tmp-${label}-`));
  scratch.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});


describe('simpleapi serve --watch', () => {
  let server: Spawned | undefined;
  afterAll(() => server?.stop());

  it('picks up changed, added, broken and deleted method files without a restart', async () => {
    const dir = scratchDir('watch');
    const write = (name: string, body: string) => writeFileSync(join(dir, name), `export const auth = 'public';\n${body}\n`);
    write('hello.ts', `export const invoke = () => 'v1';`);
    write('slow.ts', `export async function invoke() { await new Promise((r) => setTimeout(r, 1500)); return 'old code'; }`);
    server = await spawnServer(['--port=0', '--watch', `--methods-dir=${dir}`]);
    const answer = async (method: string) => (await post(server!.url!, call(method))).json;
    expect(await answer('hello')).toBe('v1');
    await expect.poll(() => server!.stdout.join('\n'), { timeout: 10_000 }).toContain('watching the methods folder for changes');

    write('hello.ts', `export const invoke = () => 'v2';`);
    await expect.poll(() => answer('hello'), { timeout: 10_000 }).toBe('v2');

    write('added.ts', `export const invoke = () => 'added';`);
    await expect.poll(() => answer('added'), { timeout: 10_000 }).toBe('added');

    // A request in flight finishes on the code it started with.
    const inFlight = post(server.url!, call('slow'));
    await new Promise((r) => setTimeout(r, 200));
    write('slow.ts', `export const invoke = () => 'new code';`);
    expect((await inFlight).json).toBe('old code');
    await expect.poll(() => answer('slow'), { timeout: 10_000 }).toBe('new code');

    // A broken file logs its error and its last good version keeps serving.
    write('hello.ts', `export const invoke = ( => 'v3';`);
    write('other.ts', `export const invoke = () => 'other';`);
    await expect.poll(() => answer('other'), { timeout: 10_000 }).toBe('other');
    expect(await answer('hello')).toBe('v2');
    await expect.poll(() => server!.stdout.join('\n'), { timeout: 5000 }).toContain('hello is broken: its last good version keeps serving');

    unlinkSync(join(dir, 'added.ts'));
    await expect.poll(async () => ((await post(server!.url!, call('added'))).json as { error?: { code: string } }).error?.code, { timeout: 10_000 }).toBe('MethodNotFound');
  }, 60_000);

  it('keeps following a file saved by rename-over (safe write, sed -i), and reloads a method when its _helper changes', async () => {
    const dir = scratchDir('watch-rename');
    mkdirSync(join(dir, 'greet'));
    writeFileSync(join(dir, 'greet/_words.ts'), `export const word = 'hello';\n`);
    writeFileSync(join(dir, 'greet/hi.ts'), `import { word } from './_words.ts';\nexport const auth = 'public';\nexport const invoke = () => word;\n`);
    writeFileSync(join(dir, 'plain.ts'), `export const auth = 'public';\nexport const invoke = () => 'v1';\n`);
    const watched = await spawnServer(['--port=0', '--watch', `--methods-dir=${dir}`]);
    try {
      const answer = async (method: string) => (await post(watched.url!, call(method))).json;
      expect(await answer('plain')).toBe('v1');
      await expect.poll(() => watched.stdout.join('\n'), { timeout: 10_000 }).toContain('watching the methods folder for changes');
      // An editor's safe write: a new file, renamed over the old one (a new inode).
      const renameOver = (name: string, body: string) => {
        writeFileSync(join(dir, `${name}.swp`), body);
        renameSync(join(dir, `${name}.swp`), join(dir, name));
      };
      renameOver('plain.ts', `export const auth = 'public';\nexport const invoke = () => 'v2 renamed over';\n`);
      await expect.poll(() => answer('plain'), { timeout: 10_000 }).toBe('v2 renamed over');
      // The in-place edit after it is seen too (Node's recursive fs.watch lost the file here).
      writeFileSync(join(dir, 'plain.ts'), `export const auth = 'public';\nexport const invoke = () => 'v3 in place';\n`);
      await expect.poll(() => answer('plain'), { timeout: 10_000 }).toBe('v3 in place');
      writeFileSync(join(dir, 'plain.ts'), `export const auth = 'public';\nexport const invoke = () => 'v4 in place again';\n`);
      await expect.poll(() => answer('plain'), { timeout: 10_000 }).toBe('v4 in place again');

      // Only the helper changes: the method importing it answers with the new helper.
      expect(await answer('greet.hi')).toBe('hello');
      writeFileSync(join(dir, 'greet/_words.ts'), `export const word = 'bonjour';\n`);
      await expect.poll(() => answer('greet.hi'), { timeout: 10_000 }).toBe('bonjour');
      renameOver('greet/_words.ts', `export const word = 'hallo';\n`);
      await expect.poll(() => answer('greet.hi'), { timeout: 10_000 }).toBe('hallo');

      // One count rule at start-up and on reload: every method served, built-ins included.
      const lines = watched.stdout.map((l) => JSON.parse(l) as { msg: string; methods?: number });
      const startup = lines.find((l) => l.msg.startsWith('listening'))!;
      const reloads = lines.filter((l) => l.msg.startsWith('methods reloaded'));
      expect(startup.methods).toBe(3);
      expect(startup.msg).toContain('3 methods (2 from files + rpc.discover)');
      expect(reloads.length).toBeGreaterThan(0);
      for (const r of reloads) expect(r).toMatchObject({ methods: 3, msg: 'methods reloaded: 3 methods (2 from files + rpc.discover)' });
    } finally {
      await watched.stop();
    }
  }, 60_000);

  it('refuses --watch with several workers', async () => {
    const { code, stderr } = await runCli(['serve', '--watch', '--workers=2']);
    expect(code).toBe(2);
    expect(stderr).toContain('--watch serves one process');
  });
});

describe('simpleapi new', () => {
  it('writes a method and a passing test from the template, and refuses to overwrite', async () => {
    const dir = scratchDir('new');
    const methodsDir = join(dir, 'methods');
    const made = await runCli(['new', 'greet.hello', '--public', `--methods-dir=${methodsDir}`], {}, dir);
    expect(made.code).toBe(0);
    expect(made.stdout).toBe('wrote methods/greet/hello.ts\nwrote test/methods/greet/hello.test.ts\n');
    const method = readFileSync(join(methodsDir, 'greet/hello.ts'), 'utf8');
    expect(method).toContain("export const auth = 'public';");
    expect(method).toContain('export const params = {');

    // The generated test passes against the generated method, with a real server.
    const { stdout } = await run(process.execPath, [resolve(ROOT, 'node_modules/vitest/vitest.mjs'), 'run', join(dir, 'test/methods/greet/hello.test.ts'), '--root', ROOT], { cwd: ROOT });
    expect(stdout).toMatch(/2 passed/);

    writeFileSync(join(methodsDir, 'greet/hello.ts'), '// mine');
    const again = await runCli(['new', 'greet.hello', `--methods-dir=${methodsDir}`], {}, dir);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already exists; nothing was written');
    expect(readFileSync(join(methodsDir, 'greet/hello.ts'), 'utf8')).toBe('// mine');
    // Names discovery would not serve are refused before anything is written.
    const refusals: [string, string][] = [
      ['rpc.mine', "'rpc.mine' is reserved: names under 'rpc.' are the built-in methods"],
      ['_priv.x', "'_priv.x' would never be served: discovery skips files and folders starting with '_'"],
      ['greet._secret', "'greet._secret' would never be served"],
      ['greet.hello-world', "'greet.hello-world' is not a method name"],
      ['node_modules.x', 'discovery skips node_modules folders'],
    ];
    for (const [name, message] of refusals) {
      const bad = await runCli(['new', name, `--methods-dir=${methodsDir}`], {}, dir);
      expect(bad.code, name).toBe(2);
      expect(bad.stderr, name).toContain(message);
      expect(bad.stdout, name).toBe('');
    }
    expect(existsSync(join(methodsDir, '_priv'))).toBe(false);
    expect(existsSync(join(methodsDir, 'greet/_secret.ts'))).toBe(false);
  }, 60_000);
});

describe('simpleapi types', () => {
  it('writes a method map the client checks calls against, params and result, with tsc', async () => {
    const dir = scratchDir('types');
    const made = await runCli(['types', `--out=${join(dir, 'client-types.ts')}`]);
    expect(made.code).toBe(0);
    const types = readFileSync(join(dir, 'client-types.ts'), 'utf8');
    expect(types).toContain('"math.sum": { params: MathSumParams; result: MathSumResult };');
    const program = (body: string) => `import { SimpleApiClient } from '../../src/client/index.ts';\nimport type { Methods } from './client-types.ts';\nconst client = new SimpleApiClient<Methods>({ url: 'http://127.0.0.1:1/' });\nexport async function main() {\n${body}\n}\n`;
    writeFileSync(join(dir, 'good.ts'), program(`  const sum: number = await client.call('math.sum', [1, 2]);\n  const grant = await client.call('account.login', { user_id: 'a', password: 'b' });\n  return [sum, grant.session_id];`));
    writeFileSync(join(dir, 'bad-params.ts'), program(`  return client.call('math.sum', ['one', 'two']);`));
    writeFileSync(join(dir, 'bad-result.ts'), program(`  const text: string = await client.call('math.sum', [1]);\n  return text;`));
    writeFileSync(join(dir, 'bad-name.ts'), program(`  return client.call('math.summ', [1]);`));
    mkdirSync(join(dir, 'cfg'), { recursive: true });
    const tsc = (file: string) =>
      run(process.execPath, [resolve(ROOT, 'node_modules/typescript/bin/tsc'), '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--allowImportingTsExtensions', '--skipLibCheck', '--types', 'node', join(dir, file)], { cwd: ROOT }).then(
        () => '',
        (err: { stdout: string }) => err.stdout,
      );
    expect(await tsc('good.ts')).toBe('');
    expect(await tsc('bad-params.ts')).toMatch(/bad-params\.ts.*error TS2322: Type 'string' is not assignable to type 'number'/s);
    expect(await tsc('bad-result.ts')).toMatch(/bad-result\.ts.*error TS2322: Type 'number' is not assignable to type 'string'/s);
    expect(await tsc('bad-name.ts')).toMatch(/bad-name\.ts.*error TS2345/s);
  }, 120_000);
});
