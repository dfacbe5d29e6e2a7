/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/) for one request: the trace it belongs
 * to (the caller's `traceparent`, or a new one), and this server's span id within it. The trace id
 * goes into every log line of the request, `ctx.traceId` and the jobs the request starts; the
 * answer carries `traceresponse` (the response header of W3C Trace Context Level 2), so a caller
 * without a tracer of its own learns which trace to look up.
 */
import { newSpan } from './ids.ts';

/** The request's place in a trace; `response` is the whole `traceresponse` header, made once. */
export class TraceContext {
  constructor(
    /** 32 lower-case hex digits, never all zeros. */
    readonly traceId: string,
    /** The caller's span, when the trace came with the request. */
    readonly parentId: string | null,
    /** Two hex digits: the caller's flags (its sampling decision), `00` for a new trace. */
    readonly flags: string,
    /** `00-<trace id>-<this server's span id>-<flags>`. */
    readonly response: string,
  ) {}

  /** This server's span: 16 lower-case hex digits, never all zeros. */
  get spanId(): string {
    return this.response.slice(36, 52);
  }
}

// Version 00 is exactly 55 characters; a later version may append fields after a dash (§3.2.4).
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** The caller's trace, or null when the header is absent, repeated or not a valid traceparent. */
export function parseTraceparent(header: string | string[] | undefined): { traceId: string; parentId: string; flags: string } | null {
  if (typeof header !== 'string' || header.length > 512) return null;
  const value = header.trim();
  const m = TRACEPARENT.exec(value);
  if (m === null) return null;
  const [, version, traceId, parentId, flags, rest] = m as unknown as [string, string, string, string, string, string | undefined];
  if (version === 'ff') return null;
  if (version === '00' && rest !== undefined) return null;
  if (traceId === ZERO_TRACE || parentId === ZERO_SPAN) return null;
  return { traceId, parentId, flags };
}

/** The request's trace context: the caller's trace continued, or a new trace. */
export function traceOf(headers: Readonly<Record<string, string | string[] | undefined>>): TraceContext {
  const incoming = parseTraceparent(headers.traceparent);
  if (incoming === null) {
    const response = newSpan(null, '00');
    return new TraceContext(response.slice(3, 35), null, '00', response);
  }
  return new TraceContext(incoming.traceId, incoming.parentId, incoming.flags, newSpan(incoming.traceId, incoming.flags));
}
