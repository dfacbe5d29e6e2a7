/**
 * Writing a streamed answer to a node:http response with backpressure: each piece waits for the
 * socket to take the last one (`drain`), so a client that does not read holds at most one piece
 * beyond the socket's buffers. A stream ends at its maximum duration, or when the client has not
 * taken what was written for the idle timeout; either way the producer is stopped.
 */
import type { ServerResponse } from 'node:http';
import type { StreamedBody } from '../core/request.ts';

export interface StreamLimits {
  /** Seconds a stream may last in all. */
  maxDuration: number;
  /** Seconds the client may leave written data untaken before the connection is cut. */
  idleTimeout: number;
}

/** Why a stream ended, for the log. */
export type StreamEnd = 'done' | 'client gone' | 'max duration' | 'client not reading';

/** Waits for `drain`, or gives up after `seconds` or when the response closes. */
function drained(res: ServerResponse, seconds: number): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    const timer = setTimeout(() => done(false), seconds * 1000);
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}

/**
 * Sends `status` and `headers`, then every piece, then the trailers; resolves with why it ended.
 * A stream cut short gets no trailers, so a signed one then lacks its MAC: the client can tell.
 * `abort` fires the method's ctx.signal, so a producer waiting for its next event stops too.
 *
 * @example await writeStream(res, 200, headers, response.stream, { maxDuration: 600, idleTimeout: 30 }, abort)
 */
export async function writeStream(
  res: ServerResponse,
  status: number,
  headers: Record<string, string>,
  body: StreamedBody,
  limits: StreamLimits,
  abort: () => void,
): Promise<StreamEnd> {
  let end = 'done' as StreamEnd;
  let wake: () => void = () => {};
  const stopped = new Promise<void>((resolve) => (wake = resolve));
  const stopWith = (why: StreamEnd) => {
    if (end !== 'done') return;
    end = why;
    wake();
  };
  const onClose = () => {
    if (!res.writableFinished) stopWith('client gone');
  };
  res.on('close', onClose);
  const deadline = setTimeout(() => stopWith('max duration'), limits.maxDuration * 1000);
  const pump = async () => {
    res.writeHead(status, headers);
    // Headers out at once: a client waits for them before it sees the first event.
    res.flushHeaders();
    for await (const piece of body.pieces) {
      if (end !== 'done' || res.destroyed) return;
      if (!res.write(piece) && !(await drained(res, limits.idleTimeout))) {
        if (!res.destroyed) stopWith('client not reading');
        return;
      }
    }
  };
  const pumped = pump();
  try {
    await Promise.race([pumped, stopped]);
  } finally {
    clearTimeout(deadline);
    res.off('close', onClose);
  }
  if (end !== 'done') {
    body.stop();
    abort();
    void pumped.catch(() => {});
  } else {
    await pumped;
  }
  if (end === 'client not reading') res.destroy();
  else if (!res.destroyed) {
    if (end === 'done') res.addTrailers(body.trailers());
    res.end();
  }
  return end;
}
