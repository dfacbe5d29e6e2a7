/**
 * A TCP proxy on loopback that loses answers on purpose, connection by connection: what a mobile
 * network does to a client. Each new client connection takes the next plan; when the plans run
 * out, connections pass.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export type Plan =
  /** Forward both ways. */
  | 'pass'
  /** Forward one request and its answer (read by its Content-Length), then close: the next request needs a new connection. */
  | 'pass-one'
  /** Forward the request; when the server's answer starts, close both sides (the answer is lost). */
  | 'drop-answer'
  /** Answer 503 (or 502, 504) itself without a signature, as a load balancer would; the server never sees the request. */
  | 'unsigned-503'
  | 'unsigned-502'
  | 'unsigned-504';

export interface LossyProxy {
  url: string;
  /** Client connections accepted so far. */
  readonly connections: number;
  /** Closes every open connection, both sides, now (a network cut). */
  cut(): void;
  close(): Promise<void>;
}

/** @example const proxy = await lossyProxy(new URL(server.url), ['drop-answer']) */
export async function lossyProxy(target: URL, plans: Plan[]): Promise<LossyProxy> {
  const open = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer((client) => {
    const plan = plans[connections++] ?? 'pass';
    open.add(client);
    client.on('close', () => open.delete(client));
    client.on('error', () => {});
    if (plan.startsWith('unsigned-')) {
      const status = plan.slice('unsigned-'.length);
      client.once('data', () => {
        client.end(`HTTP/1.1 ${status} From The Proxy\r\ncontent-type: text/plain\r\ncontent-length: 11\r\nconnection: close\r\n\r\nunavailable`);
      });
      return;
    }
    const upstream = createConnection({ host: target.hostname, port: Number(target.port) });
    open.add(upstream);
    upstream.on('close', () => {
      open.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => {});
    client.on('close', () => upstream.destroy());
    client.pipe(upstream);
    if (plan === 'pass') upstream.pipe(client);
    else if (plan === 'pass-one') {
      let seen = Buffer.alloc(0);
      upstream.on('data', (chunk: Buffer) => {
        client.write(chunk);
        seen = Buffer.concat([seen, chunk]);
        const end = seen.indexOf('\r\n\r\n');
        const length = /\r\ncontent-length: *(\d+)/i.exec(seen.subarray(0, end).toString('latin1'))?.[1];
        if (end !== -1 && length !== undefined && seen.length >= end + 4 + Number(length)) {
          client.end();
          upstream.destroy();
        }
      });
    } else {
      upstream.once('data', () => {
        client.destroy();
        upstream.destroy();
      });
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}${target.pathname}`,
    get connections() {
      return connections;
    },
    cut() {
      for (const socket of open) socket.destroy();
    },
    close: () =>
      new Promise<void>((r) => {
        for (const socket of open) socket.destroy();
        server.close(() => r());
      }),
  };
}
