/**
 * The error table of docs/protocol.md §4, kept as data so that the simple envelope's HTTP status and the
 * JSON-RPC error code are both derived from one row.
 */

export interface ErrorKind {
  readonly status: number;
  readonly rpcCode: number;
  readonly type: string;
  readonly message: string;
}

export const ERRORS = {
  ParseError: { status: 400, rpcCode: -32700, type: 'invalidRequest', message: 'The body is not valid JSON' },
  InvalidRequest: { status: 400, rpcCode: -32600, type: 'invalidRequest', message: 'The request envelope is malformed' },
  MethodNotFound: { status: 404, rpcCode: -32601, type: 'notFound', message: 'No such method' },
  InvalidParams: { status: 400, rpcCode: -32602, type: 'invalidParams', message: 'The parameters are not valid' },
  InternalError: { status: 500, rpcCode: -32603, type: 'server', message: 'Internal error' },
  Unauthenticated: { status: 401, rpcCode: -32001, type: 'auth', message: 'A valid session is required' },
  BadSignature: { status: 401, rpcCode: -32002, type: 'auth', message: 'The request signature is not valid' },
  Forbidden: { status: 403, rpcCode: -32003, type: 'permission', message: 'Not allowed' },
  NotFound: { status: 404, rpcCode: -32004, type: 'notInDatabase', message: 'Not found' },
  Conflict: { status: 409, rpcCode: -32009, type: 'conflict', message: 'Conflict' },
  TooManyRequests: { status: 429, rpcCode: -32029, type: 'rateLimit', message: 'Too many requests' },
  PayloadTooLarge: { status: 413, rpcCode: -32600, type: 'invalidRequest', message: 'The body is too large' },
  UnsupportedMediaType: { status: 415, rpcCode: -32600, type: 'invalidRequest', message: 'Content-Type must be application/json' },
  Unavailable: { status: 503, rpcCode: -32050, type: 'server', message: 'The service is temporarily unavailable' },
  // Not in §4: documented beside it in README.md ("Errors beyond the table").
  Timeout: { status: 504, rpcCode: -32060, type: 'server', message: 'The method did not finish in time' },
  DatabaseRequired: { status: 501, rpcCode: -32051, type: 'server', message: 'This method needs a database: start the server with --db-url (db.url in server.conf.json)' },
} as const satisfies Record<string, ErrorKind>;

export type ErrorCode = keyof typeof ERRORS;

/** One entry of `details`: where a problem is (a JSON pointer) and what it is. */
export interface ErrorDetail {
  path?: string;
  message?: string;
  [key: string]: unknown;
}

export interface ApiErrorOptions {
  details?: unknown[];
  /** Seconds, sent as `Retry-After`. */
  retryAfter?: number;
  cause?: unknown;
}

/**
 * The error a method throws to answer with a specific code. Anything else it throws becomes an
 * InternalError whose message never reaches the client.
 *
 * @example throw new ApiError('NotFound', 'No note with that id')
 * @example throw new ApiError({ code: 'QuotaExceeded', status: 402, rpcCode: -32070, type: 'billing' }, 'Out of credit')
 */
export class ApiError extends Error {
  readonly code: string;
  readonly status: number;
  readonly rpcCode: number;
  readonly type: string;
  readonly details: unknown[] | undefined;
  readonly retryAfter: number | undefined;

  constructor(
    code: ErrorCode | { code: string; status: number; rpcCode: number; type: string },
    message?: string,
    options: ApiErrorOptions = {},
  ) {
    const kind: ErrorKind & { code: string } =
      typeof code === 'string' ? { code, ...ERRORS[code] } : { message: code.code, ...code };
    super(message ?? kind.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ApiError';
    this.code = kind.code;
    this.status = kind.status;
    this.rpcCode = kind.rpcCode;
    this.type = kind.type;
    this.details = options.details;
    this.retryAfter = options.retryAfter;
    if (typeof code !== 'string') checkCustomCode(kind);
  }
}

function checkCustomCode(kind: { code: string; status: number; rpcCode: number }): void {
  // §4: a method's own codes take a JSON-RPC code in -32000..-32099 and a real HTTP error status.
  if (!Number.isInteger(kind.rpcCode) || kind.rpcCode < -32099 || kind.rpcCode > -32000) {
    throw new RangeError(`ApiError ${kind.code}: rpcCode must be in -32000..-32099`);
  }
  if (!Number.isInteger(kind.status) || kind.status < 400 || kind.status > 599) {
    throw new RangeError(`ApiError ${kind.code}: status must be 400..599`);
  }
}

/** True for an ApiError, also one created by another copy of this module (a method's own import). */
export function isApiError(value: unknown): value is ApiError {
  return value instanceof ApiError || (value instanceof Error && value.name === 'ApiError' && 'rpcCode' in value);
}

/**
 * The one place where anything thrown becomes an ApiError. Unknown throws are InternalError with the
 * generic message; the original is kept as `cause` for the operator's log.
 */
export function toApiError(thrown: unknown): ApiError {
  if (isApiError(thrown)) return thrown;
  return new ApiError('InternalError', undefined, { cause: thrown });
}

/** The simple envelope's error body (§2a). */
export function simpleErrorBody(err: ApiError): { error: Record<string, unknown> } {
  const error: Record<string, unknown> = { code: err.code, message: err.message, type: err.type };
  if (err.details !== undefined && err.details.length > 0) error.details = err.details;
  return { error };
}

/** The JSON-RPC error object (§2b): `data` carries the §4 code, type and details. */
export function rpcErrorObject(err: ApiError): { code: number; message: string; data: Record<string, unknown> } {
  const data: Record<string, unknown> = { code: err.code, type: err.type };
  if (err.details !== undefined && err.details.length > 0) data.details = err.details;
  return { code: err.rpcCode, message: err.message, data };
}
