/**
 * `simpleapi serve` imports the method files as one esbuild bundle (src/core/method-bundle.ts).
 * These run real servers on folders built to catch what a bundle could get wrong: helpers shared
 * between methods, the framework's own classes, packages, stack traces, and the folders that must
 * fall back to one import per file.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { post, ROOT, spawnServer, type Spawned } from './helpers/server.ts';

const running: Spawned[] = [];
const folders: string[] = [];
afterAll(async () => {
  await Promise.all(running.map((s) => s.stop()));
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
});

/** A methods folder inside this package, so `simpleapi` and `uuid` resolve from it as from a user's project. */
function folder(files: Record<string, string>): string {
  mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
  const dir = mkdtempSync(join(ROOT, 'test-artifacts', 'bundle-'));
  folders.push(dir);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

async function serve(dir: string): Promise<Spawned> {
  const s = await spawnServer(['--port=0', `--methods-dir=${dir}`, '--log-level=debug', '--log-format=json']);
  running.push(s);
  return s;
}

const call = (s: Spawned, envelope: { method: string; parameters?: unknown }) => post(s.url!, JSON.stringify(envelope));
const fellBack = (s: Spawned) => s.stdout.find((line) => line.includes('imported one by one'));

describe('serve imports the method files as one bundle', () => {
  const dir = folder({
    '_state.ts': 'export const seen: string[] = [];\n',
    'count/add.ts': "import { seen } from '../_state.ts';\nexport const auth = 'public';\nexport function invoke(_c: unknown, p: { v: string }) { seen.push(p.v); return seen.length; }\n",
    'count/list.ts': "import { seen } from '../_state.ts';\nexport const auth = 'public';\nexport function invoke() { return seen; }\n",
    'refuse.ts': "import { ApiError } from 'simpleapi';\nexport const auth = 'public';\nexport function invoke() { throw new ApiError('NotFound', 'no such thing here'); }\n",
    'id.ts': "import { validate } from 'uuid';\nimport { randomUUID } from 'node:crypto';\nexport const auth = 'public';\nexport function invoke() { return validate(randomUUID()); }\n",
    'boom.ts': "export const auth = 'public';\nexport function invoke(): never {\n  throw new Error('boom from the method');\n}\n",
  });

  it('shares a helper between the methods that import it', async () => {
    const s = await serve(dir);
    expect(fellBack(s)).toBeUndefined();
    await call(s, { method: 'count.add', parameters: { v: 'x' } });
    await call(s, { method: 'count.add', parameters: { v: 'y' } });
    const listed = await call(s, { method: 'count.list' });
    expect(listed.json).toEqual(['x', 'y']);
  });

  it("gives a method the server's own framework module, so its ApiError is answered as itself", async () => {
    const s = running[0] ?? (await serve(dir));
    const r = await call(s, { method: 'refuse' });
    expect(r.status).toBe(404);
    expect((r.json as { error: { code: string; message: string } }).error).toMatchObject({ code: 'NotFound', message: 'no such thing here' });
  });

  it('resolves packages and built-ins as Node does', async () => {
    const s = running[0] ?? (await serve(dir));
    expect((await call(s, { method: 'id' })).json).toEqual(true);
  });

  it("logs a method's failure with a stack that names the method's own file", async () => {
    const s = running[0] ?? (await serve(dir));
    const r = await call(s, { method: 'boom' });
    expect(r.status).toBe(500);
    expect(JSON.stringify(r.json)).not.toContain('boom.ts');
    // The log is written from a buffer: wait for the line.
    let line: string | undefined;
    for (let i = 0; i < 100 && line === undefined; i++) {
      line = s.stdout.find((l) => l.includes('boom from the method'));
      if (line === undefined) await new Promise((r) => setTimeout(r, 50));
    }
    expect(line).toBeDefined();
    expect(line).toContain(join(dir, 'boom.ts'));
  });
});

describe('folders a bundle would change are imported file by file', () => {
  it('a file that reads import.meta gets its own URL', async () => {
    const dir = folder({ 'where.ts': "export const auth = 'public';\nexport function invoke() { return import.meta.url; }\n" });
    const s = await serve(dir);
    expect(fellBack(s)).toContain('import.meta');
    expect((await call(s, { method: 'where' })).json).toEqual(pathToFileURL(join(dir, 'where.ts')).href);
  });

  it('a file that imports by a computed name resolves it from its own folder', async () => {
    const dir = folder({
      '_plugins/hi.ts': "export const word = 'hi';\n",
      'load.ts': "export const auth = 'public';\nexport async function invoke() { const name = './_plugins/' + 'hi.ts'; return (await import(name)).word; }\n",
    });
    const s = await serve(dir);
    expect(fellBack(s)).toContain('computed name');
    expect((await call(s, { method: 'load' })).json).toEqual('hi');
  });

  it('a CommonJS helper (module.exports, or require inside a function) is left to Node', async () => {
    const dir = folder({
      '_legacy.cjs': "exports.kind = function () { return typeof require('node:os').hostname(); };\n",
      'lazy.ts': "import { kind } from './_legacy.cjs';\nexport const auth = 'public';\nexport function invoke() { return kind(); }\n",
    });
    const s = await serve(dir);
    expect(fellBack(s)).toContain('CommonJS');
    expect((await call(s, { method: 'lazy' })).json).toEqual('string');
  });

  it('a circle of imports fails as Node fails it, not with undefined values', async () => {
    const dir = folder({
      'a.ts': "import { B } from './b.ts';\nexport const A = 'a';\nexport const auth = 'public';\nexport function invoke() { return B; }\n",
      'b.ts': "import { A } from './a.ts';\nexport const B = 'b saw ' + typeof A;\nexport const auth = 'public';\nexport function invoke() { return A; }\n",
    });
    const { runCli } = await import('./helpers/server.ts');
    const { code, stderr } = await runCli(['serve', '--port=0', `--methods-dir=${dir}`, '--log-level=debug']);
    expect(code).toBe(1);
    expect(stderr).toContain('cannot load');
    expect(stderr).toMatch(/before initialization/);
  });

  it("compiles with tsx's tsconfig, not one inside the folder, as serve --watch does", async () => {
    const method = "export const auth = 'public';\nclass B { get v() { return 'base'; } set v(_x: string) {} }\nclass A extends B { declare w: string; v!: string; }\nexport function invoke() { return String(new A().v); }\n";
    const dir = folder({ 'tsconfig.json': JSON.stringify({ compilerOptions: { target: 'ES2020', useDefineForClassFields: false } }), 'fields.ts': method });
    const bundled = await serve(dir);
    expect(fellBack(bundled)).toBeUndefined();
    const watched = await spawnServer(['--port=0', `--methods-dir=${dir}`, '--watch']);
    running.push(watched);
    const [a, b] = [await call(bundled, { method: 'fields' }), await call(watched, { method: 'fields' })];
    expect(a.json).toEqual(b.json);
  });

  it('a package.json inside the folder, which may make part of it CommonJS', async () => {
    const dir = folder({ 'old/package.json': '{"type": "commonjs"}', 'old/x.js': "exports.auth = 'public'; exports.invoke = () => 'cjs';\n", 'new.ts': "export const auth = 'public';\nexport function invoke() { return 'esm'; }\n" });
    const s = await serve(dir);
    expect(fellBack(s)).toContain('package.json');
    expect((await call(s, { method: 'old.x' })).json).toEqual('cjs');
    expect((await call(s, { method: 'new' })).json).toEqual('esm');
  });
});
