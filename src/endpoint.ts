/**
 * The POST endpoint's pipeline on Node's own request and response: read, parse, authenticate,
 * dispatch, serialise, sign, write, log. It runs without a Koa context (one is made only if a
 * method reads `ctx.koa`), because Koa's per-request objects cost more than the rest of the hot
 * path together; see server.ts for when it runs inside Koa instead.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context as KoaContext } from 'koa';
import type { Logger } from 'pino';
import { authenticate, type AuthSettings } from './core/auth.ts';
import { ClientGoneError, decodeUtf8, exceedsDepth, isJsonContentType, readBody } from './core/body.ts';
import { errorReply, type Dispatcher, type Reply } from './core/dispatch.ts';
import { formOfBody, parseEnvelope, rpcError, unparsableForm, type Envelope } from './core/envelope.ts';
import { ApiError, toApiError } from './core/errors.ts';
import { createRequestLine } from './log.ts';
import { RequestScope } from './scope.ts';
import type { Scheme } from './core/signing.ts';
import type { Store } from './store/types.ts';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The request id to use: the client's `x-request-id` when it is sane, else a new UUID. */
export function requestIdOf(req: IncomingMessage): string {
  const incoming = req.headers['x-request-id'];
  return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

export interface EndpointDeps {
  store: Store;
  log: Logger;
  dispatcher: Dispatcher;
  auth: AuthSettings;
  scheme: Scheme;
  bodyLimit: number;
  batchLimit: number;
  maxDepth: number;
  /** The client address: the socket's, or from X-Forwarded-For with --trust-proxy. */
  clientIp: (req: IncomingMessage) => string;
  /** Headers to add for a browser origin that is allowed (CORS); undefined when none apply. */
  corsHeaders: (req: IncomingMessage) => Record<string, string> | undefined;
  /** True once the server is shutting down: answers then ask the client to close. */
  draining: () => boolean;
  /** Runs a raw method so that Koa sends what it set on ctx.koa. */
  respondRaw: (koa: KoaContext, invoke: () => unknown) => Promise<void>;
}

type Form = 'simple' | 'rpc';
interface Outcome {
  reply: Reply;
  form: Form;
  label: string;
  /** Close the connection after answering: the rest of an over-long body is never read. */
  close?: boolean;
}

function envelopeForm(envelope: Envelope): Form {
  return envelope.kind === 'simple' || (envelope.kind === 'error' && envelope.form === 'simple') ? 'simple' : 'rpc';
}

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

/** Serialises a reply; a method result JSON cannot hold (a BigInt, a cycle) becomes InternalError. */
function serialize(reply: Reply, form: Form, log: Logger, requestId: string): { status: number; text: string | undefined } {
  if (reply.body === undefined) return { status: reply.status, text: undefined };
  try {
    return { status: reply.status, text: JSON.stringify(reply.body) };
  } catch (err) {
    log.error({ reqId: requestId, err }, 'the result could not be serialised as JSON');
    const internal = new ApiError('InternalError');
    if (form === 'simple') return { status: 500, text: JSON.stringify(errorReply(internal, 'simple').body) };
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
 * Makes the endpoint handler. `makeKoa` gives the Koa context for `ctx.koa`, made on demand.
 *
 * @example const handle = createEndpoint(deps); server.on('request', (req, res) => handle(req, res, () => app.createContext(req, res)))
 */
export function createEndpoint(deps: EndpointDeps): (req: IncomingMessage, res: ServerResponse, makeKoa: () => KoaContext) => Promise<void> {
  const { store, log, dispatcher } = deps;
  const requestLine = createRequestLine(log);

  const answer = async (req: IncomingMessage, scope: RequestScope): Promise<Outcome> => {
    let body: Buffer;
    try {
      if (!isJsonContentType(req.headers['content-type'])) {
        const sniff = await readBody(req, deps.bodyLimit).catch((err: unknown) => {
          if (err instanceof ClientGoneError) throw err;
          return Buffer.alloc(0);
        });
        const form = formOfBody(sniff);
        return { reply: errorReply(new ApiError('UnsupportedMediaType'), form), form, label: '-' };
      }
      body = await readBody(req, deps.bodyLimit);
    } catch (err) {
      if (err instanceof ClientGoneError) throw err;
      return { reply: errorReply(toApiError(err), 'simple'), form: 'simple', label: '-', close: true };
    }
    const text = decodeUtf8(body);
    let parsed: unknown;
    try {
      if (text === null) throw new ApiError('ParseError', 'The body is not valid UTF-8');
      if (exceedsDepth(text, deps.maxDepth)) {
        const form = unparsableForm(body);
        return { reply: errorReply(new ApiError('InvalidRequest', `The body nests arrays and objects deeper than ${deps.maxDepth} levels`), form), form, label: '-' };
      }
      parsed = JSON.parse(text);
    } catch (err) {
      const form = unparsableForm(body);
      const error = err instanceof ApiError ? err : new ApiError('ParseError', `The body is not valid JSON: ${(err as Error).message}`);
      return { reply: errorReply(error, form), form, label: '-' };
    }
    const envelope = parseEnvelope(parsed, deps.batchLimit);
    const form = envelopeForm(envelope);
    const label = labelOf(envelope);
    try {
      const pending = authenticate(scope, req.headers, body, store, deps.auth);
      if (pending !== undefined) await pending;
    } catch (err) {
      return { reply: errorReply(toApiError(err), form), form, label };
    }
    return { reply: await dispatcher.reply(envelope, scope), form, label };
  };

  return async (req, res, makeKoa) => {
    const started = performance.now();
    const requestId = requestIdOf(req);
    const scope = new RequestScope(requestId, deps.clientIp(req), req, res, makeKoa, deps.scheme, deps.respondRaw);
    let status = 500;
    let label = '-';
    try {
      const outcome = await answer(req, scope);
      label = outcome.label;
      if (outcome.reply.raw === true) {
        status = res.statusCode;
        return;
      }
      const serialized = serialize(outcome.reply, outcome.form, log, requestId);
      status = serialized.status;
      const text = serialized.text;
      const headers: Record<string, string | number> = { 'x-request-id': requestId };
      if (text !== undefined) {
        headers['content-type'] = 'application/json; charset=utf-8';
        headers['content-length'] = Buffer.byteLength(text);
      }
      if (outcome.reply.retryAfter !== undefined) headers['retry-after'] = Math.ceil(outcome.reply.retryAfter);
      if (outcome.reply.location !== undefined) headers.location = outcome.reply.location;
      const mac = scope.signResponse(text ?? '');
      if (mac !== undefined) headers['x-hmac'] = mac;
      if (outcome.close === true || deps.draining()) headers.connection = 'close';
      const cors = deps.corsHeaders(req);
      if (cors !== undefined) Object.assign(headers, cors);
      if (res.headersSent || res.destroyed) return;
      res.writeHead(status, headers);
      res.end(text);
    } catch (err) {
      if (err instanceof ClientGoneError) {
        status = 499; // nginx's "client closed request", for the log line only
        req.destroy();
        return;
      }
      log.error({ reqId: requestId, err }, 'request failed');
      if (!res.headersSent && !res.destroyed) {
        const text = JSON.stringify(errorReply(new ApiError('InternalError'), 'simple').body);
        res.writeHead(500, { 'x-request-id': requestId, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      }
    } finally {
      requestLine(requestId, label, status, performance.now() - started);
    }
  };
}
