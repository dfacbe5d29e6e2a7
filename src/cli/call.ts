/** `simpleapi call <method> [json-params]`: one call from the command line, signed when a user is given. */
import { SimpleApiClient, SimpleApiError } from '../client/index.ts';
import type { Config } from '../config.ts';
import { readPassword } from './password.ts';

const REACH_FLAGS = '--url=http://host:port/, --port=<n> or --unix=<socket path>';

/** Node's words for the connection errors a newcomer meets, by errno code. */
const CAUSES: Record<string, string> = {
  ECONNREFUSED: 'nothing listens there (connection refused)',
  ENOENT: 'no socket at that path',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'the host name did not resolve',
  ECONNRESET: 'the connection was reset',
  ETIMEDOUT: 'the connection timed out',
  EACCES: 'permission denied',
  EHOSTUNREACH: 'the host is unreachable',
};

/** Most bytes of params read from standard input. */
const MAX_STDIN_PARAMS = 16 * 1024 * 1024;

async function readAll(input: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of input) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size > MAX_STDIN_PARAMS) throw new Error(`more than ${MAX_STDIN_PARAMS} bytes`);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const SECRET_KEY = /(^|[_-])(pass|passwd|password|passphrase)$|password|secret|token/i;

/** The first key at any depth of `params` that names a secret (`password`, `old_password`, ...). */
export function secretKeyIn(params: unknown): string | undefined {
  const stack: unknown[] = [params];
  for (let seen = 0; stack.length > 0 && seen < 10_000; seen++) {
    const value = stack.pop();
    if (value === null || typeof value !== 'object') continue;
    for (const [key, inner] of Object.entries(value)) {
      if (!Array.isArray(value) && SECRET_KEY.test(key)) return key;
      stack.push(inner);
    }
  }
  return undefined;
}

export const ARGV_PARAMS_WARNING = (key: string) =>
  `simpleapi: warning: the params hold "${key}", which is visible to other users on the command line (ps, shell history); give the params on standard input instead: simpleapi call <method> - (then type them, or < file)\n`;

/** Where a call goes, and the `--url` it would be without flags: the config's host, port and path. */
function targetOf(flags: Record<string, string>, config: Config): { url?: string; socketPath?: string; label: string } | string {
  if (flags.unix !== undefined) return { socketPath: flags.unix, label: `unix:${flags.unix}` };
  if (flags.url !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(flags.url);
    } catch {
      // `127.0.0.1:8888` does not parse; `localhost:8888` does, with `localhost:` as its scheme.
    }
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      return `--url=${flags.url} is not an http(s) URL: write it with its scheme, e.g. --url=http://${flags.url.replace(/^\/+/, '')}`;
    }
    return { url: url.href, label: url.href };
  }
  if (config.port < 0) return `the configured port is -1 (no TCP): call through the server's socket with --unix=<socket path>, or give ${REACH_FLAGS}`;
  const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host === '::' ? '[::1]' : config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${config.port}${config.path}`;
  return { url, label: url };
}

/** The errno code and its message behind a failed fetch (`fetch failed` keeps them in `cause`). */
function connectionCause(err: unknown): { code: string; message: string } | undefined {
  const e = err as { code?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } };
  const source = typeof e.cause?.code === 'string' ? e.cause : typeof e.code === 'string' ? e : undefined;
  if (source === undefined) return undefined;
  return { code: String(source.code), message: String(source.message ?? '') };
}

export async function callCommand(positional: string[], flags: Record<string, string>, config: Config): Promise<number> {
  const [method, rawParams, ...extra] = positional;
  if (method === undefined || extra.length > 0) {
    process.stderr.write('usage: simpleapi call <method> [json-params | -] [--url=URL | --port=N | --unix=PATH] [--user=ID [--password-stdin]]\n');
    return 2;
  }
  if (rawParams === '-' && flags['password-stdin'] === 'true') {
    process.stderr.write('simpleapi: the params (-) and --password-stdin both read standard input: give the password with SIMPLEAPI_PASSWORD\n');
    return 2;
  }
  let params: unknown = {};
  if (rawParams !== undefined) {
    try {
      params = JSON.parse(rawParams === '-' ? await readAll(process.stdin) : rawParams);
    } catch (err) {
      process.stderr.write(`simpleapi: the params${rawParams === '-' ? ' on standard input' : ''} are not valid JSON: ${(err as Error).message}\n`);
      return 2;
    }
    const secret = rawParams === '-' ? undefined : secretKeyIn(params);
    if (secret !== undefined) process.stderr.write(ARGV_PARAMS_WARNING(secret));
  }
  const password = flags.user === undefined ? null : await readPassword({ flag: flags.password, stdin: flags['password-stdin'] === 'true', env: process.env });
  if (flags.user === undefined ? flags.password !== undefined || flags['password-stdin'] !== undefined : password === null) {
    process.stderr.write('simpleapi: --user needs a password: --password-stdin, SIMPLEAPI_PASSWORD, or the prompt on a terminal\n');
    return 2;
  }
  const target = targetOf(flags, config);
  if (typeof target === 'string') {
    process.stderr.write(`simpleapi: ${target}\n`);
    return 2;
  }
  // --socket is where `serve` listens; on `call` it changes nothing, which would go unnoticed.
  if (flags.socket !== undefined && flags.unix === undefined) process.stderr.write(`simpleapi: --socket is where a server listens; to call through a socket, use --unix=${flags.socket || '<path>'} (calling ${target.label})\n`);
  // `call ... | head` closes the pipe early: that is the reader's choice, not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  const client = new SimpleApiClient({ url: target.url, socketPath: target.socketPath, path: config.path, scheme: config.hmac.scheme });
  try {
    if (flags.user !== undefined) await client.login(flags.user, password!);
    let streamed = false;
    // A background method is waited for, with its progress on stderr (stdout keeps only the result).
    const result = await client.call(method, params, {
      wait: true,
      // §6 retries: the answer is the kept outcome of an earlier attempt, the method ran once.
      onAnswer: (a) => void (a.retried && process.stderr.write(`simpleapi: answered from the first attempt (retried, ${a.attempts} attempts; the method ran once)\n`)),
      onProgress: (job) => {
        const percent = job.progress === null ? '' : ` ${Math.round(job.progress.fraction * 100)}%`;
        process.stderr.write(`job ${job.job_id}: ${job.state}${percent}${job.progress?.note ? ` ${job.progress.note}` : ''}\n`);
      },
      // A raw method's stream (server-sent events, text): printed as it arrives, until it ends.
      onStream: async (chunks, response) => {
        streamed = true;
        if (flags.user !== undefined && response.headers.get('x-hmac') === null) process.stderr.write('simpleapi: this answer is a stream, which is not signed\n');
        for await (const chunk of chunks) process.stdout.write(chunk);
        if (response.status >= 400) throw new SimpleApiError('HttpError', `the server answered ${response.status}`, 'client', undefined, response.status);
      },
    });
    if (!streamed) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return 0;
  } catch (err) {
    if (err instanceof SimpleApiError) {
      const error = { code: err.code, message: err.message, type: err.type, ...(err.details === undefined ? {} : { details: err.details }) };
      process.stderr.write(`${JSON.stringify({ error }, null, 2)}\n`);
      if (err.code === 'Unauthenticated' && flags.user === undefined && (await needsSession(client, method))) {
        process.stderr.write(`simpleapi: ${method} needs a session: pass --user=<user_id> (the password from --password-stdin, SIMPLEAPI_PASSWORD or the prompt; an account is made with: simpleapi call account.create -, then {"user_id":"...","password":"..."} on standard input)\n`);
      }
      if (err.code === 'InvalidResponse') process.stderr.write(`simpleapi: ${target.label} did not answer as a simpleapi server does; point call at one with ${REACH_FLAGS}\n`);
      return 1;
    }
    const cause = connectionCause(err);
    if (cause !== undefined) {
      const why = CAUSES[cause.code] ?? cause.message;
      const socketHint = config.socket !== '' && flags.unix === undefined ? ` (--socket is where a server listens; to call through a socket, use --unix=${config.socket})` : '';
      process.stderr.write(
        `simpleapi: cannot reach the server at ${target.label}: ${why} (${cause.code}).${socketHint}\n` +
          `Is it running ('simpleapi serve')? Point call at it with ${REACH_FLAGS}.\n`,
      );
      return 1;
    }
    process.stderr.write(`simpleapi: ${(err as Error).message}\n`);
    return 1;
  }
}

/** Whether the server's own method list (rpc.discover) says this method needs a session. */
async function needsSession(client: SimpleApiClient, method: string): Promise<boolean> {
  try {
    const doc = (await client.call('rpc.discover')) as { methods?: { name: string; 'x-auth'?: string }[] };
    return doc.methods?.find((m) => m.name === method)?.['x-auth'] === 'session';
  } catch {
    return false;
  }
}
