/**
 * The POST endpoint as a function from a CoreRequest to a CoreResponse: content type, UTF-8 and
 * JSON, the envelope, authentication, dispatch, serialisation and the response's signature.
 */
import type { Logger } from 'pino';
import { authenticate, responseSigner, type AuthResult, type AuthSettings, type ResponseSigner, type SignedCall } from './auth.ts';
import { decodeUtf8, exceedsDepth, isJsonContentType } from './body.ts';
import type { CallScope } from './context.ts';
import { errorReply, type Dispatcher, type Reply } from './dispatch.ts';
import { formOfBody, parseEnvelope, rpcError, runsACall, unparsableForm, type Envelope, type Form } from './envelope.ts';
import { ApiError, simpleErrorBody, toApiError } from './errors.ts';
import { NO_METRICS, type Metrics } from './metrics.ts';
import type { CoreRequest, CoreResponse, StreamedBody } from './request.ts';
import { framedStream, releasingBody, streamFormat, STREAM_CONTENT_TYPES, StreamSlots } from './stream.ts';
import type { TraceContext } from './trace.ts';
import { conflictReply, decideRetry, keepLater, outcomeOf, replayResponse, type RetrySettings } from './retry.ts';
import { nowSeconds } from './clock.ts';
import type { KeptOutcome, SessionRecord, Store } from '../store/types.ts';
import type { Verdict } from './rate-limit.ts';

export interface EndpointSettings {
  auth: AuthSettings;
  /** Largest answer body in bytes kept for retries (§6 v2 retries). */
  maxOutcome: number;
  maxDepth: number;
  batchLimit: number;
  /** Only for the message: the transport enforces it while reading. */
  bodyLimit: number;
  /** Largest answer body in bytes; absent: 16 MiB. */
  answerLimit?: number;
  /** Open streams at most, in all and per client address; absent: 1000 and 16. */
  streams?: { max: number; perAddress: number };
}

export const DEFAULT_ANSWER_LIMIT = 16 * 1024 * 1024;

const JSON_TYPE = 'application/json; charset=utf-8';

/** Most characters of a client-supplied name in the request line. */
const LABEL_MAX = 128;

// eslint-disable-next-line no-control-regex
const UNSAFE_IN_LOGS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const UNSAFE_IN_LOGS_ALL = new RegExp(UNSAFE_IN_LOGS.source, 'g');

/**
 * A client's string as the log may show it: at most LABEL_MAX characters (a 1 MB method name
 * once made a 1 MB log line) and control characters escaped, so it cannot forge or break lines.
 * Most names need neither, and are handed back after one test.
 */

export function logSafe(text: string): string {
  if (text.length <= LABEL_MAX && !UNSAFE_IN_LOGS.test(text)) return text;
  const cut = text.length > LABEL_MAX ? `${text.slice(0, LABEL_MAX)}…(${text.length} chars)` : text;
  return cut.replace(UNSAFE_IN_LOGS_ALL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** What the request line names for an envelope. */
function labelOf(envelope: Envelope): string {
  switch (envelope.kind) {
    case 'simple':
      return logSafe(envelope.call.method);
    case 'rpc':
      return 'method' in envelope.entry ? logSafe(envelope.entry.method) : '-';
    case 'batch':
      return `batch(${envelope.entries.length})`;
    default:
      return '-';
  }
}

/**
 * Serialises a reply's body within `limit` bytes. A batch is serialised entry by entry: an entry
 * that would take the answer past the limit is answered with an error instead, so a batch of
 * large results never becomes one huge string; a single answer past it is an error too. A result
 * JSON cannot hold (a BigInt, a cycle) becomes InternalError.
 */
const TOO_LARGE = Symbol('too large');
const NOT_JSON = Symbol('not JSON');
type Failure = typeof TOO_LARGE | typeof NOT_JSON;

/** The error of a refused answer, made only then: an Error takes a stack trace. */
function failure(why: Failure, limit: number): ApiError {
  return why === TOO_LARGE ? new ApiError('InternalError', `The answer would be larger than the limit of ${limit} bytes (--answer-limit)`) : new ApiError('InternalError');
}

/** UTF-8 bytes of `text`, counted only when they could pass `limit` (a code unit is at most 3 bytes). */
function bytesWithin(text: string, limit: number): number {
  return text.length * 3 <= limit ? text.length : Buffer.byteLength(text);
}

/** One JSON value as text within `limit`, or why it cannot be sent. */
function serializeOne(value: unknown, limit: number, log: Logger, requestId: string, traceId: string): string | Failure {
  try {
    const text = JSON.stringify(value);
    return text.length > limit || bytesWithin(text, limit) > limit ? TOO_LARGE : text;
  } catch (err) {
    // A RangeError here is a string past V8's own limit: too large, whatever the setting.
    if (err instanceof RangeError && /string length/i.test(err.message)) return TOO_LARGE;
    log.error({ reqId: requestId, traceId, err }, 'the result could not be serialised as JSON');
    return NOT_JSON;
  }
}

function serialize(reply: Reply, form: Form, log: Logger, requestId: string, traceId: string, limit: number): { status: number; text: string | undefined } {
  if (reply.body === undefined) return { status: reply.status, text: undefined };
  if (!Array.isArray(reply.body)) {
    const text = serializeOne(reply.body, limit, log, requestId, traceId);
    if (typeof text === 'string') return { status: reply.status, text };
    if (text === TOO_LARGE) log.warn({ reqId: requestId, traceId, limit }, 'an answer over the answer limit was refused');
    if (form === 'simple') return { status: 500, text: JSON.stringify(simpleErrorBody(failure(text, limit))) };
    return { status: reply.status, text: JSON.stringify(rpcError(failure(text, limit), (reply.body as { id?: never }).id ?? null)) };
  }
  const parts: string[] = [];
  let used = 2;
  let refused = 0;
  for (const entry of reply.body as { id?: unknown }[]) {
    let text = serializeOne(entry, limit, log, requestId, traceId);
    if (typeof text === 'string' && used + Buffer.byteLength(text) + 1 > limit) text = TOO_LARGE;
    if (typeof text !== 'string') {
      if (text === TOO_LARGE) refused++;
      text = JSON.stringify(rpcError(failure(text, limit), (entry.id ?? null) as never));
    }
    used += Buffer.byteLength(text) + 1;
    parts.push(text);
  }
  if (refused > 0) log.warn({ reqId: requestId, limit, refused }, 'batch entries over the answer limit were answered with errors');
  return { status: reply.status, text: `[${parts.join(',')}]` };
}

/**
 * A call's scope over its request. A class, so the request's signal is read (and made) only if a
 * method asks for ctx.signal, through a getter on the prototype: a getter in an object literal
 * would give every request's scope a shape of its own, which the collector then has to keep.
 */
class RequestCallScope implements CallScope {
  readonly ip: string;
  readonly http: CallScope['http'];
  #verdict: Verdict | undefined;
  constructor(
    readonly request: CoreRequest,
    readonly requestId: string,
    readonly traceId: string,
    readonly session: SessionRecord | null,
    verdict: Verdict | undefined,
  ) {
    this.ip = request.ip;
    this.http = request.http ?? null;
    this.#verdict = verdict;
  }
  get signal(): AbortSignal {
    return this.request.signal;
  }
  takeVerdict(): Verdict | undefined {
    const verdict = this.#verdict;
    this.#verdict = undefined;
    return verdict;
  }
}

/** A parsed request and what authentication made of it, on its way to its answer. */
interface Parsed {
  readonly request: CoreRequest;
  readonly requestId: string;
  readonly traceId: string;
  readonly label: string;
  readonly envelope: Envelope;
  readonly form: Form;
  readonly auth: AuthResult;
}

/** Counts a stream as open until its pieces end or the transport stops it, whichever comes first. */
function countedStream(body: StreamedBody, metrics: Metrics): StreamedBody {
  metrics.streamOpened();
  return releasingBody(body, () => metrics.streamClosed());
}

/**
 * Makes the endpoint. `requestId` and `extraHeaders` (CORS) come from the handler, which owns
 * what every route shares.
 *
 * @example const answer = createEndpoint({ store, log, dispatcher, settings }); const res = await answer(req, id, {})
 */
export function createEndpoint(deps: { store: Store; log: Logger; dispatcher: Dispatcher; settings: EndpointSettings; metrics?: Metrics }) {
  const { store, log, dispatcher, settings } = deps;
  const metrics = deps.metrics ?? NO_METRICS;
  const slots = new StreamSlots(settings.streams?.max ?? 1000, settings.streams?.perAddress ?? 16);
  const retrySettings: RetrySettings = { window: settings.auth.window, keepOutcomes: settings.auth.keepOutcomes, maxOutcome: settings.maxOutcome };

  const respond = (requestId: string, traceId: string, label: string, reply: Reply, form: Form, signer: ResponseSigner | undefined, request: CoreRequest, close = false): CoreResponse => {
    if (reply.taken === true) return { status: 0, headers: {}, taken: true, label };
    const headers: Record<string, string> = { 'x-request-id': requestId };
    if (reply.retryAfter !== undefined) headers['retry-after'] = String(Math.ceil(reply.retryAfter));
    if (reply.location !== undefined) headers.location = reply.location;
    if (reply.stream !== undefined) {
      const slot = slots.take(request.ip);
      if ('refused' in slot) {
        // The method's iterator has not been read: ending it runs its finally and nothing else.
        void Promise.resolve(reply.stream.events[Symbol.asyncIterator]().return?.()).catch(() => {});
        const why = slot.refused === 'address' ? 'this address has as many streams open as it may (--stream-max-per-address)' : 'the server has as many streams open as it may (--stream-max-concurrent)';
        metrics.refused('TooManyRequests');
        return respond(requestId, traceId, label, errorReply(new ApiError('TooManyRequests', `Too many open streams: ${why}; try again when one has ended`, { retryAfter: 5 }), form), form, signer, request);
      }
      const format = streamFormat(typeof request.headers.accept === 'string' ? request.headers.accept : undefined);
      headers['content-type'] = STREAM_CONTENT_TYPES[format];
      headers['cache-control'] = 'no-store';
      if (signer !== undefined) headers.trailer = 'x-hmac';
      const framed = framedStream(reply.stream, format, signer, (thrown) => {
        const error = toApiError(thrown);
        if (error.code === 'InternalError') log.error({ reqId: requestId, traceId, method: label, err: error.cause }, 'stream threw');
        return simpleErrorBody(error);
      });
      const stream = releasingBody(framed, slot.release);
      return { status: 200, headers, stream: metrics.on ? countedStream(stream, metrics) : stream, label };
    }
    const { status, text } = serialize(reply, form, log, requestId, traceId, settings.answerLimit ?? DEFAULT_ANSWER_LIMIT);
    if (text !== undefined) headers['content-type'] = JSON_TYPE;
    if (signer !== undefined) headers['x-hmac'] = signer.sign(text ?? '');
    return text === undefined ? { status, headers, label, close } : { status, headers, body: text, label, close };
  };

  /** An answer to a request refused before anything was verified: never signed. */
  const refuse = (request: CoreRequest, requestId: string, traceId: string, error: ApiError, form: Form, close = false): CoreResponse => {
    metrics.refused(error.code);
    return respond(requestId, traceId, '-', errorReply(error, form), form, undefined, request, close);
  };

  /** A reply as the response to send; a raw method that began writing has already answered. */
  const toResponse = (reply: Reply, call: Parsed): CoreResponse => {
    const request = call.request;
    // A raw method that failed after it began writing has answered all that can be answered. One
    // it left open (it threw mid-answer, or ran past --method-timeout ignoring ctx.signal) is cut:
    // otherwise it would hold the connection, and its client would wait, for as long as it runs.
    if (reply.taken !== true && request.http?.res.headersSent === true) {
      if (!request.http.res.writableEnded) request.http.res.destroy();
      reply = { status: 0, taken: true };
    }
    return respond(call.requestId, call.traceId, call.label, reply, call.form, responseSigner(call.auth, reply.issued, settings.auth.scheme), request);
  };

  /** The answer, its outcome kept for retries once it has gone out. */
  const keptAnswer = (reply: Reply, call: Parsed, sessionId: string, keptUnder: string): CoreResponse => {
    let response: CoreResponse;
    let outcome: KeptOutcome | null;
    try {
      response = toResponse(reply, call);
      outcome = outcomeOf(response, reply.issued !== undefined, settings.maxOutcome);
    } catch (err) {
      return unkept(err, call, sessionId, keptUnder);
    }
    keepLater(store, sessionId, keptUnder, outcome, log, call.requestId);
    return response;
  };

  /**
   * A kept call that failed before its answer: recorded as "not kept", since a record left
   * "running" would answer its retries 409 for the whole window; then the failure goes on.
   */
  const unkept = (err: unknown, call: Parsed, sessionId: string, keptUnder: string): never => {
    keepLater(store, sessionId, keptUnder, null, log, call.requestId);
    throw err;
  };

  /**
   * Runs the envelope and answers it, without a promise when the call settles synchronously.
   * `keptUnder`: the nonce whose record keeps the outcome for retries (§6), after the answer.
   */
  const run = (call: Parsed, keptUnder: string | undefined): CoreResponse | Promise<CoreResponse> => {
    const { auth } = call;
    const verified = auth.kind === 'verified' ? auth : undefined;
    const scope = new RequestCallScope(call.request, call.requestId, call.traceId, verified?.session ?? null, verified?.verdict);
    if (keptUnder === undefined || scope.session === null) {
      const reply = dispatcher.reply(call.envelope, scope);
      return reply instanceof Promise ? reply.then((r) => toResponse(r, call)) : toResponse(reply, call);
    }
    const sessionId = scope.session.sessionId;
    // No named closures here: tsx's keepNames would wrap each in a defineProperty call per request.
    let reply: Reply | Promise<Reply>;
    try {
      reply = dispatcher.reply(call.envelope, scope);
    } catch (err) {
      return unkept(err, call, sessionId, keptUnder);
    }
    if (!(reply instanceof Promise)) return keptAnswer(reply, call, sessionId, keptUnder);
    // keptAnswer keeps its own failures; the second handler is for the call's.
    return reply.then(
      (r) => keptAnswer(r, call, sessionId, keptUnder),
      (err: unknown) => unkept(err, call, sessionId, keptUnder),
    );
  };

  /** §6 v2 retries: a verified retry is replayed, refused, or run as its first attempt. */
  const retried = async (call: Parsed & { auth: { kind: 'verified' } }, signed: SignedCall & { retryOf: NonNullable<SignedCall['retryOf']> }): Promise<CoreResponse> => {
    const { auth } = call;
    let decision;
    try {
      decision = await decideRetry(store, auth.session.sessionId, signed, retrySettings, nowSeconds());
    } catch (err) {
      return respond(call.requestId, call.traceId, call.label, errorReply(toApiError(err), call.form), call.form, auth.sign, call.request);
    }
    if (decision.kind === 'replay') {
      const replayed = replayResponse(decision.outcome, call.requestId, call.label);
      replayed.headers['x-hmac'] = auth.sign.sign(replayed.body ?? '');
      return replayed;
    }
    if (decision.kind === 'refuse') return respond(call.requestId, call.traceId, call.label, conflictReply(decision.error, call.form), call.form, auth.sign, call.request);
    return run(call, settings.auth.keepOutcomes ? signed.retryOf.nonce : undefined);
  };

  /** The store did not answer (Unavailable) or failed before the MAC was checked: nothing signed. */
  const storeFailed = (err: unknown, request: CoreRequest, requestId: string, traceId: string, label: string, form: Form): CoreResponse => {
    const error = toApiError(err);
    if (error.code === 'InternalError') log.error({ reqId: requestId, traceId, err: error.cause }, 'the store failed while authenticating');
    metrics.refused(error.code);
    return respond(requestId, traceId, label, errorReply(error, form), form, undefined, request);
  };

  /** After authentication: refused, or a call (its retries decided first). */
  const authenticated = (call: Parsed): CoreResponse | Promise<CoreResponse> => {
    const { auth, requestId, traceId, label, form, request } = call;
    if (auth.kind === 'refused') {
      if (auth.error.code === 'InternalError') log.error({ reqId: requestId, traceId, err: auth.error.cause }, 'the store failed while authenticating');
      if (metrics.on) {
        metrics.refused(auth.error.code);
        metrics.authFailure(auth.reason);
      }
      return respond(requestId, traceId, label, errorReply(auth.error, form), form, auth.sign, request);
    }
    if (call.envelope.kind === 'error') metrics.refused(call.envelope.error.code);
    // §6 v2 retries: the call's outcome is kept under the nonce of its first attempt.
    if (auth.kind !== 'verified' || auth.call === undefined) return run(call, undefined);
    const signed = auth.call;
    if (signed.retryOf !== undefined) return retried({ ...call, auth }, { ...signed, retryOf: signed.retryOf });
    return run(call, settings.auth.keepOutcomes ? signed.nonce : undefined);
  };

  return (request: CoreRequest, requestId: string, trace: TraceContext): CoreResponse | Promise<CoreResponse> => {
    const body = request.body;
    const traceId = trace.traceId;
    const contentType = typeof request.headers['content-type'] === 'string' ? request.headers['content-type'] : undefined;
    if (!isJsonContentType(contentType)) {
      const form = body === null ? 'simple' : formOfBody(body);
      return refuse(request, requestId, traceId, new ApiError('UnsupportedMediaType', 'Content-Type must be application/json'), form, body === null);
    }
    if (body === null) return refuse(request, requestId, traceId, new ApiError('PayloadTooLarge', `The body is larger than the limit of ${settings.bodyLimit} bytes`), 'simple', true);
    const text = decodeUtf8(body);
    if (text === null) return refuse(request, requestId, traceId, new ApiError('ParseError', 'The body is not valid UTF-8'), unparsableForm(body));
    if (exceedsDepth(text, settings.maxDepth)) {
      return refuse(request, requestId, traceId, new ApiError('InvalidRequest', `The body nests arrays and objects deeper than ${settings.maxDepth} levels`), unparsableForm(body));
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      return refuse(request, requestId, traceId, new ApiError('ParseError', `The body is not valid JSON: ${(err as Error).message}`), unparsableForm(body));
    }
    const envelope = parseEnvelope(parsed, settings.batchLimit);
    const form = envelope.form;
    const label = labelOf(envelope);
    if (metrics.on && envelope.kind === 'batch') metrics.batch(envelope.entries.length);
    let pending: AuthResult | Promise<AuthResult>;
    try {
      pending = authenticate(request.headers, body, store, settings.auth, true, settings.auth.countedClaim !== undefined && runsACall(envelope));
    } catch (err) {
      return storeFailed(err, request, requestId, traceId, label, form); // a store that threw instead of rejecting
    }
    if (!(pending instanceof Promise)) return authenticated({ request, requestId, traceId, label, envelope, form, auth: pending });
    return pending.then(
      (auth) => authenticated({ request, requestId, traceId, label, envelope, form, auth }),
      (err: unknown) => storeFailed(err, request, requestId, traceId, label, form),
    );
  };
}
