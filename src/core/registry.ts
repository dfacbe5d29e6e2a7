/**
 * Method discovery: `methods/a/b/c.ts` becomes method `a.b.c`, found once at start-up. Every
 * check (name, duplicate, `invoke`, schema) runs here, so a bad file stops start-up naming itself
 * and nothing touches the file system per request.
 */
import { relative, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import fg from 'fast-glob';
import { mapLimited } from './concurrency.ts';
import { importBundled } from './method-bundle.ts';
import { Ajv2020 as Ajv } from 'ajv/dist/2020.js';
import type { ValidateFunction, ErrorObject } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { Auth, MethodContext } from './method.ts';
import { ruleProblem, type RateRule } from './rate-limit.ts';

/** One segment of a method name (docs/protocol.md §3). */
const SEGMENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const MAX_NAME_LENGTH = 256;

export interface MethodRecord {
  readonly name: string;
  readonly file: string;
  readonly auth: Auth;
  readonly description: string;
  readonly paramsSchema: unknown;
  readonly resultSchema: unknown;
  /** Absent when the method has no params schema: nothing to run. Stops at the first error. */
  readonly validate: ValidateFunction | undefined;
  /** The same schema reporting every error, for the details of small invalid params. */
  readonly explain?: ValidateFunction;
  /** Answered with 202 and a job id; runs on the job runner. */
  readonly background?: boolean;
  /** Returns an async iterable of events, sent as server-sent events or NDJSON. */
  readonly stream?: boolean;
  /** Streaming methods: the SSE event name. */
  readonly event?: string;
  /** Writes its own answer through ctx.http: not wrapped, serialised or signed. */
  readonly raw?: boolean;
  /** Seconds a background method allows its job (never above jobs.timeout, which the runner applies). */
  readonly timeout?: number;
  /** The method's own rate limit (`export const rateLimit`), on top of the caller's general one. */
  readonly rateLimit?: RateRule;
  readonly invoke: (ctx: MethodContext, params: unknown) => unknown;
}

/** A broken method file or folder: start-up stops with this message. */
export class RegistryError extends Error {
  override readonly name = 'RegistryError';
}

export type MethodTable = Readonly<Record<string, MethodRecord>>;

/** True when `name` is a well-formed method name; says nothing of whether it exists. */
export function isValidMethodName(name: string): boolean {
  if (name.length === 0 || name.length > MAX_NAME_LENGTH) return false;
  for (const segment of name.split('.')) if (!SEGMENT.test(segment)) return false;
  return true;
}

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

/**
 * One Ajv (JSON Schema 2020-12) for every method schema, as @fastify/ajv-compiler does. It stops
 * at the first error, as Fastify advises for untrusted input: with `allErrors`, one 1 MB array of
 * wrong items cost 284 ms of CPU and 200,000 errors; without it, under 0.1 ms. §4's one detail per
 * invalid parameter comes from a second, all-errors validator run only on small params (see
 * `explainable`).
 */
export function createAjv(options: { allErrors?: boolean } = {}): Ajv {
  const ajv = new Ajv({ allErrors: options.allErrors === true, strict: true, strictTypes: false, strictTuples: false, strictRequired: false, coerceTypes: false, useDefaults: false });
  return addFormats(ajv);
}

/** The all-errors twin of each first-error Ajv, for the details of small invalid params. */
const detailAjvs = new WeakMap<Ajv, Ajv>();

/** Params with at most this many values get every error in `details`; larger ones get the first. */
export const EXPLAIN_MAX_NODES = 1000;

/** True when `value` holds at most `max` values (counted until past it: bounded work). */
export function explainable(value: unknown, max = EXPLAIN_MAX_NODES): boolean {
  let seen = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (++seen > max) return false;
    if (v !== null && typeof v === 'object') {
      if (Array.isArray(v)) {
        if (seen + v.length > max) return false;
        for (const item of v) stack.push(item);
      } else {
        const values = Object.values(v);
        if (seen + values.length > max) return false;
        for (const item of values) stack.push(item);
      }
    }
  }
  return true;
}

/** Most entries in `details`, so a huge invalid array cannot make a huge error body. */
const MAX_DETAILS = 50;

/** The validator's errors as §2a details: a JSON pointer `path` and a `message` each. */
export function validationDetails(errors: readonly ErrorObject[] | null | undefined): { path: string; message: string }[] {
  return (errors ?? []).slice(0, MAX_DETAILS).map((e) => {
    let path = e.instancePath;
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'required') {
      const missing = (e.params as { missingProperty: string }).missingProperty;
      path = `${path}/${missing.replaceAll('~', '~0').replaceAll('/', '~1')}`;
      message = 'is required';
    } else if (e.keyword === 'additionalProperties') {
      const extra = (e.params as { additionalProperty: string }).additionalProperty;
      path = `${path}/${extra.replaceAll('~', '~0').replaceAll('/', '~1')}`;
      message = 'is not allowed';
    }
    return { path, message };
  });
}

/**
 * Node loads a `.ts` file with `export` syntax as CommonJS when no package.json above it says
 * `"type": "module"`, and then fails with a message that does not say so.
 */
function loadHint(err: unknown): string {
  const code = (err as { code?: string }).code;
  if (code === 'ERR_REQUIRE_CYCLE_MODULE' || code === 'ERR_REQUIRE_ESM') {
    return ' (method files are ES modules: put a package.json with {"type": "module"} in the methods folder or above it)';
  }
  return '';
}

function nameOf(relativePath: string): string {
  return relativePath.replace(/\.(ts|js)$/, '').split(/[\\/]/).join('.');
}

function pick(mod: Record<string, unknown>): Record<string, unknown> {
  // `export default defineMethod({...})` and plain named exports are both accepted.
  const def = mod.default;
  if (def !== null && typeof def === 'object' && typeof (def as { invoke?: unknown }).invoke === 'function') {
    return def as Record<string, unknown>;
  }
  return mod;
}

/** Checks a loaded module and compiles its schema into a record; throws RegistryError naming the file. */
export function buildRecord(name: string, file: string, mod: Record<string, unknown>, ajv: Ajv, compiled: Map<string, ValidateFunction> = new Map()): MethodRecord {
  const m = pick(mod);
  if (typeof m.invoke !== 'function') throw new RegistryError(`${file}: method '${name}' exports no invoke function`);
  const auth = m.auth ?? 'session';
  if (auth !== 'public' && auth !== 'session') {
    throw new RegistryError(`${file}: auth must be 'public' or 'session', not ${JSON.stringify(auth)}`);
  }
  if (m.description !== undefined && typeof m.description !== 'string') throw new RegistryError(`${file}: description must be a string`);
  for (const flag of ['background', 'raw', 'stream'] as const) {
    if (m[flag] !== undefined && typeof m[flag] !== 'boolean') throw new RegistryError(`${file}: ${flag} must be true or false`);
  }
  const kinds = (['background', 'raw', 'stream'] as const).filter((flag) => m[flag] === true);
  if (kinds.length > 1) throw new RegistryError(`${file}: a method is at most one of background, raw and stream (this one says ${kinds.join(' and ')})`);
  if (m.event !== undefined && (m.stream !== true || typeof m.event !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(m.event))) {
    throw new RegistryError(`${file}: event is the SSE event name of a streaming method (stream = true): 1 to 64 characters of [A-Za-z0-9_.-]`);
  }
  if (m.timeout !== undefined && (typeof m.timeout !== 'number' || !(m.timeout > 0) || m.background !== true)) {
    throw new RegistryError(`${file}: timeout is a background method's own time limit in seconds (a positive number; jobs.timeout still caps it)`);
  }
  if (m.rateLimit !== undefined) {
    const problem = ruleProblem(m.rateLimit);
    if (problem !== null) throw new RegistryError(`${file}: ${problem}`);
  }
  let validate: ValidateFunction | undefined;
  let explain: ValidateFunction | undefined;
  if (m.params !== undefined) {
    try {
      // Methods often share a schema (the same object, or the same text): compile each once.
      const key = JSON.stringify(m.params);
      validate = compiled.get(key);
      explain = compiled.get(`explain:${key}`);
      if (validate === undefined || explain === undefined) {
        let detailed = detailAjvs.get(ajv);
        if (detailed === undefined) detailAjvs.set(ajv, (detailed = createAjv({ allErrors: true })));
        validate = ajv.compile(m.params as object);
        explain = detailed.compile(m.params as object);
        compiled.set(key, validate);
        compiled.set(`explain:${key}`, explain);
      }
    } catch (err) {
      throw new RegistryError(`${file}: the params schema does not compile: ${(err as Error).message}`);
    }
  }
  if (m.result !== undefined) {
    try {
      ajv.compile(m.result as object);
    } catch (err) {
      throw new RegistryError(`${file}: the result schema does not compile: ${(err as Error).message}`);
    }
  }
  return {
    name,
    file,
    auth,
    description: (m.description as string | undefined) ?? '',
    paramsSchema: m.params,
    resultSchema: m.result,
    validate,
    ...(explain === undefined ? {} : { explain }),
    invoke: m.invoke as MethodRecord['invoke'],
    background: m.background === true,
    raw: m.raw === true,
    stream: m.stream === true,
    ...(typeof m.event === 'string' ? { event: m.event } : {}),
    ...(typeof m.timeout === 'number' ? { timeout: m.timeout } : {}),
    ...(m.rateLimit === undefined ? {} : { rateLimit: { ...(m.rateLimit as RateRule) } }),
  };
}

const IMPORT_CONCURRENCY = 128;

type Loaded = { mod: Record<string, unknown> } | { error: RegistryError };

/**
 * One import per file, in parallel: each goes through the TypeScript loader's own thread, and one
 * at a time start-up with a thousand files took seconds.
 */
function importEach(files: readonly string[], version: string | undefined, concurrency = IMPORT_CONCURRENCY): Promise<Loaded[]> {
  return mapLimited(files, concurrency, async (file): Promise<Loaded> => {
    try {
      const url = pathToFileURL(file).href + (version === undefined ? '' : `?${version}`);
      return { mod: (await import(url)) as Record<string, unknown> };
    } catch (err) {
      return { error: new RegistryError(`${file}: cannot load: ${(err as Error).message}${loadHint(err)}`) };
    }
  });
}

export interface DiscoverOptions {
  /** Added to each module's URL, so a reload (watch mode) imports the files afresh. */
  version?: string;
  /** Watch mode: a file that does not load or check is reported here, and what it returns (its last good record) serves instead. */
  onBrokenFile?: (error: RegistryError, name: string) => MethodRecord | undefined;
  /**
   * Import every file in one esbuild bundle (method-bundle.ts), falling back to one import per
   * file when the folder cannot take that path; `onFallback` hears why. For `serve`, where no one
   * else imports the method modules: a test importing a method file itself would get a second copy.
   */
  bundle?: { onFallback?: (why: string) => void };
}

/**
 * Finds and loads every method under `dir`. Files or folders starting with `_`, `*.test.*` and
 * `*.d.ts` are not methods. `rpc.*` is reserved for built-ins.
 *
 * @example const table = await discoverMethods('/srv/api/methods'); table['math.sum']
 */
export async function discoverMethods(dir: string, ajv: Ajv = createAjv(), options: DiscoverOptions = {}): Promise<MethodTable> {
  const { version, onBrokenFile } = options;
  const files = await fg(['**/*.ts', '**/*.js'], {
    cwd: dir,
    absolute: true,
    onlyFiles: true,
    followSymbolicLinks: false,
    ignore: ['**/_*', '**/_*/**', '**/*.test.*', '**/*.spec.*', '**/*.d.ts', '**/node_modules/**'],
  }).catch((err: Error) => {
    throw new RegistryError(`cannot read methods folder ${dir}: ${err.message}`);
  });
  files.sort();
  const table: Record<string, MethodRecord> = Object.create(null);
  const names: string[] = [];
  const fileOf = new Map<string, string>();
  // Names and duplicates first: they need no import, and their errors come in file order.
  for (const file of files) {
    const rel = relative(dir, file);
    const name = nameOf(rel);
    if (!isValidMethodName(name)) {
      throw new RegistryError(`${file}: '${rel.split(sep).join('/')}' is not a valid method name (each part must match ${SEGMENT.source})`);
    }
    if (name === 'rpc' || name.startsWith('rpc.')) throw new RegistryError(`${file}: names under 'rpc.' are reserved for built-ins`);
    const twin = fileOf.get(name);
    if (twin !== undefined) throw new RegistryError(`${file}: method '${name}' is also defined by ${twin}`);
    fileOf.set(name, file);
    names.push(name);
  }
  const bundled = options.bundle === undefined || files.length === 0 ? undefined : await importBundled(dir, files);
  if (bundled !== undefined && 'fallback' in bundled) options.bundle?.onFallback?.(bundled.fallback);
  const modules =
    bundled !== undefined && 'modules' in bundled ? bundled.modules.map((mod) => ({ mod })) : await importEach(files, version, bundled?.oneAtATime === true ? 1 : IMPORT_CONCURRENCY);
  const compiled = new Map<string, ValidateFunction>();
  files.forEach((file, i) => {
    const name = names[i]!;
    const loaded = modules[i]!;
    try {
      if ('error' in loaded) throw loaded.error;
      table[name] = buildRecord(name, file, loaded.mod, ajv, compiled);
    } catch (err) {
      if (onBrokenFile === undefined || !(err instanceof RegistryError)) throw err;
      const kept = onBrokenFile(err, name);
      if (kept !== undefined) table[name] = kept;
    }
  });
  return table;
}
