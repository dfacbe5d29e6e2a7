/**
 * A v2 MAC as the server computes it (src/core/signing.ts: two one-shot hashes over the key's
 * pads), beside node's createHmac and beside the same one-shot with the inner digest taken as a
 * Buffer, as it was before 2026-12-06 (hash()'s 'buffer' output cost twice its 'binary' one on
 * Node 20). Rounds interleave the three, so the ratios are measured side by side. A signed call
 * computes two MACs: the request's and its answer's.
 * In this loop createHmac costs about what the one-shot does; served, it does not: each Hmac is a
 * native object the collector must finalise, and a signed server using createHmac for both MACs
 * spent 1.13x the CPU per call of this one (2026-12-06, `TOGETHER=1 ROUNDS=5 node bench/ab.mjs`
 * against a worktree whose hmacSha256Hex was createHmac; 38.6 against 34.5 us per call at warn).
 *
 * Run: node bin/run-ts.js bench/hmac.ts
 */
import { createHmac, hash } from 'node:crypto';
import { signV2Request } from '../src/core/signing.ts';
import { SIGNED_BODY } from './sign-v2.mjs';

const key = Buffer.alloc(32, 7);
const body = Buffer.from(SIGNED_BODY);
const timestamp = '1795000000';
const nonce = 'Zm9vYmFyYmF6cXV4MTIz';
const CALLS = 200_000;
const ROUNDS = 5;

/** src/core/signing.ts's one-shot MAC as it was, with the inner digest taken as a Buffer. */
const message = Buffer.alloc(16 * 1024);
const outer = Buffer.alloc(96);
const PREFIX = Buffer.from('simpleapi-v2\n');
const NEWLINE = Buffer.from('\n');
function withBufferDigest(): string {
  const pieces = [PREFIX, timestamp, NEWLINE, nonce, NEWLINE, body];
  for (let i = 0; i < 64; i++) {
    const b = i < key.length ? key[i]! : 0;
    message[i] = b ^ 0x36;
    outer[i] = b ^ 0x5c;
  }
  let at = 64;
  for (const piece of pieces) {
    if (typeof piece === 'string') at += message.write(piece, at, 'utf8');
    else {
      message.set(new Uint8Array(piece.buffer, piece.byteOffset, piece.byteLength), at);
      at += piece.byteLength;
    }
  }
  hash('sha256', message.subarray(0, at), 'buffer').copy(outer, 64);
  const mac = hash('sha256', outer, 'hex');
  message.fill(0, 0, at);
  outer.fill(0);
  return mac;
}

const ways: Record<string, () => string> = {
  'server (one-shot, binary digest)': () => signV2Request(key, timestamp, nonce, body),
  'one-shot, Buffer digest (before)': withBufferDigest,
  createHmac: () => createHmac('sha256', key).update(`simpleapi-v2\n${timestamp}\n${nonce}\n`).update(body).digest('hex'),
};

const expected = ways.createHmac!();
for (const [name, way] of Object.entries(ways)) if (way() !== expected) throw new Error(`${name}: a different MAC`);

const times = new Map<string, number[]>(Object.keys(ways).map((name) => [name, []]));
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, way] of Object.entries(ways)) {
    for (let i = 0; i < 10_000; i++) way();
    const start = performance.now();
    for (let i = 0; i < CALLS; i++) way();
    times.get(name)!.push(((performance.now() - start) * 1000) / CALLS);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const server = times.get('server (one-shot, binary digest)')!;
for (const [name, us] of times) {
  const ratios = us.map((t, i) => t / server[i]!);
  console.log(`${name.padEnd(34)} ${median(us).toFixed(2)} us per MAC, ${median(ratios).toFixed(2)}x the server's (median of ${ROUNDS} interleaved rounds)`);
}
