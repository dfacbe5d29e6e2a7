/**
 * A TCP relay in front of MySQL/MariaDB that reads the client's side of the protocol: it counts
 * the commands clients send (packets with sequence id 0: a multi-statement query is one), and can
 * cut a connection once a command it names has been passed on, before the answer comes back (a
 * reply lost on the way). Used by bench/mysql-round-trips.ts and the MySQL store's tests.
 */
import { connect, createServer, type Socket } from 'node:net';

export interface MySqlRelay {
  /** Port on 127.0.0.1 to connect to instead of the database's. */
  readonly port: number;
  /** Commands passed on so far. */
  commands(): number;
  /** From now on, the first command whose text includes `marker` is passed on and its connection cut. */
  cutAfter(marker: string): void;
  /** While on, the database's answers are dropped and the connections kept: answers lost on the way. */
  swallowReplies(on: boolean): void;
  close(): void;
}

/** @example const relay = await mysqlRelay('127.0.0.1', 3306); ... relay.commands() */
export async function mysqlRelay(host: string, port: number): Promise<MySqlRelay> {
  let commands = 0;
  let cutMarker: string | null = null;
  let swallowing = false;
  const sockets = new Set<Socket>();
  const relay = createServer((client) => {
    const server = connect(port, host);
    sockets.add(client).add(server);
    let pending = Buffer.alloc(0);
    let cut = false;
    const end = () => {
      client.destroy();
      // After a cut the command must still reach the server: end, which flushes, not destroy.
      if (cut) server.end();
      else server.destroy();
    };
    client.on('data', (chunk: Buffer) => {
      server.write(chunk);
      // Packets: a 3-byte little-endian length, a sequence id, then the payload.
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4) {
        const length = pending.readUIntLE(0, 3);
        if (pending.length < 4 + length) break;
        if (pending[3] === 0) {
          commands++;
          if (cutMarker !== null && pending.subarray(4, 4 + length).includes(cutMarker)) {
            cutMarker = null;
            cut = true; // the server gets the command; its answer goes missing
            end();
            return;
          }
        }
        pending = pending.subarray(4 + length);
      }
    });
    server.on('data', (chunk: Buffer) => {
      if (!cut && !swallowing) client.write(chunk);
    });
    client.on('close', end).on('error', end);
    server.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  const address = relay.address();
  if (address === null || typeof address === 'string') throw new Error('the relay has no port');
  return {
    port: address.port,
    commands: () => commands,
    cutAfter: (marker) => {
      cutMarker = marker;
    },
    swallowReplies: (on) => {
      swallowing = on;
    },
    close: () => {
      for (const s of sockets) s.destroy();
      relay.close();
    },
  };
}
