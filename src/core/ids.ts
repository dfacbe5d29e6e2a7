/**
 * The random ids a request carries (its request id, its trace's span and, for a new trace, the
 * trace id), from one pool of random bytes, each read out as one flat string. A string made by
 * concatenation, `crypto.randomUUID()`'s included, is a tree of pieces that node:http flattens
 * again as it checks and writes each header: behind raw node:http, a randomUUID request id cost
 * 7% of an echo's CPU, the same id written here 2.5% (bench/ab.mjs, loaded together).
 */
import { randomFillSync } from 'node:crypto';

// Refilled 4 KB at a time: one getrandom per ~100 requests, not one per id.
const pool = Buffer.alloc(4096);
let used = pool.length;

/** Where the ids are spelled out before they become strings; each string is copied out of it. */
const scratch = Buffer.alloc(64);
const HEX = Buffer.from('0123456789abcdef', 'latin1');
const DASH = 0x2d;

/** The offset in the pool of `n` fresh random bytes. */
function take(n: number): number {
  if (used + n > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const at = used;
  used += n;
  return at;
}

/** Writes `n` pool bytes from `from` as lower-case hex at `at` in the scratch; true when any is non-zero. */
function hexInto(at: number, from: number, n: number): boolean {
  let any = 0;
  for (let i = 0; i < n; i++) {
    const b = pool[from + i]!;
    any |= b;
    scratch[at + 2 * i] = HEX[b >> 4]!;
    scratch[at + 2 * i + 1] = HEX[b & 15]!;
  }
  return any !== 0;
}

/**
 * A random (version 4) UUID, as `crypto.randomUUID()` makes.
 *
 * @example newRequestId() // '3b241101-e2bb-4255-8caf-4136c566a962'
 */
export function newRequestId(): string {
  const r = take(16);
  pool[r + 6] = (pool[r + 6]! & 0x0f) | 0x40; // version 4
  pool[r + 8] = (pool[r + 8]! & 0x3f) | 0x80; // the RFC 9562 variant
  hexInto(0, r, 4);
  scratch[8] = DASH;
  hexInto(9, r + 4, 2);
  scratch[13] = DASH;
  hexInto(14, r + 6, 2);
  scratch[18] = DASH;
  hexInto(19, r + 8, 2);
  scratch[23] = DASH;
  hexInto(24, r + 10, 6);
  return scratch.toString('latin1', 0, 36);
}

/**
 * A W3C `traceresponse` (or `traceparent`) value, version 00: `traceId` when the trace is the
 * caller's, else a new random one, and a new random span id, neither all zeros. The ids are
 * the characters 3 to 35 and 36 to 52 of it.
 *
 * @example newSpan(null, '00') // '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00'
 */
export function newSpan(traceId: string | null, flags: string): string {
  scratch[0] = 0x30;
  scratch[1] = 0x30;
  scratch[2] = DASH;
  if (traceId === null) while (!hexInto(3, take(16), 16));
  else scratch.write(traceId, 3, 32, 'latin1');
  scratch[35] = DASH;
  while (!hexInto(36, take(8), 8));
  scratch[52] = DASH;
  scratch.write(flags, 53, 2, 'latin1');
  return scratch.toString('latin1', 0, 55);
}
