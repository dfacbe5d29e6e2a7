/**
 * Start-up's fast path for `simpleapi serve`: every method file compiled by one esbuild call and
 * imported as one module. Imported one by one, each file is a round trip to tsx's loader thread
 * and its own esbuild transform; with a thousand files that was most of start-up.
 *
 * What a file imports from outside the methods folder (the framework, packages, Node's built-ins)
 * stays outside the bundle and is imported by its own URL, so a method shares those modules with
 * the server; helpers inside the folder are bundled once, shared by the methods that import them.
 *
 * A `fallback` answer (with the reason) means "import the files one by one instead", which also
 * names each broken file in its own error. That happens when the bundle would behave differently
 * from separate modules: a file reads `import.meta` (its URL would be the bundle's) or imports by
 * a computed name (it would resolve from the bundle's folder), files import each other in a
 * circle (a bundle's top-level `var`s would run where Node refuses), or the folder is not wholly
 * ES modules (CommonJS, a nested package.json): the bundle must not be more lenient than
 * `serve --watch`, which imports file by file. TypeScript is compiled with tsx's tsconfig.
 */
import { existsSync, readFileSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, isAbsolute, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import fg from 'fast-glob';
import type { Plugin } from 'esbuild';

/**
 * `oneAtATime`: import the files one after another, not in parallel. Node's loader can hang
 * for good when two imports race into the same circle of modules (seen 2 starts in 8 here).
 */
export type BundleOutcome = { modules: Record<string, unknown>[] } | { fallback: string; oneAtATime?: true };

/** The nearest file called `name` in `from` or a folder above it. */
function nearestUp(from: string, name: string): string | undefined {
  for (let at = from; ; at = dirname(at)) {
    if (existsSync(join(at, name))) return join(at, name);
    if (dirname(at) === at) return undefined;
  }
}

/** The type of the package scope `dir` sits in: the nearest package.json at or above it. */
function packageTypeOf(dir: string): string {
  const file = nearestUp(dir, 'package.json');
  if (file === undefined) return 'commonjs';
  try {
    const type = (JSON.parse(readFileSync(file, 'utf8')) as { type?: unknown }).type;
    return typeof type === 'string' ? type : 'commonjs';
  } catch {
    return 'unreadable';
  }
}

const inside = (dir: string, file: string) => {
  const rel = relative(dir, file);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) && !rel.split(sep).includes('node_modules');
};

function keepOutside(dir: string): Plugin {
  const again = Symbol('resolving');
  return {
    name: 'simpleapi-methods',
    setup(build) {
      // Absolute paths are the entry's own imports of the method files: no need to ask. A
      // callback per import is a round trip between esbuild and this process.
      build.onResolve({ filter: /^[^/]/ }, async (args) => {
        if (args.pluginData === again) return undefined;
        const found = await build.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: again });
        if (found.errors.length > 0) return { errors: found.errors };
        if (found.external || found.path === '' || !isAbsolute(found.path)) return { path: args.path, external: true };
        if (inside(dir, found.path)) return { path: found.path };
        return { path: pathToFileURL(found.path).href, external: true };
      });
    },
  };
}

/**
 * The tsconfig.json tsx compiles with: TSX_TSCONFIG_PATH, or the nearest one from the working
 * directory up. esbuild would otherwise read the one nearest each file, and its options (paths,
 * class fields, decorators) would then differ from what `serve --watch` compiles with.
 */
function tsxTsconfig(): string | undefined {
  const given = process.env.TSX_TSCONFIG_PATH;
  return given !== undefined && given !== '' ? resolve(given) : nearestUp(process.cwd(), 'tsconfig.json');
}

/** True when the folder's own modules import each other in a circle (`inputs` from esbuild's metafile). */
function hasCycle(inputs: Record<string, { imports: { path: string; external?: boolean }[] }>): boolean {
  const state = new Map<string, 'open' | 'done'>();
  const visit = (file: string): boolean => {
    const seen = state.get(file);
    if (seen !== undefined) return seen === 'open';
    state.set(file, 'open');
    for (const next of inputs[file]?.imports ?? []) if (next.external !== true && next.path in inputs && visit(next.path)) return true;
    state.set(file, 'done');
    return false;
  };
  return Object.keys(inputs).some((file) => visit(file));
}

/** esbuild's bundle of `files`, or why there is none. */
async function compile(dir: string, files: readonly string[], outfile: string): Promise<{ code: string } | { fallback: string; oneAtATime?: true }> {
  const { build } = await import('esbuild');
  const entry = files.map((file, i) => `export * as m${i} from ${JSON.stringify(file)};`).join('\n');
  const tsconfig = tsxTsconfig();
  try {
    const out = await build({
      stdin: { contents: entry, resolveDir: dir, loader: 'js', sourcefile: 'simpleapi-methods.js' },
      bundle: true,
      write: false,
      metafile: true,
      // Where the bundle will be: the source map names the method files relative to it.
      outfile,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      // Node's own ESM resolution: the `import`, `node` and `default` conditions, `main` only.
      conditions: [],
      mainFields: ['main'],
      ...(tsconfig === undefined ? { tsconfigRaw: {} } : { tsconfig }),
      sourcemap: 'inline',
      sourcesContent: false,
      logLevel: 'silent',
      absWorkingDir: dir,
      plugins: [keepOutside(dir)],
    });
    const code = out.outputFiles[0]!.text;
    // Only the folder's own code is in the bundle. A mention in a string or comment also counts:
    // the cost is only the slower path.
    if (code.includes('import.meta')) return { fallback: "a method file or helper reads import.meta, whose URL would be the bundle's" };
    // esbuild bundles `import('./literal')`; what is left is an import by a computed name.
    if (/\bimport\s*\(/.test(code)) return { fallback: "a method file or helper imports by a computed name, which would resolve from the bundle's folder" };
    // CommonJS inside the folder: Node would refuse `module.exports` in a .js file of an ES
    // module package, and esbuild's stand-in for `require` throws in an ES module bundle.
    if (code.includes('__commonJS(') || code.includes('__require')) return { fallback: 'a file in the folder is CommonJS (module.exports or require), which a bundle would treat differently from Node' };
    // A bundle turns top-level const into var, so a circle of imports that Node refuses
    // ("Cannot access 'A' before initialization") would run with undefined values instead.
    if (hasCycle(out.metafile.inputs)) return { fallback: 'files in the folder import each other in a circle, which a bundle would let run with undefined values', oneAtATime: true };
    return { code };
  } catch (err) {
    const cause = (err as { errors?: { text: string }[] }).errors?.[0];
    return { fallback: `esbuild: ${cause?.text ?? (err as Error).message}` };
  }
}

/**
 * Imports `files` (absolute paths under `dir`) as one bundle; their namespaces in the same order.
 * A method whose top-level code throws fails the whole bundle, and the caller's one-by-one import
 * then runs the top-level code of the files before it a second time: start-up is failing anyway.
 */
export async function importBundled(dir: string, files: readonly string[]): Promise<BundleOutcome> {
  if (packageTypeOf(dir) !== 'module') return { fallback: 'the methods folder is not in a {"type": "module"} package' };
  const nested = (await fg('**/package.json', { cwd: dir, ignore: ['**/node_modules/**'] })).filter((f) => f !== 'package.json');
  if (nested.length > 0) return { fallback: `${nested[0]} may change the module type of part of the folder` };
  // A real file, not a data: URL, so stack traces and source maps name a path.
  let at: string | undefined;
  try {
    at = mkdtempSync(join(tmpdir(), 'simpleapi-methods-'));
    const file = join(at, 'methods.mjs');
    const compiled = await compile(dir, files, file);
    if ('fallback' in compiled) return compiled;
    writeFileSync(file, compiled.code);
    const ns = (await import(pathToFileURL(file).href)) as Record<string, Record<string, unknown>>;
    return { modules: files.map((_, i) => ns[`m${i}`]!) };
  } catch (err) {
    return { fallback: `the bundle did not load: ${(err as Error).message}` };
  } finally {
    if (at !== undefined) rmSync(at, { recursive: true, force: true });
  }
}
