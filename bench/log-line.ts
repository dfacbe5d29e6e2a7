// What the per-request log line costs, by how its lines reach the descriptor: one Buffer per line
// into sonic-boom's byte mode (the way before), against lines joined as a string and encoded once
// per 12 KB batch (src/log.ts). Both write to /dev/null through the same request-line formatter;
// ROUNDS interleaved rounds, the median ratio printed.
//   node bin/run-ts.js bench/log-line.ts
import { openSync } from 'node:fs';
import pino from 'pino';
import { bufferedDestination, createLogger, createRequestLine } from '../src/log.ts';

const LINES = 200_000;
const ROUNDS = Number(process.env.ROUNDS ?? 7);

function bufferPerLine(fd: number): pino.DestinationStream {
  const sonic = pino.destination({ dest: fd, sync: false, minLength: 12288, contentMode: 'buffer' });
  return { write: (line: string) => sonic.write(Buffer.from(line) as unknown as string) };
}

const lines = {
  'a Buffer per line': createRequestLine(createLogger({ level: 'info', destination: bufferPerLine(openSync('/dev/null', 'w')) })),
  'batched string': createRequestLine(createLogger({ level: 'info', destination: bufferedDestination(openSync('/dev/null', 'w')) })),
};
const ns: Record<string, number[]> = { 'a Buffer per line': [], 'batched string': [] };
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, line] of Object.entries(lines)) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < LINES; i++) line('0df45033-3ef6-4756-bc24-af27119c5663', 'secure_echo', 200, 0.1234, '00555692715b8a61e1d879f11c3fbac2');
    ns[name]!.push(Number(process.hrtime.bigint() - started) / LINES);
    // Let the asynchronous writes drain between rounds, so one side's backlog is not the other's.
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ratios = ns['batched string']!.map((x, i) => x / ns['a Buffer per line']![i]!);
for (const [name, xs] of Object.entries(ns)) console.log(`${name.padEnd(20)} ${median(xs).toFixed(0)} ns a line`);
console.log(`batched / per line: ${median(ratios).toFixed(2)}x (rounds: ${ratios.map((r) => r.toFixed(2)).join(', ')})`);
process.exit(0);
