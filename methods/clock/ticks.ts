import type { MethodContext } from '../../src/index.ts';

export const description = 'Streams the time as server-sent events, once per interval, until the client goes away (a raw method)';
export const auth = 'public';
export const raw = true;
export const params = {
  type: 'object',
  properties: { intervalMs: { type: 'integer', minimum: 10, maximum: 60000 }, count: { type: 'integer', minimum: 1, maximum: 100000 } },
  additionalProperties: false,
} as const;

/** How many streams are open right now; a test reads it to see a disconnect noticed. */
export const open = { streams: 0 };

export async function invoke(ctx: MethodContext, p: { intervalMs?: number; count?: number }) {
  const res = ctx.koa.res;
  ctx.koa.respond = false; // this method writes the response itself
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-request-id': ctx.requestId });
  open.streams++;
  let sent = 0;
  try {
    await new Promise<void>((resolve) => {
      const tick = () => {
        res.write(`id: ${sent}\nevent: tick\ndata: ${JSON.stringify({ now: new Date().toISOString(), n: sent })}\n\n`);
        sent++;
        if (p.count !== undefined && sent >= p.count) stop();
      };
      const timer = setInterval(tick, p.intervalMs ?? 1000);
      const stop = () => {
        clearInterval(timer);
        resolve();
      };
      ctx.signal.addEventListener('abort', stop, { once: true });
      tick();
    });
  } finally {
    open.streams--;
    if (!res.writableEnded) res.end();
  }
}
