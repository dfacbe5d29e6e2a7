/**
 * Structured JSON logs (pino). Secrets never reach a log line: nothing logs headers or bodies, and
 * the redact list is a second line of defence for fields a method might log by mistake.
 */
import pino, { type Logger } from 'pino';

export const REDACTED_FIELDS = [
  'password', 'old_password', 'new_password', 'session_key', 'key', 'hmac',
  '*.password', '*.old_password', '*.new_password', '*.session_key', '*.key', '*.hmac',
  'headers["x-hmac"]', '*.headers["x-hmac"]',
];

export interface LogOptions {
  level: string;
  /** Where lines go; standard output by default, asynchronously (pino's own buffered destination). */
  destination?: pino.DestinationStream;
  base?: Record<string, unknown>;
}

/** @example const log = createLogger({ level: 'info' }); log.info({ port }, 'listening') */
export function createLogger(options: LogOptions): Logger {
  const destination = options.destination ?? pino.destination({ dest: 1, sync: false });
  return pino(
    {
      level: options.level,
      base: options.base ?? { pid: process.pid },
      redact: { paths: REDACTED_FIELDS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
