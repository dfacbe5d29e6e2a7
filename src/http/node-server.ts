/**
 * node:http and node:https servers with the configured limits, listening on TCP or a Unix socket,
 * and closing gracefully.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { lstatSync, readFileSync, unlinkSync } from 'node:fs';
import type { Socket } from 'node:net';
import { ConfigError, type Config } from '../config.ts';

/** A socket file left by a process that died would make listen fail; anything else is left alone. */
export function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // absent: nothing to remove
  }
}

/** Pending connections the kernel may queue; Node's 511 drops connects when a thousand clients arrive at once. */
const LISTEN_BACKLOG = 4096;

export function listen(server: Server, target: { port: number; host: string } | { path: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ ...target, backlog: LISTEN_BACKLOG }, () => {
      server.off('error', reject);
      resolve();
    });
  });
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
  if (config.http.maxConnectionsPerAddress > 0 && !config.trustProxy) capPerAddress(server, config.http.maxConnectionsPerAddress);
  return server;
}

/**
 * Refuses (closes at once) a connection from an address that already has `max` open, so one
 * client cannot take every one of --max-connections.
 */
function capPerAddress(server: Server, max: number): void {
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '';
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

