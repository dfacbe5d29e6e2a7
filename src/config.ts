/**
 * Configuration: one table of options from which the defaults, the JSON Schema that checks a
 * config, the environment variable names, the CLI flags and `--help` are all derived.
 * Precedence: defaults < server.conf.json < environment (SIMPLEAPI_*) < CLI flags.
 */
import { readFileSync } from 'node:fs';
import { resolve, dirname } from 'node:path';
import { Ajv } from 'ajv';
import proxyaddr from 'proxy-addr';

type JsonSchema = Record<string, unknown>;

export interface OptionSpec {
  /** Dotted path in the config object and in server.conf.json, e.g. `db.url`. */
  readonly key: string;
  /** CLI flag without dashes, e.g. `db-url`; the environment variable is SIMPLEAPI_DB_URL. */
  readonly flag: string;
  readonly schema: JsonSchema;
  readonly default: unknown;
  readonly description: string;
}

const seconds = (min: number) => ({ type: 'integer', minimum: min, maximum: 10 * 365 * 86400 });

export const OPTIONS: readonly OptionSpec[] = [
  { key: 'port', flag: 'port', schema: { type: 'integer', minimum: -1, maximum: 65535 }, default: 8888, description: 'TCP port to listen on (0 picks a free one; -1 serves no TCP, for --socket alone)' },
  { key: 'host', flag: 'host', schema: { type: 'string', minLength: 1 }, default: '127.0.0.1', description: 'Address to bind; 0.0.0.0 serves every interface' },
  { key: 'socket', flag: 'socket', schema: { type: 'string' }, default: '', description: 'Unix domain socket path to listen on, beside TCP (with --port=-1, instead of it)' },
  { key: 'path', flag: 'path', schema: { type: 'string', pattern: '^/' }, default: '/', description: 'Path of the POST endpoint' },
  { key: 'methodsDir', flag: 'methods-dir', schema: { type: 'string', minLength: 1 }, default: 'methods', description: 'Folder the methods are discovered in, relative to the config file' },
  { key: 'db.url', flag: 'db-url', schema: { type: 'string' }, default: '', description: 'Database URL: mongodb://… for MongoDB, mysql://user:pass@host:3306/db for MySQL or MariaDB; empty serves on the in-process store' },
  { key: 'db.name', flag: 'db-name', schema: { type: 'string', pattern: '^[^/\\\\. "$]{1,63}$' }, default: 'simpleapi', description: 'Database name (MongoDB; MySQL when the URL names none)' },
  { key: 'db.connectTimeout', flag: 'db-connect-timeout', schema: seconds(0), default: 10, description: 'Seconds to wait for the database at start-up (0: wait forever)' },
  { key: 'hmac.scheme', flag: 'hmac-scheme', schema: { enum: ['v1', 'v2'] }, default: 'v2', description: 'Request signing scheme (docs/protocol.md §6); v1 only for old clients' },
  { key: 'hmac.window', flag: 'hmac-window', schema: seconds(1), default: 300, description: 'v2: seconds a timestamp may differ from the server clock' },
  { key: 'retries.keep', flag: 'keep-outcomes', schema: { type: 'boolean' }, default: true, description: "v2: keep each signed call's answer for the signing window, so a retry (x-retry-of) gets it without the method running again" },
  { key: 'retries.maxOutcome', flag: 'outcome-limit', schema: { type: 'integer', minimum: 0, maximum: 8388608 }, default: 65536, description: 'Largest answer in bytes kept for retries; a retry of a larger one is Conflict "outcome not kept"' },
  { key: 'retries.memory', flag: 'outcome-memory', schema: { type: 'integer', minimum: 0, maximum: 2147483648 }, default: 33554432, description: 'Embedded store: most bytes of kept answers held at once; past it the oldest are dropped' },
  { key: 'session.ttl', flag: 'session-ttl', schema: seconds(1), default: 86400, description: 'Seconds a session lives after its last signed use' },
  { key: 'session.touchFraction', flag: 'session-touch-fraction', schema: { type: 'number', minimum: 0, maximum: 1 }, default: 0.01, description: 'Skip a session write when it would move expiry by less than this fraction of the TTL' },
  { key: 'session.maxState', flag: 'session-max-state', schema: { type: 'integer', minimum: 2, maximum: 16777216 }, default: 65536, description: 'Largest session state in bytes of JSON; a saveState() past it fails with PayloadTooLarge' },
  { key: 'session.maxPerUser', flag: 'session-max-per-user', schema: { type: 'integer', minimum: 1, maximum: 100000 }, default: 100, description: 'Sessions one user may hold; a new one ends the least recently used past it' },
  { key: 'login.maxFailures', flag: 'login-max-failures', schema: { type: 'integer', minimum: 1 }, default: 5, description: 'Consecutive failed password checks of one user_id from one client address before TooManyRequests (until a right password or the window ends)' },
  { key: 'login.maxFailuresPerIp', flag: 'login-max-failures-per-ip', schema: { type: 'integer', minimum: 1 }, default: 50, description: 'Failed password checks from one client address, across user_ids, within the window before TooManyRequests' },
  { key: 'login.maxFailuresPerUser', flag: 'login-max-failures-per-user', schema: { type: 'integer', minimum: 1 }, default: 100, description: 'Failed password checks of one user_id, across addresses, within the window before TooManyRequests (a ceiling against distributed guessing)' },
  { key: 'login.window', flag: 'login-window', schema: seconds(1), default: 900, description: 'Seconds of the fixed windows failed password checks are counted in' },
  { key: 'rateLimit.address', flag: 'rate-limit-address', schema: { type: 'integer', minimum: 0 }, default: 6000, description: 'Calls per --rate-limit-window per client address for anonymous calls, each batch entry counting (0: no limit); past it 429 with Retry-After' },
  { key: 'rateLimit.user', flag: 'rate-limit-user', schema: { type: 'integer', minimum: 0 }, default: 6000, description: 'Calls per --rate-limit-window per user for signed calls, each batch entry counting (0: no limit)' },
  { key: 'rateLimit.window', flag: 'rate-limit-window', schema: seconds(1), default: 60, description: 'Seconds over which --rate-limit-address and --rate-limit-user count calls' },
  { key: 'bodyLimit', flag: 'body-limit', schema: { type: 'integer', minimum: 64, maximum: 1073741824 }, default: 1048576, description: 'Largest request body in bytes (413 above)' },
  { key: 'answerLimit', flag: 'answer-limit', schema: { type: 'integer', minimum: 1024, maximum: 536870912 }, default: 16777216, description: 'Largest answer body in bytes: batch entries past it, or a single answer past it, are answered with an error instead' },
  { key: 'batchLimit', flag: 'batch-limit', schema: { type: 'integer', minimum: 1, maximum: 100000 }, default: 100, description: 'Most entries in one JSON-RPC batch' },
  { key: 'batchConcurrency', flag: 'batch-concurrency', schema: { type: 'integer', minimum: 1, maximum: 10000 }, default: 8, description: 'Batch entries run at once' },
  { key: 'workers', flag: 'workers', schema: { type: 'integer', minimum: 1, maximum: 256 }, default: 1, description: 'Processes serving the same port (node:cluster)' },
  { key: 'methodTimeout', flag: 'method-timeout', schema: { type: 'number', minimum: 0, maximum: 86400 }, default: 30, description: 'Seconds a method may run before its ctx.signal aborts and the client gets Timeout (0: no limit)' },
  { key: 'json.maxDepth', flag: 'json-max-depth', schema: { type: 'integer', minimum: 1, maximum: 10000 }, default: 64, description: 'Deepest nesting of arrays and objects accepted in a body (InvalidRequest deeper)' },
  { key: 'http.headersTimeout', flag: 'headers-timeout', schema: seconds(1), default: 10, description: 'Seconds a client has to send its request headers' },
  { key: 'http.requestTimeout', flag: 'request-timeout', schema: seconds(1), default: 30, description: 'Seconds a client has to send its whole request, body included' },
  { key: 'http.keepAliveTimeout', flag: 'keep-alive-timeout', schema: seconds(1), default: 5, description: 'Seconds an idle keep-alive connection stays open' },
  { key: 'http.maxConnections', flag: 'max-connections', schema: { type: 'integer', minimum: 1, maximum: 1000000 }, default: 10000, description: 'Most open connections per process; more are refused' },
  { key: 'http.maxConnectionsPerAddress', flag: 'max-connections-per-address', schema: { type: 'integer', minimum: 0, maximum: 1000000 }, default: 256, description: 'Most open connections from one client address (the socket\'s: not applied with --trust-proxy, where every connection comes from the proxy); 0: no limit' },
  { key: 'shutdownGrace', flag: 'shutdown-grace', schema: seconds(0), default: 10, description: 'Seconds in-flight requests get to finish after SIGTERM or SIGINT' },
  { key: 'tls.cert', flag: 'tls-cert', schema: { type: 'string' }, default: '', description: 'PEM certificate file: serve HTTPS (with --tls-key)' },
  { key: 'tls.key', flag: 'tls-key', schema: { type: 'string' }, default: '', description: 'PEM private key file for --tls-cert' },
  {
    key: 'trustProxy',
    flag: 'trust-proxy',
    schema: { anyOf: [{ type: 'boolean' }, { type: 'integer', minimum: 0, maximum: 100 }, { type: 'string', pattern: '^[^,\\s]+(,[^,\\s]+)*$' }] },
    default: false,
    description: 'Proxies in front whose X-Forwarded-For is believed: a hop count (true is 1), or comma-separated proxy addresses/CIDRs (loopback, uniquelocal, 10.0.0.0/8); the client address is the right-most untrusted one',
  },
  {
    key: 'allowedHosts',
    flag: 'allowed-hosts',
    schema: { type: 'string', pattern: '^$|^[^,\\s]+(,[^,\\s]+)*$' },
    default: '',
    description: 'Comma-separated Host names (host or host:port) answered besides localhost, 127.0.0.1 and [::1] when bound to loopback (against DNS rebinding); * answers any',
  },
  { key: 'cors.origins', flag: 'cors-origins', schema: { type: 'string', pattern: '^$|^https?://[^,\\s]+(,https?://[^,\\s]+)*$' }, default: '', description: 'Comma-separated origins allowed to call from browsers; CORS is off when empty' },
  { key: 'jobs.concurrency', flag: 'jobs-concurrency', schema: { type: 'integer', minimum: 1, maximum: 10000 }, default: 4, description: 'Background jobs run at once per process; more wait in the queue' },
  { key: 'jobs.keep', flag: 'jobs-keep', schema: seconds(1), default: 3600, description: 'Seconds a finished job stays readable at /jobs/<id> (in-process jobs: at most --jobs-max-total finished ones are kept, the oldest forgotten first)' },
  { key: 'jobs.timeout', flag: 'jobs-timeout', schema: seconds(1), default: 3600, description: 'Seconds a background job may run before it is failed with Timeout' },
  { key: 'jobs.maxPerOwner', flag: 'jobs-max-per-owner', schema: { type: 'integer', minimum: 1, maximum: 10000000 }, default: 100, description: 'Queued plus running jobs one user (or, for public jobs, one client address) may have; more are refused with 429 and Retry-After' },
  { key: 'jobs.maxTotal', flag: 'jobs-max-total', schema: { type: 'integer', minimum: 1, maximum: 100000000 }, default: 10000, description: 'Queued plus running jobs in all (per process in-process, in the database on MongoDB); more are refused with 429' },
  { key: 'jobs.ownerConcurrency', flag: 'jobs-owner-concurrency', schema: { type: 'integer', minimum: 1, maximum: 10000 }, default: 2, description: 'Most of one owner\'s jobs running at once (at most --jobs-concurrency; on MongoDB counted across instances), so another owner\'s job finds a free slot' },
  { key: 'jobs.lock', flag: 'jobs-lock', schema: seconds(1), default: 30, description: 'MongoDB: seconds before the job of a process that died is picked up by another' },
  { key: 'jobs.retries', flag: 'jobs-retries', schema: { type: 'integer', minimum: 0, maximum: 100 }, default: 2, description: 'MongoDB: runs again of a job whose process died, before it is failed' },
  { key: 'stream.maxDuration', flag: 'stream-max-duration', schema: seconds(1), default: 600, description: 'Seconds a streaming method\'s answer may last before the server ends it' },
  { key: 'stream.idleTimeout', flag: 'stream-idle-timeout', schema: seconds(1), default: 30, description: 'Seconds a client may leave a stream\'s data unread before the server cuts the connection' },
  { key: 'stream.maxConcurrent', flag: 'stream-max-concurrent', schema: { type: 'integer', minimum: 1, maximum: 1000000 }, default: 1000, description: 'Streams open at once per process; more are answered 429 with Retry-After' },
  { key: 'stream.maxPerAddress', flag: 'stream-max-per-address', schema: { type: 'integer', minimum: 1, maximum: 1000000 }, default: 16, description: 'Streams one client address may have open at once; more are answered 429 with Retry-After' },
  { key: 'docs', flag: 'docs', schema: { type: 'boolean' }, default: true, description: 'Serve the API console at GET /docs (--no-docs turns it off)' },
  { key: 'metrics.enabled', flag: 'metrics', schema: { type: 'boolean' }, default: false, description: 'Serve Prometheus metrics at GET /metrics (prom-client)' },
  { key: 'metrics.port', flag: 'metrics-port', schema: { type: 'integer', minimum: -1, maximum: 65535 }, default: -1, description: 'Serve /metrics on this port (on --host) instead of the main one; -1: on the main port; needed with --workers' },
  { key: 'logLevel', flag: 'log-level', schema: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] }, default: 'info', description: 'Least severe log level written' },
  { key: 'logFormat', flag: 'log-format', schema: { enum: ['auto', 'pretty', 'json'] }, default: 'auto', description: 'Log lines as JSON for machines or pretty text for people (pino-pretty); auto: pretty when standard output is a terminal, JSON otherwise' },
];

/** The resolved configuration the server runs with. */
export interface Config {
  port: number;
  host: string;
  socket: string;
  path: string;
  methodsDir: string;
  db: { url: string; name: string; connectTimeout: number };
  hmac: { scheme: 'v1' | 'v2'; window: number };
  retries: { keep: boolean; maxOutcome: number; memory: number };
  session: { ttl: number; touchFraction: number; maxState: number; maxPerUser: number };
  login: { maxFailures: number; maxFailuresPerIp: number; maxFailuresPerUser: number; window: number };
  rateLimit: { address: number; user: number; window: number };
  bodyLimit: number;
  answerLimit: number;
  batchLimit: number;
  methodTimeout: number;
  json: { maxDepth: number };
  http: { headersTimeout: number; requestTimeout: number; keepAliveTimeout: number; maxConnections: number; maxConnectionsPerAddress: number };
  shutdownGrace: number;
  tls: { cert: string; key: string };
  /** false, a hop count (true: 1), or trusted proxy addresses/CIDRs, comma-separated. */
  trustProxy: boolean | number | string;
  allowedHosts: string;
  cors: { origins: string };
  jobs: { concurrency: number; keep: number; timeout: number; retries: number; lock: number; maxPerOwner: number; maxTotal: number; ownerConcurrency: number };
  stream: { maxDuration: number; idleTimeout: number; maxConcurrent: number; maxPerAddress: number };
  docs: boolean;
  metrics: { enabled: boolean; port: number };
  batchConcurrency: number;
  workers: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  logFormat: 'auto' | 'pretty' | 'json';
}

/** A bad config value, unknown flag or unreadable file: the CLI prints it and exits with status 2. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const BY_FLAG = new Map(OPTIONS.map((o) => [o.flag, o]));

function buildSchema(): JsonSchema {
  const root: JsonSchema = { type: 'object', additionalProperties: false, properties: {} };
  for (const option of OPTIONS) {
    const parts = option.key.split('.');
    let node = root;
    for (const part of parts.slice(0, -1)) {
      const props = node.properties as Record<string, JsonSchema>;
      props[part] ??= { type: 'object', additionalProperties: false, properties: {} };
      node = props[part];
    }
    (node.properties as Record<string, JsonSchema>)[parts.at(-1)!] = { ...option.schema, description: option.description };
  }
  return root;
}

export const CONFIG_SCHEMA = buildSchema();
const validateConfig = new Ajv({ allErrors: true, strict: true }).compile(CONFIG_SCHEMA);

function setPath(target: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    node = (next !== null && typeof next === 'object' ? next : (node[part] = {})) as Record<string, unknown>;
  }
  node[parts.at(-1)!] = value;
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = v !== null && typeof v === 'object' && !Array.isArray(v) && b !== null && typeof b === 'object'
      ? deepMerge(b as Record<string, unknown>, v as Record<string, unknown>)
      : v;
  }
  return out;
}

/** Turns a flag or environment string into the option's type; the schema check then judges it. */
function coerce(option: OptionSpec, raw: string): unknown {
  if (option.schema.anyOf !== undefined) {
    // A hop count, a boolean or a list: whichever the text reads as.
    if (raw === 'true' || raw === '') return true;
    if (raw === 'false') return false;
    return /^[0-9]+$/.test(raw) ? Number(raw) : raw;
  }
  const type = option.schema.type;
  if (type === 'integer' || type === 'number') {
    const n = Number(raw);
    return raw.trim() === '' || Number.isNaN(n) ? raw : n;
  }
  if (type === 'boolean') return raw === 'true' || raw === '' ? true : raw === 'false' ? false : raw;
  return raw;
}

/** Levenshtein distance, for "did you mean" on a mistyped flag. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/**
 * The candidate closest to a mistyped `name`, when it is close enough to be what was meant.
 *
 * @example suggest('server', ['serve', 'new']) // 'serve'
 */
export function suggest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestScore = Infinity;
  for (const candidate of candidates) {
    const score = distance(name.toLowerCase(), candidate.toLowerCase());
    if (score < bestScore) [best, bestScore] = [candidate, score];
  }
  return bestScore <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

export function suggestFlag(name: string, extra: readonly string[] = []): string | undefined {
  return suggest(name, [...BY_FLAG.keys(), ...extra]);
}

export interface ParsedArgs {
  positional: string[];
  /** Flags that are config options, by option key. */
  options: Record<string, unknown>;
  /** Flags the command itself takes (e.g. `--url` for `call`), by flag name. */
  extra: Record<string, string>;
  configPath: string | undefined;
  help: boolean;
  /** `--version` was given. */
  version: boolean;
}

/**
 * Splits argv into positionals, config options and a command's own flags. Both `--port=8889` and
 * `--port 8889` are accepted; an unknown flag is a ConfigError with a near-miss suggestion.
 *
 * @example parseArgs(['serve', '--port=8889']).options // { port: 8889 }
 */
export function parseArgs(argv: readonly string[], commandFlags: readonly string[] = []): ParsedArgs {
  const parsed: ParsedArgs = { positional: [], options: {}, extra: {}, configPath: undefined, help: false, version: false };
  const booleanFlags = new Set(commandFlags.filter((f) => f.endsWith('?')).map((f) => f.slice(0, -1)));
  const valueFlags = new Set(commandFlags.filter((f) => !f.endsWith('?')));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      parsed.positional.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('--')) {
      if (arg.startsWith('-') && arg.length > 1 && arg !== '-h') throw new ConfigError(`unknown option '${arg}'`);
      if (arg === '-h') parsed.help = true;
      else parsed.positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    if (name === 'help') {
      parsed.help = true;
      continue;
    }
    if (name === 'version') {
      parsed.version = true;
      continue;
    }
    if (booleanFlags.has(name)) {
      parsed.extra[name] = eq === -1 ? 'true' : arg.slice(eq + 1);
      continue;
    }
    const takeValue = (): string => {
      if (eq !== -1) return arg.slice(eq + 1);
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new ConfigError(`option '--${name}' needs a value`);
      i++;
      return next;
    };
    if (name === 'config') {
      parsed.configPath = takeValue();
    } else if (valueFlags.has(name)) {
      parsed.extra[name] = takeValue();
    } else if (name.startsWith('no-') && (BY_FLAG.get(name.slice(3))?.schema.type === 'boolean' || name === 'no-trust-proxy') && eq === -1) {
      parsed.options[BY_FLAG.get(name.slice(3))!.key] = false;
    } else if ((BY_FLAG.get(name)?.schema.type === 'boolean' || name === 'trust-proxy') && eq === -1) {
      parsed.options[BY_FLAG.get(name)!.key] = true;
    } else {
      const option = BY_FLAG.get(name);
      if (option === undefined) {
        const hint = suggestFlag(name, [...valueFlags, ...booleanFlags, 'config', 'help', 'version']);
        throw new ConfigError(`unknown option '--${name}'${hint === undefined ? '' : ` (did you mean '--${hint}'?)`}`);
      }
      parsed.options[option.key] = coerce(option, takeValue());
    }
  }
  return parsed;
}

function defaults(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const option of OPTIONS) setPath(out, option.key, option.default);
  return out;
}

function fromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const option of OPTIONS) {
    const raw = env[envVar(option)];
    if (raw !== undefined) setPath(out, option.key, coerce(option, raw));
  }
  return out;
}

/** Every setting's dotted key, and the objects that hold them, for "did you mean" on a config file. */
const SETTING_KEYS = [...new Set(OPTIONS.flatMap((o) => o.key.split('.').map((_, i, parts) => parts.slice(0, i + 1).join('.'))))];

/** The SIMPLEAPI_* variables something reads: every option's, the config file's and the CLI password's. */
const ENV_SUFFIXES = new Set([...OPTIONS.map((o) => envVar(o).slice('SIMPLEAPI_'.length)), 'CONFIG', 'PASSWORD']);

/** True when `a` becomes `b` by one edit: a letter changed, added, dropped, or two swapped. */
function oneTypoApart(a: string, b: string): boolean {
  if (a === b || Math.abs(a.length - b.length) > 1) return false;
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  const [restA, restB] = [a.slice(i), b.slice(i)];
  return (
    restA.slice(1) === restB.slice(1) || // changed
    restA === restB.slice(1) || // added
    restA.slice(1) === restB || // dropped
    (restA.length >= 2 && restA[0] === restB[1] && restA[1] === restB[0] && restA.slice(2) === restB.slice(2)) // swapped
  );
}

/**
 * A SIMPLEAPI_* variable one typo away from a setting's (SIMPLEAPI_PROT, SIMPLEAPI_LOG_LEVL) would
 * be ignored without a word, as a config file's near-miss key is not. Anything further off is
 * left alone: other tools use the prefix too (SIMPLEAPI_HOME, SIMPLEAPI_DB_PASSWORD, ...).
 */
function checkEnvNames(env: NodeJS.ProcessEnv): void {
  for (const name of Object.keys(env)) {
    if (!name.startsWith('SIMPLEAPI_')) continue;
    const suffix = name.slice('SIMPLEAPI_'.length);
    if (suffix.length < 4 || ENV_SUFFIXES.has(suffix)) continue;
    const near = [...ENV_SUFFIXES].find((known) => known.length >= 4 && oneTypoApart(suffix, known));
    if (near !== undefined) throw new ConfigError(`environment variable ${name} is not a setting (did you mean SIMPLEAPI_${near}?); rename or unset it`);
  }
}

function describeErrors(errors: NonNullable<typeof validateConfig.errors>, source: (path: string) => string): string {
  return errors
    .map((e) => {
      const key = e.instancePath.slice(1).replaceAll('/', '.');
      if (e.keyword === 'additionalProperties') {
        const extra = String((e.params as { additionalProperty: string }).additionalProperty);
        const full = key === '' ? extra : `${key}.${extra}`;
        const hint = suggest(full, SETTING_KEYS);
        return `unknown setting '${full}'${hint === undefined ? '' : ` (did you mean '${hint}'?)`}`;
      }
      if (e.keyword === 'type' && (e.params as { type?: string }).type === 'boolean') {
        const where = source(key);
        return `${where}: must be true or false${where.startsWith('--') ? ` (${where} or --no-${where.slice(2)})` : ''}`;
      }
      if (e.keyword === 'enum') {
        const allowed = (e.params as { allowedValues: unknown[] }).allowedValues.map((v) => String(v)).join(', ');
        return `${source(key)}: must be one of ${allowed}`;
      }
      return `${source(key)}: ${e.message ?? 'invalid'}`;
    })
    .join('; ');
}

export interface LoadConfigInput {
  argvOptions?: Record<string, unknown>;
  configPath?: string | undefined;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/**
 * Resolves the configuration from its four layers and checks it.
 * `methodsDir` is made absolute against the config file's folder (or cwd without one).
 *
 * @example loadConfig({ argvOptions: { port: 8889 } }).port // 8889
 */
export function loadConfig(input: LoadConfigInput = {}): Config & { configFile: string | undefined } {
  const cwd = input.cwd ?? process.cwd();
  const env = input.env ?? process.env;
  const explicit = input.configPath ?? env.SIMPLEAPI_CONFIG;
  const file = resolve(cwd, explicit ?? 'server.conf.json');
  let fromFile: Record<string, unknown> = {};
  let configFile: string | undefined;
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError(`${file}: must hold a JSON object`);
    fromFile = parsed as Record<string, unknown>;
    delete fromFile.$schema;
    configFile = file;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    if (!missing || explicit !== undefined) {
      throw new ConfigError(`cannot read config ${file}: ${err instanceof SyntaxError ? err.message : (err as Error).message}`);
    }
  }
  const fileCheck = validateConfig(deepMerge(defaults(), fromFile));
  if (!fileCheck) throw new ConfigError(`${file}: ${describeErrors(validateConfig.errors ?? [], (k) => `'${k}'`)}`);

  checkEnvNames(env);
  const flags: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input.argvOptions ?? {})) setPath(flags, key, value);
  const merged = deepMerge(deepMerge(deepMerge(defaults(), fromFile), fromEnv(env)), flags);
  if (!validateConfig(merged)) {
    // Name the layer the bad value came from: the flag, or the environment variable.
    const sourceOf = (key: string) => {
      const option = OPTIONS.find((o) => o.key === key);
      if (option === undefined) return `'${key}'`;
      if (input.argvOptions !== undefined && key in input.argvOptions) return `--${option.flag}`;
      if (env[envVar(option)] !== undefined) return `environment variable ${envVar(option)}`;
      return `'${key}'${configFile === undefined ? '' : ` in ${configFile}`}`;
    };
    throw new ConfigError(describeErrors(validateConfig.errors ?? [], sourceOf));
  }
  const config = merged as unknown as Config;
  if (typeof config.trustProxy === 'string') {
    try {
      proxyaddr.compile(config.trustProxy.split(','));
    } catch (err) {
      throw new ConfigError(`--trust-proxy (SIMPLEAPI_TRUST_PROXY): ${(err as Error).message} (give a hop count, or addresses, CIDRs, loopback, linklocal, uniquelocal)`);
    }
  }
  config.methodsDir = resolve(configFile === undefined ? cwd : dirname(configFile), config.methodsDir);
  return { ...config, configFile };
}

/** `--help` text for the config options, generated from the same table. */
export function optionsHelp(): string {
  const rows = OPTIONS.map((o) => {
    const env = envVar(o);
    const def = o.default === '' ? '(none)' : JSON.stringify(o.default);
    return `  --${o.flag}=<${valueHint(o.schema)}>\n      ${o.description}\n      default ${def}; env ${env}; config "${o.key}"`;
  });
  return ['  --config=<file>\n      Config file (default ./server.conf.json; env SIMPLEAPI_CONFIG)', ...rows].join('\n');
}

/**
 * README's configuration table, generated from OPTIONS like `--help`, so the two cannot disagree.
 * `npm run readme:options` writes it into README.md; test/readme.test.ts fails when they differ.
 */
export function optionsMarkdown(): string {
  const cell = (text: string) => text.replaceAll('|', '\\|');
  const rows = OPTIONS.map((o) => {
    const def = o.default === '' ? '(none)' : String(o.default);
    const allowed = Array.isArray(o.schema.enum) ? ` (one of ${o.schema.enum.map((v) => `\`${String(v)}\``).join(', ')})` : '';
    const flag = o.schema.type === 'boolean' ? `\`--${o.flag}\`, \`--no-${o.flag}\`` : `\`--${o.flag}\``;
    return `| ${flag} | \`${o.key}\` | \`${envVar(o)}\` | ${cell(def)} | ${cell(o.description)}${cell(allowed)} |`;
  });
  return ['| flag | config key | environment | default | meaning |', '|---|---|---|---|---|', ...rows].join('\n');
}

/** The environment variable of an option: `db-url` is SIMPLEAPI_DB_URL. */
export function envVar(option: OptionSpec): string {
  return `SIMPLEAPI_${option.flag.toUpperCase().replaceAll('-', '_')}`;
}

function valueHint(schema: JsonSchema): string {
  if (Array.isArray(schema.enum)) return schema.enum.join('|');
  if (schema.type === 'boolean') return 'true|false';
  if (schema.anyOf !== undefined) return 'hops|addresses';
  return schema.type === 'integer' ? 'n' : schema.type === 'number' ? 'x' : 'text';
}
