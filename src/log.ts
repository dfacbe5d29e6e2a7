/**
 * Structured logs (pino), as JSON lines for machines or, with `--log-format=pretty` (the default
 * on a terminal), through pino-pretty for people: local times, level names, stacks unescaped.
 * Secrets never reach a log line: nothing logs headers or bodies, and the redact list is a second
 * line of defence for fields a method might log by mistake.
 */
import cluster from 'node:cluster';
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

const SECRET_FIELDS = ['password', 'old_password', 'new_password', 'session_key', 'key', 'hmac'];
const SECRET_HEADERS = ['x-hmac', 'authorization', 'cookie'];
/** Explicit paths: pino's redaction of wildcard paths costs several microseconds on every line. */
export const REDACTED_PATHS = [
  ...SECRET_FIELDS.flatMap((f) => [f, `params.${f}`, `parameters.${f}`, `body.${f}`]),
  ...SECRET_HEADERS.flatMap((h) => [`headers["${h}"]`, `req.headers["${h}"]`]),
];

export type LogFormat = 'pretty' | 'json';

export interface LogOptions {
  level: string;
  /** Where lines go; standard output by default, buffered (see below). */
  destination?: pino.DestinationStream;
  base?: Record<string, unknown>;
  /** JSON lines (the default) or pino-pretty's text; pretty output goes to `destination` too. */
  format?: LogFormat;
}

/** `auto` is pretty on a terminal and JSON anywhere else (a pipe, a file, a log collector). */
export function resolveLogFormat(format: 'auto' | LogFormat, stream: { isTTY?: boolean } = process.stdout): LogFormat {
  return format === 'auto' ? (stream.isTTY === true ? 'pretty' : 'json') : format;
}

/** How often buffered lines are written out at the latest. */
const FLUSH_EVERY_MS = 200;

/**
 * Standard output (or another descriptor), buffering lines: one write(2) per many lines instead
 * of one per request. Lines are joined as one string and encoded once per batch, then handed to
 * pino's own asynchronous destination (sonic-boom) in its byte mode, which does the writing and
 * its retries. A single process writes 12 KB batches; a worker of `--workers` keeps each batch,
 * and each write, within PIPE_BUF (4 KB), so the lines of workers sharing one pipe do not
 * interleave. Lines wait at most FLUSH_EVERY_MS.
 *
 * @example const log = pino({}, bufferedDestination()) // standard output, a batch per 12 KB or 200 ms
 */
export function bufferedDestination(fd = 1): pino.DestinationStream {
  // Why a string and not a Buffer per line: a request line cost 1.33 us formatted, encoded alone
  // and concatenated by sonic-boom, 0.95 us joined and encoded per batch (bench/log-line.ts,
  // 0.72x); on a served echo at info it is within the noise. sonic-boom's own text mode is
  // slower than either: it measures each line's UTF-8 length.
  const worker = cluster.isWorker;
  const batchBytes = worker ? 3072 : 12288;
  const sonic = pino.destination({ dest: fd, sync: false, minLength: 0, maxWrite: worker ? 4096 : 16384, contentMode: 'buffer' });
  let text = '';
  let size = 0;
  // Armed by the first line after a push, not an interval: an idle server (several instances on
  // one machine, most of them quiet) then never wakes for its log, where it woke 5 times a second.
  let timer: NodeJS.Timeout | null = null;
  const onTimer = (): void => {
    timer = null;
    push();
  };
  const push = (): void => {
    if (text === '') return;
    sonic.write(Buffer.from(text) as unknown as string);
    text = '';
    size = 0;
  };
  const destination = {
    write: (line: string) => {
      // A worker counts bytes (a batch must fit in PIPE_BUF); one process counts characters, an
      // estimate good enough for the size of a batch.
      const length = worker ? Buffer.byteLength(line) : line.length;
      if (worker && size + length > batchBytes) push();
      text += line;
      size += length;
      if (size >= batchBytes) push();
      else if (timer === null) timer = setTimeout(onTimer, FLUSH_EVERY_MS).unref();
    },
    flush: (cb?: (err?: Error) => void) => {
      push();
      sonic.flush(cb);
    },
  };
  process.once('exit', () => {
    push();
    try {
      sonic.flushSync();
    } catch {
      // Not ready, or destroyed. A batch whose asynchronous write is still in flight is not
      // written again here, and can be lost with the process (seen once in a test run: the
      // first 47 lines of a worker that wrote 3000 lines and exited at once).
    }
  });
  return destination;
}

/**
 * pino-pretty in this thread, writing synchronously: a terminal reads few lines, and this way
 * nothing is lost at exit and lines keep their order with stderr. The request line reads as one
 * line (`POST / 200 1.2 ms`) rather than a block of fields.
 */
function prettyStream(destination: pino.DestinationStream | undefined): pino.DestinationStream {
  return pretty({
    destination: destination ?? 1,
    sync: true,
    colorize: destination === undefined && process.stdout.isTTY === true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname',
    messageFormat: (line, messageKey) => {
      if (line[messageKey] === 'request' && typeof line.method === 'string') {
        const { reqId, method, status, ms } = line;
        for (const key of ['reqId', 'method', 'status', 'ms']) delete line[key];
        return `${method} ${status} ${ms} ms (${reqId})`;
      }
      return String(line[messageKey] ?? '');
    },
  });
}

/** What a logger made here writes to, kept so the request line need not reach into pino. */
interface LoggerOutput {
  stream: { write(line: string): void };
  /** The base fields serialised as pino puts them in a line: `,"pid":123,"worker":1`. */
  bindings: string;
}
const outputs = new WeakMap<Logger, LoggerOutput>();

/** @example const log = createLogger({ level: 'info' }); log.info({ port }, 'listening') */
export function createLogger(options: LogOptions): Logger {
  const base = options.base ?? { pid: process.pid };
  const stream = options.format === 'pretty' ? prettyStream(options.destination) : (options.destination ?? bufferedDestination());
  const log = pino({ level: options.level, base, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, stream);
  const bindings = Object.entries(base)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `,${JSON.stringify(key)}:${JSON.stringify(value)}`)
    .join('');
  outputs.set(log, { stream, bindings });
  return log;
}

/** Writes the one line per request, in pino's format, to a logger's own destination. */
export type RequestLine = (reqId: string, method: string, status: number, ms: number, traceId?: string) => void;

/**
 * The per-request line, formatted by hand: pino's generic path costs about 5 us a line here, a
 * fixed template well under one, and this line is written for every request. It goes to the
 * same destination as everything else (pino-pretty reads it like any line) and honours the
 * logger's level. A logger made elsewhere (a user's own pino) gets the line through pino itself.
 */
export function createRequestLine(log: Logger): RequestLine {
  const output = outputs.get(log);
  if (output === undefined) {
    return (reqId, method, status, ms, traceId) => log.info({ reqId, ...(traceId === undefined ? {} : { traceId }), method, status, ms: Math.round(ms * 1000) / 1000 }, 'request');
  }
  const { stream } = output;
  const prefix = `{"level":30,"time":`;
  const middle = `${output.bindings},`;
  return (reqId, method, status, ms, traceId) => {
    if (!log.isLevelEnabled('info')) return;
    // A trace id is 32 hex digits (src/core/trace.ts): nothing in it needs escaping.
    const trace = traceId === undefined ? '' : `"traceId":"${traceId}",`;
    stream.write(`${prefix}${Date.now()}${middle}"reqId":${JSON.stringify(reqId)},${trace}"method":${JSON.stringify(method)},"status":${status},"ms":${Math.round(ms * 1000) / 1000},"msg":"request"}\n`);
  };
}
