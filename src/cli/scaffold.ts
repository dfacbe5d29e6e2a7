/**
 * Developer commands: `simpleapi new a.b.c [--public]` writes a method and its test from a
 * template; `simpleapi types --out=FILE` writes the TypeScript map of every method's params and
 * result that `SimpleApiClient<Methods>` checks calls against.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import type { Config } from '../config.ts';
import { discoverMethods, isValidMethodName } from '../core/registry.ts';

function methodTemplate(name: string, isPublic: boolean): string {
  return `import type { MethodContext } from 'simpleapi';

export const description = 'TODO: say what ${name} does';
export const auth = '${isPublic ? 'public' : 'session'}';

export const params = {
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 100 },
  },
  required: ['name'],
  additionalProperties: false,
} as const;

export const result = {
  type: 'object',
  properties: { greeting: { type: 'string' } },
  required: ['greeting'],
} as const;

interface Params {
  name: string;
}

export async function invoke(ctx: MethodContext, p: Params): Promise<{ greeting: string }> {
  ctx.log.debug({ name: p.name }, '${name} called');
  return { greeting: \`Hello, \${p.name}\` };
}
`;
}

function testTemplate(name: string, methodsDir: string, testFile: string, isPublic: boolean): string {
  const dir = relative(dirname(testFile), methodsDir).split('\\\\').join('/');
  return `import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, loadConfig, MemoryStore, startServer, type RunningServer } from 'simpleapi';
import { SimpleApiClient } from 'simpleapi/client';

const methodsDir = fileURLToPath(new URL('${dir === '' ? '.' : dir}', import.meta.url));
let server: RunningServer;
let client: SimpleApiClient;

beforeAll(async () => {
  const config = loadConfig({ argvOptions: { port: 0, methodsDir, logLevel: 'silent' }, env: {} });
  server = await startServer({ config, store: new MemoryStore(), log: createLogger({ level: 'silent' }) });
  client = new SimpleApiClient({ url: \`\${server.url}/\` });${isPublic ? '' : `\n  await client.create('${name}-tester', 'a-test-password');`}
});
afterAll(() => server.close(0));

describe('${name}', () => {
  it('answers with a greeting', async () => {
    expect(await client.call('${name}', { name: 'Ada' })).toEqual({ greeting: 'Hello, Ada' });
  });

  it('refuses params that do not fit its schema', async () => {
    await expect(client.call('${name}', { name: '' })).rejects.toMatchObject({ code: 'InvalidParams', details: [{ path: '/name' }] });
  });
});
`;
}

/**
 * Why discovery would not serve a method of this name (so `new` must not write it), or undefined
 * when it would. The rules are discovery's own: see discoverMethods in registry.ts.
 */
export function whyNotServed(name: string): string | undefined {
  if (!isValidMethodName(name)) {
    return `'${name}' is not a method name: its parts are joined by '.' and each must match [A-Za-z_][A-Za-z0-9_]* (letters, digits and _, not starting with a digit)`;
  }
  const parts = name.split('.');
  if (parts[0] === 'rpc') return `'${name}' is reserved: names under 'rpc.' are the built-in methods (rpc.discover); choose another first part`;
  const hidden = parts.find((p) => p.startsWith('_'));
  if (hidden !== undefined) {
    return `'${name}' would never be served: discovery skips files and folders starting with '_' (they hold helpers, like _shared.ts), and '${hidden}' does; drop the leading '_'`;
  }
  if (parts.includes('node_modules')) return `'${name}' would never be served: discovery skips node_modules folders`;
  return undefined;
}

/** `simpleapi new a.b.c [--public]`; refuses to overwrite. */
export function newMethod(config: Config, positional: string[], flags: Record<string, string>, cwd = process.cwd()): number {
  const name = positional[0];
  if (name === undefined || positional.length > 1) {
    process.stderr.write('usage: simpleapi new <a.b.c> [--public]\n');
    return 2;
  }
  const refused = whyNotServed(name);
  if (refused !== undefined) {
    process.stderr.write(`simpleapi: ${refused}; nothing was written\n`);
    return 2;
  }
  const parts = name.split('.');
  const file = join(config.methodsDir, ...parts) + '.ts';
  const testFile = resolve(cwd, 'test', 'methods', ...parts) + '.test.ts';
  for (const existing of [file, file.replace(/\.ts$/, '.js'), testFile]) {
    if (existsSync(existing)) {
      process.stderr.write(`simpleapi: ${existing} already exists; nothing was written\n`);
      return 1;
    }
  }
  const isPublic = flags.public === 'true';
  mkdirSync(dirname(file), { recursive: true });
  mkdirSync(dirname(testFile), { recursive: true });
  writeFileSync(file, methodTemplate(name, isPublic), { flag: 'wx' });
  writeFileSync(testFile, testTemplate(name, config.methodsDir, testFile, isPublic), { flag: 'wx' });
  process.stdout.write(`wrote ${relative(cwd, file)}\nwrote ${relative(cwd, testFile)}\n`);
  return 0;
}

/** A TypeScript identifier for a method's types: `math.sum` → `MathSum`. */
function typeName(method: string, suffix: string): string {
  return method.split(/[._]/).filter(Boolean).map((p) => p[0]!.toUpperCase() + p.slice(1)).join('') + suffix;
}

/** `simpleapi types --out=FILE`: the method map for `SimpleApiClient<Methods>`. */
export async function writeTypes(config: Config, flags: Record<string, string>, cwd = process.cwd()): Promise<number> {
  const { compile } = await import('json-schema-to-typescript');
  const methods = await discoverMethods(config.methodsDir);
  const blocks: string[] = ['/* Written by `simpleapi types`: the params and result of every method. Do not edit. */', ''];
  const entries: string[] = [];
  for (const name of Object.keys(methods).sort()) {
    const m = methods[name]!;
    const types: string[] = [];
    for (const [kind, schema] of [['Params', m.paramsSchema], ['Result', m.resultSchema]] as const) {
      const id = typeName(name, kind);
      if (schema === undefined || typeof schema === 'boolean') {
        blocks.push(`export type ${id} = unknown;`);
      } else {
        const source = await compile(structuredClone(schema) as never, id, { bannerComment: '', additionalProperties: false, strictIndexSignatures: true, format: true });
        blocks.push(source.trim());
      }
      types.push(id);
    }
    entries.push(`  ${JSON.stringify(name)}: { params: ${types[0]}; result: ${types[1]} };`);
  }
  // A type, not an interface: the client's constraint is an index signature, which only type literals satisfy.
  blocks.push('', '/** Pass to the client: `new SimpleApiClient<Methods>({ url })`. */', 'export type Methods = {', ...entries, '};', '');
  const out = resolve(cwd, flags.out ?? 'client-types.ts');
  writeFileSync(out, blocks.join('\n'));
  process.stdout.write(`wrote ${relative(cwd, out)} (${entries.length} methods)\n`);
  return 0;
}
