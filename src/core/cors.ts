/** CORS for the origins listed in --cors-origins, matched exactly; off (no headers at all) when none are. */
import { headerValue, type Headers } from './auth.ts';

const ALLOWED_HEADERS = 'content-type, x-session-id, x-timestamp, x-nonce, x-hmac, x-request-id, x-retry-of, x-retry-timestamp, traceparent, tracestate';
const EXPOSED_HEADERS = 'x-hmac, x-request-id, retry-after, location, x-retried, traceresponse';

export interface CorsPolicy {
  /** Headers for an answer to an allowed origin; undefined when none apply. */
  headers(request: Headers): Record<string, string> | undefined;
  /** The answer's headers to a preflight (OPTIONS); empty for an origin not allowed. */
  preflight(request: Headers): Record<string, string>;
}

/** @example const cors = corsPolicy('https://app.example.com'); cors.headers(req.headers) */
export function corsPolicy(origins: string): CorsPolicy {
  const allowed = new Set(origins.split(',').filter((o) => o !== ''));
  const headers = (request: Headers): Record<string, string> | undefined => {
    if (allowed.size === 0) return undefined;
    const origin = headerValue(request, 'origin');
    if (origin === undefined || !allowed.has(origin)) return undefined;
    return { 'access-control-allow-origin': origin, 'access-control-expose-headers': EXPOSED_HEADERS, vary: 'Origin' };
  };
  return {
    headers,
    preflight(request) {
      const h = headers(request);
      if (h === undefined) return {};
      return { ...h, 'access-control-allow-methods': 'POST', 'access-control-allow-headers': ALLOWED_HEADERS, 'access-control-max-age': '600' };
    },
  };
}
