/**
 * The POST endpoint as a function from a CoreRequest to a CoreResponse: content type, UTF-8 and
 * JSON, the envelope, authentication, dispatch, serialisation and the response's signature.
 */
import type { Logger } from 'pino';
import { authenticate, responseSigner, type AuthResult, type AuthSettings, type ResponseSigner } from './auth.ts';
import { decodeUtf8, exceedsDepth, isJsonContentType } from './body.ts';
import type { CallScope } from './context.ts';
import { errorReply, type Dispatcher, type Reply } from './dispatch.ts';
import { formOfBody, parseEnvelope, rpcError, unparsableForm, type Envelope, type Form } from './envelope.ts';
import { ApiError, simpleErrorBody, toApiError } from './errors.ts';
import type { CoreRequest, CoreResponse } from './request.ts';
import { conflictReply, decideRetry, keepLater, outcomeOf, replayResponse, type RetrySettings } from './retry.ts';
import { framedStream, streamFormat, STREAM_CONTENT_TYPES } from './stream.ts';
import { nowSeconds } from './clock.ts';
import type { Store } from '../store/types.ts';

export interface EndpointSettings {
  auth: AuthSettings;
  /** Largest answer body in bytes kept for retries (§6 v2 retries). */
  maxOutcome: number;
  maxDepth: number;
  batchLimit: number;
  /** Only for the message: the transport enforces it while reading. */
  bodyLimit: number;
}

const JSON_TYPE = 'application/json; charset=utf-8';

/** What the request line names for an envelope. */
function labelOf(envelope: Envelope): string {
  switch (envelope.kind) {
    case 'simple':
      return envelope.call.method;
    case 'rpc':
      return 'method' in envelope.entry ? envelope.entry.method : '-';
    case 'batch':
      return `batch(${envelope.entries.length})`;
    default:
      return '-';
  }
}

/** Serialises a reply's body; a result JSON cannot hold (a BigInt, a cycle) becomes InternalError. */
function serialize(reply: Reply, form: Form, log: Logger, requestId: string): { status: number; text: string | undefined } {
  if (reply.body === undefined) return { status: reply.status, text: undefined };
  try {
    return { status: reply.status, text: JSON.stringify(reply.body) };
  } catch (err) {
    log.error({ reqId: requestId, err }, 'the result could not be serialised as JSON');
    const internal = new ApiError('InternalError');
    if (form === 'simple') return { status: 500, text: JSON.stringify(simpleErrorBody(internal)) };
    const entries: { id: unknown }[] = Array.isArray(reply.body) ? reply.body : [reply.body];
    const safe = entries.map((entry) => {
      try {
        return JSON.stringify(entry);
      } catch {
        return JSON.stringify(rpcError(internal, entry.id as never));
      }
    });
    return { status: reply.status, text: Array.isArray(reply.body) ? `[${safe.join(',')}]` : safe[0] };
  }
}

/**
 * Makes the endpoint. `requestId` and `extraHeaders` (CORS) come from the handler, which owns
 * what every route shares.
 *
 * @example const answer = createEndpoint({ store, log, dispatcher, settings }); const res = await answer(req, id, {})
 */
export function createEndpoint(deps: { store: Store; log: Logger; dispatcher: Dispatcher; settings: EndpointSettings }) {
  const { store, log, dispatcher, settings } = deps;
  const retrySettings: RetrySettings = { window: settings.auth.window, keepOutcomes: settings.auth.keepOutcomes, maxOutcome: settings.maxOutcome };

  const respond = (requestId: string, label: string, reply: Reply, form: Form, signer: ResponseSigner | undefined, request: CoreRequest, close = false): CoreResponse => {
    if (reply.taken === true) return { status: 0, headers: {}, taken: true, label };
    const headers: Record<string, string> = { 'x-request-id': requestId };
    if (reply.retryAfter !== undefined) headers['retry-after'] = String(Math.ceil(reply.retryAfter));
    if (reply.location !== undefined) headers.location = reply.location;
    if (reply.stream !== undefined) {
      const format = streamFormat(typeof request.headers.accept === 'string' ? request.headers.accept : undefined);
      headers['content-type'] = STREAM_CONTENT_TYPES[format];
      headers['cache-control'] = 'no-store';
      if (signer !== undefined) headers.trailer = 'x-hmac';
      const stream = framedStream(reply.stream, format, signer, (thrown) => {
        const error = toApiError(thrown);
        if (error.code === 'InternalError') log.error({ reqId: requestId, method: label, err: error.cause }, 'stream threw');
        return simpleErrorBody(error);
      });
      return { status: 200, headers, stream, label };
    }
    const { status, text } = serialize(reply, form, log, requestId);
    if (text !== undefined) headers['content-type'] = JSON_TYPE;
    if (signer !== undefined) headers['x-hmac'] = signer.sign(text ?? '');
    return text === undefined ? { status, headers, label, close } : { status, headers, body: text, label, close };
  };

  /** Runs the envelope and answers it; `issued`: the answer carries a session a create/login started. */
  const answer = async (requestId: string, label: string, envelope: Envelope, form: Form, scope: CallScope, auth: AuthResult, request: CoreRequest): Promise<{ response: CoreResponse; issued: boolean }> => {
    let reply = await dispatcher.reply(envelope, scope);
    // A raw method that failed after it began writing has answered all that can be answered.
    if (reply.taken !== true && request.http?.res.headersSent === true) reply = { status: 0, taken: true };
    return { response: respond(requestId, label, reply, form, responseSigner(auth, reply.issued, settings.auth.scheme), request), issued: reply.issued !== undefined };
  };

  return async (request: CoreRequest, requestId: string): Promise<CoreResponse> => {
    const body = request.body;
    const contentType = typeof request.headers['content-type'] === 'string' ? request.headers['content-type'] : undefined;
    const unsigned = (error: ApiError, form: Form, close = false) => respond(requestId, '-', errorReply(error, form), form, undefined, request, close);
    if (!isJsonContentType(contentType)) {
      const form = body === null ? 'simple' : formOfBody(body);
      return unsigned(new ApiError('UnsupportedMediaType', 'Content-Type must be application/json'), form, body === null);
    }
    if (body === null) return unsigned(new ApiError('PayloadTooLarge', `The body is larger than the limit of ${settings.bodyLimit} bytes`), 'simple', true);
    const text = decodeUtf8(body);
    if (text === null) return unsigned(new ApiError('ParseError', 'The body is not valid UTF-8'), unparsableForm(body));
    if (exceedsDepth(text, settings.maxDepth)) {
      return unsigned(new ApiError('InvalidRequest', `The body nests arrays and objects deeper than ${settings.maxDepth} levels`), unparsableForm(body));
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      return unsigned(new ApiError('ParseError', `The body is not valid JSON: ${(err as Error).message}`), unparsableForm(body));
    }
    const envelope = parseEnvelope(parsed, settings.batchLimit);
    const form = envelope.form;
    const label = labelOf(envelope);
    const pending = authenticate(request.headers, body, store, settings.auth, true);
    let auth: AuthResult;
    try {
      auth = pending instanceof Promise ? await pending : pending;
    } catch (err) {
      // The store did not answer (Unavailable) or failed: nothing verified, nothing signed.
      return respond(requestId, label, errorReply(toApiError(err), form), form, undefined, request);
    }
    if (auth.kind === 'refused') return respond(requestId, label, errorReply(auth.error, form), form, auth.sign, request);
    // §6 v2 retries: the call's outcome is kept under the nonce of its first attempt.
    let keptUnder: string | undefined;
    if (auth.kind === 'verified' && auth.call !== undefined) {
      const call = auth.call;
      if (call.retryOf === undefined) keptUnder = settings.auth.keepOutcomes ? call.nonce : undefined;
      else {
        let decision;
        try {
          decision = await decideRetry(store, auth.session.sessionId, { ...call, retryOf: call.retryOf }, retrySettings, nowSeconds());
        } catch (err) {
          return respond(requestId, label, errorReply(toApiError(err), form), form, auth.sign, request);
        }
        if (decision.kind === 'replay') {
          const replayed = replayResponse(decision.outcome, requestId, label);
          replayed.headers['x-hmac'] = auth.sign.sign(replayed.body ?? '');
          return replayed;
        }
        if (decision.kind === 'refuse') return respond(requestId, label, conflictReply(decision.error, form), form, auth.sign, request);
        keptUnder = settings.auth.keepOutcomes ? call.retryOf.nonce : undefined;
      }
    }
    const scope: CallScope = {
      requestId,
      ip: request.ip,
      session: auth.kind === 'verified' ? auth.session : null,
      signal: request.signal,
      http: request.http ?? null,
    };
    if (keptUnder === undefined || scope.session === null) return (await answer(requestId, label, envelope, form, scope, auth, request)).response;
    const sessionId = scope.session.sessionId;
    try {
      const { response, issued } = await answer(requestId, label, envelope, form, scope, auth, request);
      keepLater(store, sessionId, keptUnder, outcomeOf(response, issued, settings.maxOutcome), log, requestId);
      return response;
    } catch (err) {
      keepLater(store, sessionId, keptUnder, null, log, requestId);
      throw err;
    }
  };
}
