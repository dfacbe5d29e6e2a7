/**
 * Listening on a TCP port or a Unix socket path without surprises: a port in use says which flag
 * to change, a socket a live server answers on is refused rather than taken over, a stale socket
 * file (left by a process that died) is replaced, and on exit only our own socket file is removed.
 * Also the servers themselves (HTTP, or HTTPS with --tls-cert) with the configured limits, and a
 * graceful close.
 */
import cluster from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { lstatSync, readFileSync, renameSync, unlinkSync, type Stats } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, type Socket } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { ConfigError, type Config } from '../config.ts';
import { addressKeyOf } from '../core/address.ts';

/** The server could not listen where it was told to; the message says what to change. */
export class ListenError extends Error {
  override readonly name = 'ListenError';
}

/** Pending connections the kernel may queue; Node's 511 drops connects when a thousand clients arrive at once. */
const LISTEN_BACKLOG = 4096;

function listenOn(server: Server, target: { port: number; host: string } | { path: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ ...target, backlog: LISTEN_BACKLOG }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * Listens on `host:port`.
 *
 * @example await listenTcp(server, 8888, '127.0.0.1') // ListenError when the port is taken
 */
export async function listenTcp(server: Server, port: number, host: string): Promise<void> {
  try {
    await listenOn(server, { port, host });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      throw new ListenError(`port ${port} on ${host} is in use by another process: choose another with --port=<n> (--port=0 picks a free one)`);
    }
    if (code === 'EACCES') throw new ListenError(`port ${port} on ${host} needs privileges this process lacks: choose one above 1023 with --port=<n>`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new ListenError(`cannot listen on ${host}: no such local address (set --host, e.g. --host=127.0.0.1)`);
    throw err;
  }
}

/** Resolves true when something accepts a connection on the socket at `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ path });
    // A live server accepts at once (or its full backlog makes the connect fail with EAGAIN,
    // which is live too); only a file no process listens on gives ECONNREFUSED.
    const done = (live: boolean) => {
      socket.destroy();
      resolve(live);
    };
    socket.once('connect', () => done(true));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code !== 'ECONNREFUSED' && err.code !== 'ENOENT'));
    socket.setTimeout(2000, () => done(true));
  });
}

function statOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}

/** Longest Unix socket path (sun_path is 108 bytes on Linux, 104 on macOS, with its NUL). */
const MAX_SOCKET_PATH = 103;

/**
 * Checks a socket path before anything binds it: refuses (ListenError) when a live server answers
 * there or the path is not a socket; says whether a stale socket file is there to replace.
 *
 * @example await checkSocketPath('/run/api.sock') // true: a stale file is there
 */
export async function checkSocketPath(path: string): Promise<boolean> {
  const existing = statOrNull(path);
  if (existing === null) return false;
  if (!existing.isSocket()) throw new ListenError(`--socket=${path} exists and is not a socket: choose another path with --socket=<path>`);
  if (await answers(path)) {
    throw new ListenError(`socket ${path} is in use by another process (a server answers on it): choose another path with --socket=<path>, or stop that server`);
  }
  return true;
}

/**
 * Listens on the Unix socket `path` and returns the function that removes it again, called once
 * the server has closed. Refuses (ListenError) as checkSocketPath does. The socket is bound under a
 * temporary name beside `path` and renamed into place: Node removes the path it bound to when it
 * closes, so binding the temporary name keeps Node from ever unlinking `path`, and the release
 * removes it only while it is still our own socket. A cluster worker binds `path` itself: the
 * primary checked it before forking and holds the one socket all workers share.
 *
 * @example const release = await listenSocket(server, '/run/api.sock'); ...; server.close(release)
 */
export async function listenSocket(server: Server, path: string): Promise<() => void> {
  if (cluster.isWorker) {
    await listenOrExplain(server, path);
    return () => {};
  }
  const stale = await checkSocketPath(path);
  const temporary = join(dirname(path), `.${basename(path).slice(0, 16)}.${randomBytes(4).toString('hex')}`);
  if (Buffer.byteLength(temporary) > MAX_SOCKET_PATH) {
    // No room for a temporary name: bind the path itself (Node then removes it on close).
    if (stale) unlinkSync(path);
    await listenOrExplain(server, path);
    return () => {};
  }
  await listenOrExplain(server, temporary);
  try {
    // Atomic: a stale socket file is replaced in one step, never left missing.
    renameSync(temporary, path);
  } catch (err) {
    await new Promise((resolve) => server.close(resolve));
    throw new ListenError(`cannot put the socket at ${path}: ${(err as Error).message}`);
  }
  const ours = lstatSync(path);
  return () => {
    const now = statOrNull(path);
    if (now !== null && now.ino === ours.ino && now.dev === ours.dev) unlinkSync(path);
  };
}

async function listenOrExplain(server: Server, path: string): Promise<void> {
  try {
    await listenOn(server, { path });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new ListenError(`socket ${path} appeared while starting: choose another path with --socket=<path>`);
    if (code === 'EACCES' || code === 'ENOENT') throw new ListenError(`cannot create the socket ${path}: ${(err as Error).message} (is its folder there and writable?)`);
    throw err;
  }
}

/** Stops accepting, lets open requests finish for `graceSeconds`, then cuts what is left. */
export function closeServer(server: Server, graceSeconds: number): Promise<void> {
  return new Promise((resolve) => {
    const cut = setTimeout(() => server.closeAllConnections(), graceSeconds * 1000);
    cut.unref();
    // A keep-alive connection that goes idle after its last answer is closed too.
    const idle = setInterval(() => server.closeIdleConnections(), 100);
    server.close(() => {
      clearTimeout(cut);
      clearInterval(idle);
      resolve();
    });
    server.closeIdleConnections();
  });
}

/** An HTTP or, with tls.cert and tls.key, an HTTPS server with the configured limits. */
export function createNodeServer(config: Config, handler: (req: IncomingMessage, res: ServerResponse) => void): Server {
  const options = {
    headersTimeout: config.http.headersTimeout * 1000,
    requestTimeout: Math.max(config.http.requestTimeout, config.http.headersTimeout) * 1000,
    keepAliveTimeout: config.http.keepAliveTimeout * 1000,
    // Node checks the two timeouts above on this interval (30 s by default).
    connectionsCheckingInterval: 1000,
  };
  let server: Server;
  if (config.tls.cert !== '' || config.tls.key !== '') {
    if (config.tls.cert === '' || config.tls.key === '') throw new ConfigError('--tls-cert and --tls-key go together');
    let tls: { cert: Buffer; key: Buffer };
    try {
      tls = { cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) };
    } catch (err) {
      throw new ConfigError(`cannot read the TLS certificate or key: ${(err as Error).message}`);
    }
    server = createHttpsServer({ ...options, ...tls }, handler) as unknown as Server;
  } else {
    server = createHttpServer(options, handler);
  }
  server.maxConnections = config.http.maxConnections;
  // Behind a trusted proxy every connection is the proxy's: a per-address cap would cap it.
  if (config.http.maxConnectionsPerAddress > 0 && !behindProxy(config)) capPerAddress(server, config.http.maxConnectionsPerAddress);
  return server;
}

/**
 * Refuses (closes at once) a connection from an address that already has `max` open, so one
 * client cannot take every one of --max-connections.
 */
function capPerAddress(server: Server, max: number): void {
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const address = addressKeyOf(socket.remoteAddress ?? '');
    const count = open.get(address) ?? 0;
    if (count >= max) {
      socket.destroy();
      return;
    }
    open.set(address, count + 1);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left === 0) open.delete(address);
      else open.set(address, left);
    });
  });
}


/** True when --trust-proxy names a proxy in front (every connection then comes from it). */
function behindProxy(config: Config): boolean {
  return config.trustProxy !== false && config.trustProxy !== 0 && config.trustProxy !== '';
}
