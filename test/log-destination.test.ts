/**
 * The buffered standard output of src/log.ts, in real processes: every line arrives whole and in
 * order at exit, a quiet process's line is flushed while it runs, and --workers processes sharing
 * one pipe never interleave their lines.
 */
import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { bufferedDestination } from '../src/log.ts';

const SCRIPT = new URL('./fixtures/scripts/log-writer.ts', import.meta.url).pathname;

function writer(...args: string[]) {
  const child = spawn(process.execPath, ['bin/run-ts.js', SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let text = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  return { child, exited, text: () => text };
}

const parsed = (text: string) => text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { n: number; worker: number; pad: string });

describe('buffered log output', () => {
  it('holds no timer while it has nothing to write (an idle server never wakes for it), one while lines wait', () => {
    // Left open: the destination writes to it asynchronously, and a closed descriptor's number is
    // soon another stream's.
    const fd = openSync('/dev/null', 'w');
    vi.useFakeTimers();
    try {
      const out = bufferedDestination(fd);
      expect(vi.getTimerCount()).toBe(0);
      out.write('{"n":1}\n');
      out.write('{"n":2}\n');
      expect(vi.getTimerCount()).toBe(1);
      vi.advanceTimersByTime(200);
      expect(vi.getTimerCount()).toBe(0);
      out.write('{"n":3}\n');
      expect(vi.getTimerCount()).toBe(1);
      vi.advanceTimersByTime(200);
    } finally {
      vi.useRealTimers();
    }
  });

  it('delivers every line whole and in order when the process exits', async () => {
    const run = writer('exit', '5000');
    expect(await run.exited).toBe(0);
    const lines = parsed(run.text());
    expect(lines.map((l) => l.n)).toEqual(Array.from({ length: 5000 }, (_, n) => n));
    expect(lines[7]!.pad).toBe('é€'.repeat(7));
  });

  it("flushes a quiet process's line while it still runs", async () => {
    const run = writer('linger');
    let exited = false;
    void run.exited.then(() => (exited = true));
    try {
      await expect.poll(() => run.text(), { timeout: 8_000, interval: 50 }).toContain('"linger"');
      expect(exited).toBe(false);
    } finally {
      run.child.kill();
    }
  });

  it('keeps the lines of workers sharing one pipe apart', async () => {
    const run = writer('cluster', '3000');
    expect(await run.exited).toBe(0);
    // A torn write would leave a line that does not parse, or one that holds two.
    const lines = parsed(run.text());
    for (const worker of [1, 2]) expect(lines.filter((l) => l.worker === worker).map((l) => l.n)).toEqual(Array.from({ length: 3000 }, (_, n) => n));
  });
});
