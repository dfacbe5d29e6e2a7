import type { MethodContext } from '../../src/index.ts';

export const description = 'Streams the time, once per interval, as server-sent events (or NDJSON), until count or the client goes away';
export const auth = 'public';
export const stream = true;
export const event = 'tick';
export const params = {
  type: 'object',
  properties: { intervalMs: { type: 'integer', minimum: 10, maximum: 60000 }, count: { type: 'integer', minimum: 1, maximum: 100000 } },
  additionalProperties: false,
} as const;

/** How many streams are open right now; a test reads it to see a disconnect noticed. */
export const open = { streams: 0 };

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

// The server writes each event as the client takes it (backpressure) and ends the stream at
// --stream-max-duration; ctx.signal fires when the client goes away or the stream is cut.
export async function* invoke(ctx: MethodContext, p: { intervalMs?: number; count?: number }) {
  open.streams++;
  try {
    for (let n = 0; p.count === undefined || n < p.count; n++) {
      if (n > 0) await sleep(p.intervalMs ?? 1000, ctx.signal);
      if (ctx.signal.aborted) return;
      yield { now: new Date().toISOString(), n };
    }
  } finally {
    open.streams--;
  }
}
