/**
 * Real servers for the tests: in-process ones (a real listening socket, a real client) and child
 * processes started as users start them (`node bin/simpleapi.js serve`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll } from 'vitest';
import { createServer as createNetServer } from 'node:net';
import { Writable } from 'node:stream';
import { resolve } from 'node:path';
import { loadConfig, type Config } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import type { Store } from '../../src/store/types.ts';

export const ROOT = resolve(import.meta.dirname, '../..');
export const FIXTURE_METHODS = resolve(ROOT, 'test/fixtures/methods');
export const SHIPPED_METHODS = resolve(ROOT, 'methods');

/** Log lines a server wrote, parsed. */
export class LogCapture extends Writable {
  readonly lines: Record<string, unknown>[] = [];
  readonly raw: string[] = [];
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line === '') continue;
      this.raw.push(line);
      try {
        this.lines.push(JSON.parse(line));
      } catch {
        this.lines.push({ unparsed: line });
      }
    }
    done();
  }
}

export interface TestServer extends RunningServer {
  url: string;
  logs: LogCapture;
  config: Config;
}

/** Options as CLI flags would give them, by config key (e.g. `{ 'hmac.scheme': 'v1' }`). */
export async function startTestServer(options: Record<string, unknown> = {}, store: Store = new MemoryStore()): Promise<TestServer> {
  const config = loadConfig({
    argvOptions: { port: 0, methodsDir: FIXTURE_METHODS, logLevel: 'debug', ...options },
    cwd: ROOT,
    env: {},
  });
  const logs = new LogCapture();
  const log = createLogger({ level: config.logLevel, destination: logs });
  const server = await startServer({ config, store, log });
  return Object.assign(server, { url: `${server.url!}${config.path}`, logs, config }) as TestServer;
}

/**
 * One in-process server for a describe block: started before its tests, closed after them.
 *
 * @example const server = useTestServer({ 'jobs.keep': 2 }); it('...', () => post(server.url, ...))
 */
export function useTestServer(options: Record<string, unknown> = {}, store?: () => Store): TestServer {
  let running: TestServer | undefined;
  beforeAll(async () => {
    running = await startTestServer(options, store?.());
  });
  afterAll(() => running?.close(0));
  return new Proxy({} as TestServer, {
    get(_target, key) {
      if (running === undefined) throw new Error('useTestServer: the server is started in beforeAll; use it inside a test');
      const value = Reflect.get(running, key) as unknown;
      return typeof value === 'function' ? value.bind(running) : value;
    },
  });
}

export interface Spawned {
  proc: ChildProcess;
  url: string | null;
  socket: string | null;
  stdout: string[];
  stderr: string[];
  /** Resolves with the exit code once the process ends. */
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Runs the CLI to its end; for commands that do not serve. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const proc = spawn(process.execPath, [resolve(ROOT, 'bin/simpleapi.js'), ...args], { cwd, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (c) => (stdout += c));
    proc.stderr.on('data', (c) => (stderr += c));
    proc.on('close', (code) => done({ code, stdout, stderr }));
  });
}

/**
 * Starts `simpleapi serve` as a child process and waits for its "listening" line.
 * Rejects with what it printed when it exits first.
 */
export function spawnServer(args: string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT): Promise<Spawned> {
  const proc = spawn(process.execPath, [resolve(ROOT, 'bin/simpleapi.js'), 'serve', ...args], {
    cwd,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const exited = new Promise<number | null>((r) => proc.on('close', (code) => r(code)));
  return new Promise((resolveStart, rejectStart) => {
    let buffered = '';
    let started = false;
    proc.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let nl: number;
      while ((nl = buffered.indexOf('\n')) !== -1) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        stdout.push(line);
        if (started) continue;
        try {
          const entry = JSON.parse(line) as { msg?: string; url?: string | null; socket?: string | null };
          if (entry.msg?.startsWith('listening')) {
            started = true;
            resolveStart({
              proc,
              url: entry.url === null || entry.url === undefined ? null : `${entry.url}/`,
              socket: entry.socket ?? null,
              stdout,
              stderr,
              exited,
              stop: (signal = 'SIGTERM') => {
                if (proc.exitCode === null) proc.kill(signal);
                return exited;
              },
            });
          }
        } catch {
          // not a log line
        }
      }
    });
    proc.stderr!.on('data', (c: Buffer) => stderr.push(c.toString('utf8')));
    void exited.then((code) => {
      if (!started) rejectStart(new Error(`server exited with ${code} before listening:\n${stderr.join('')}\n${stdout.join('\n')}`));
    });
  });
}

export interface HttpAnswer {
  status: number;
  headers: Headers;
  text: string;
  json: unknown;
}

/** A simple-envelope body (§2a): `call('math.sum', [1, 2])`. */
export const call = (method: string, parameters: unknown = {}): string => JSON.stringify({ method, parameters });

/** A JSON-RPC request body (§2b): `rpc('math.sum', [1, 2], 7)`. */
export const rpc = (method: string, params: unknown, id: unknown = 1): string => JSON.stringify({ jsonrpc: '2.0', method, params, id });

/** POSTs a body as given (no envelope added) and reads the whole answer. */
export async function post(url: string, body: string | Uint8Array, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: body as BodyInit });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: jsonOrUndefined(text) };
}

/** An answer's body as JSON; undefined when it is empty or not JSON (the test then reads `text`). */
export function jsonOrUndefined(text: string): unknown {
  try {
    return text === '' ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A TCP port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((done) => {
    const srv = createNetServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => done(port));
    });
  });
}
