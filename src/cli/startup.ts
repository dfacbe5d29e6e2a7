/**
 * What `simpleapi serve` says when it starts and when watch mode reloads: one rule for counting
 * methods everywhere, and the start-up summary a newcomer reads first.
 */
import type { MethodTable } from '../core/registry.ts';

/** Built-in methods are the reserved `rpc.*` names; discovery refuses them in files. */
const isBuiltin = (name: string) => name.startsWith('rpc.');

/**
 * The one method count: every method served, built-ins included, with the split said in words.
 * `builtins` are added to `table` when it holds only the files' methods (a watch reload).
 *
 * @example methodCount(server.methods).text // '17 methods (16 from files + rpc.discover)'
 */
export function methodCount(table: MethodTable, builtins: readonly string[] = []): { total: number; files: number; text: string } {
  const names = Object.keys(table);
  const served = [...new Set([...names.filter(isBuiltin), ...builtins])].sort();
  const files = names.filter((n) => !isBuiltin(n)).length;
  const total = files + served.length;
  const split = served.length === 0 ? `${files} from files` : `${files} from files + ${served.join(', ')}`;
  return { total, files, text: `${total} method${total === 1 ? '' : 's'} (${split})` };
}

/** The names of the built-ins in a served table. */
export function builtinNames(table: MethodTable): string[] {
  return Object.keys(table).filter(isBuiltin);
}

export interface SummaryInput {
  url: string | null;
  socketPath: string | null;
  docs: boolean;
  methods: MethodTable;
  /** The store's description ('embedded', 'mongodb', 'mysql'). */
  store: string;
  /** True for a database other instances share. */
  shared: boolean;
  dbName: string;
  scheme: 'v1' | 'v2';
  /** Where background jobs run: on the database's queue, or in this process. */
  jobs: 'database' | 'in-process';
  workers?: number;
  configFile: string | null;
}

/** A URL a browser on this machine can open: a wildcard bind address is reached on loopback. */
function browsable(url: string): string {
  return url.replace('//0.0.0.0:', '//127.0.0.1:').replace('//[::]:', '//[::1]:');
}

/**
 * The start-up line: its fields for machines, its message for people. Never the database URL,
 * which may hold a password; the database name is enough to know where sessions live.
 */
export function startupSummary(s: SummaryInput): { fields: Record<string, unknown>; message: string } {
  const count = methodCount(s.methods);
  const addresses = [s.url, s.socketPath === null ? null : `unix:${s.socketPath}`].filter((a): a is string => a !== null);
  const docsUrl = !s.docs ? null : s.url !== null ? `${browsable(s.url)}/docs` : `/docs on unix:${s.socketPath}`;
  const store = s.store;
  const jobs = s.jobs;
  const fields = {
    url: s.url,
    socket: s.socketPath,
    console: docsUrl,
    methods: count.total,
    methodFiles: count.files,
    store,
    ...(s.shared ? { dbName: s.dbName } : {}),
    hmacScheme: s.scheme,
    jobs,
    config: s.configFile,
  };
  const message = [
    `listening on ${addresses.join(' and ')}`,
    docsUrl === null ? 'console off (--no-docs)' : `console ${docsUrl}`,
    count.text,
    !s.shared ? `store ${s.store} (in this process; no --db-url)` : `store ${s.store} (database ${s.dbName})`,
    `signing ${s.scheme}`,
    s.jobs === 'in-process' ? 'jobs in this process' : 'jobs on the database (shared)',
  ].join('; ');
  return { fields, message };
}
