/**
 * Structured JSON logs (pino). Secrets never reach a log line: nothing logs headers or bodies, and
 * the redact list is a second line of defence for fields a method might log by mistake.
 */
import pino, { type Logger } from 'pino';

const SECRET_FIELDS = ['password', 'old_password', 'new_password', 'session_key', 'key', 'hmac'];
const SECRET_HEADERS = ['x-hmac', 'authorization', 'cookie'];
/** Explicit paths: pino's redaction of wildcard paths costs several microseconds on every line. */
export const REDACTED_PATHS = [
  ...SECRET_FIELDS.flatMap((f) => [f, `params.${f}`, `parameters.${f}`, `body.${f}`]),
  ...SECRET_HEADERS.flatMap((h) => [`headers["${h}"]`, `req.headers["${h}"]`]),
];

export interface LogOptions {
  level: string;
  /** Where lines go; standard output by default, buffered (see below). */
  destination?: pino.DestinationStream;
  base?: Record<string, unknown>;
}

/** How often buffered lines are written out at the latest. */
const FLUSH_EVERY_MS = 200;

/**
 * Standard output through pino's own asynchronous destination, buffering up to ~3 KB: one
 * write(2) per many lines instead of one per request. Writes stay under PIPE_BUF (4 KB), so the
 * lines of several workers sharing the pipe do not interleave, and everything left is flushed at
 * exit.
 */
function bufferedStdout(): pino.DestinationStream {
  const destination = pino.destination({ dest: 1, sync: false, minLength: 3072 });
  setInterval(() => destination.flush(), FLUSH_EVERY_MS).unref();
  process.once('exit', () => {
    try {
      destination.flushSync();
    } catch {
      // a write still in flight: sonic-boom finishes it itself
    }
  });
  return destination;
}

/** @example const log = createLogger({ level: 'info' }); log.info({ port }, 'listening') */
export function createLogger(options: LogOptions): Logger {
  return pino(
    {
      level: options.level,
      base: options.base ?? { pid: process.pid },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    },
    options.destination ?? bufferedStdout(),
  );
}

/** Writes the one line per request, in pino's format, to a logger's own destination. */
export type RequestLine = (reqId: string, method: string, status: number, ms: number, traceId?: string) => void;

/**
 * The per-request line, formatted by hand: pino's generic path costs about 5 us a line here, a
 * fixed template well under one, and this line is written for every request. It goes to the
 * same destination as everything else and honours the logger's level.
 */
export function createRequestLine(log: Logger): RequestLine {
  const internals = log as unknown as Record<symbol, unknown>;
  const stream = internals[pino.symbols.streamSym] as { write(line: string): void } | undefined;
  // pino's own serialised base and child fields (`,"pid":123,...`), as its lines carry them.
  const chindings = String(internals[pino.symbols.chindingsSym] ?? '');
  const prefix = `{"level":30,"time":`;
  const middle = `${chindings},`;
  return (reqId, method, status, ms, traceId) => {
    if (!log.isLevelEnabled('info') || stream === undefined) return;
    // A trace id is 32 hex digits (src/core/trace.ts): nothing in it needs escaping.
    const trace = traceId === undefined ? '' : `"traceId":"${traceId}",`;
    stream.write(`${prefix}${Date.now()}${middle}"reqId":${JSON.stringify(reqId)},${trace}"method":${JSON.stringify(method)},"status":${status},"ms":${Math.round(ms * 1000) / 1000},"msg":"request"}\n`);
  };
}
