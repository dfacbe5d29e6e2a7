// How the benches start a simpleapi server: node's flags as its checkout's `npm start` gives
// them, and rate limits it never reaches. Plain JavaScript, for bench/ab.mjs as for the
// TypeScript benches.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Every request comes from 127.0.0.1: limits too high to be reached, so a bench measures what a
 * user pays for them (every call counted, as by default) without being refused.
 */
export const NO_RATE_LIMIT = ['--rate-limit-address=1000000000', '--rate-limit-user=1000000000'];

/**
 * The node flags of the checkout at `root`'s `npm start` (its package.json start script, which
 * runs `node [flags] bin/simpleapi.js serve`), so a bench runs simpleapi as a user starts it.
 */
export function startFlags(root) {
  const start = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).scripts?.start;
  const words = typeof start === 'string' ? start.split(/\s+/) : [];
  const node = words.indexOf('node');
  const bin = words.indexOf('bin/simpleapi.js');
  if (node < 0 || bin < node) throw new Error(`${root}/package.json: its start script is not "node [flags] bin/simpleapi.js ...": ${JSON.stringify(start)}`);
  return words.slice(node + 1, bin);
}
