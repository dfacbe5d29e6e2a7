/**
 * The standalone server's adapter: node:http's request and response to the core and back, with
 * no per-request Koa objects. What the core does not own (the console, a user's routes, 404)
 * goes to `fallback`, the Koa app composed once at start-up.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Handler } from '../core/handler.ts';
import { ApiError, simpleErrorBody } from '../core/errors.ts';
import type { CoreRequest, CoreResponse } from '../core/request.ts';
import { createRequestLine } from '../log.ts';
import { ClientGoneError, readBody } from './read-body.ts';
import { writeStream, type StreamLimits } from './write-stream.ts';

export interface NodeAdapterOptions {
  handler: Handler;
  /** Does the core answer this request (and so need its body)? */
  claims: (method: string, target: string) => boolean;
  bodyLimit: number;
  clientIp: (req: IncomingMessage) => string;
  fallback: (req: IncomingMessage, res: ServerResponse) => void;
  log: Logger;
  stream: StreamLimits;
}

/** A CoreRequest over node:http's request; its abort signal is made only if something reads it. */
class NodeRequest implements CoreRequest {
  readonly method: string;
  readonly target: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: Buffer | null;
  readonly ip: string;
  readonly http: { req: IncomingMessage; res: ServerResponse };
  #abort: AbortController | undefined;

  constructor(req: IncomingMessage, res: ServerResponse, body: Buffer | null, ip: string) {
    this.method = req.method ?? 'GET';
    this.target = req.url ?? '/';
    this.headers = req.headers;
    this.body = body;
    this.ip = ip;
    this.http = { req, res };
  }

  get signal(): AbortSignal {
    return this.#controller().signal;
  }

  abort(reason: string): void {
    this.#controller().abort(new Error(reason));
  }

  #controller(): AbortController {
    if (this.#abort === undefined) {
      const controller = new AbortController();
      this.#abort = controller;
      const res = this.http.res;
      if (res.destroyed && !res.writableFinished) controller.abort(new Error('client disconnected'));
      else res.once('close', () => !res.writableFinished && controller.abort(new Error('client disconnected')));
    }
    return this.#abort;
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * @example server.on('request', createNodeListener({ handler, claims, bodyLimit, clientIp, fallback, log, stream }))
 */
export function createNodeListener(options: NodeAdapterOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { handler, log } = options;
  const requestLine = createRequestLine(log);

  /** Writes the answer; a promise only for a stream, so a plain answer costs no extra turn. */
  const write = (request: NodeRequest, response: CoreResponse): number | Promise<number> => {
    const res = request.http.res;
    if (response.taken === true) return res.statusCode;
    if (res.headersSent || res.destroyed) {
      response.stream?.stop(); // its stream slot is given back
      return response.status;
    }
    const headers = response.headers;
    if (response.close === true) headers.connection = 'close';
    if (response.stream !== undefined) {
      return writeStream(res, response.status, headers, response.stream, options.stream, () => request.abort('the stream ended')).then((end) => {
        if (end !== 'done' && end !== 'client gone') log.info({ reqId: headers['x-request-id'], traceId: response.traceId, method: response.label, end }, 'stream cut');
        return response.status;
      });
    }
    if (response.body !== undefined) headers['content-length'] = String(Buffer.byteLength(response.body));
    res.writeHead(response.status, headers);
    res.end(response.body);
    return response.status;
  };

  const serve = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = performance.now();
    let status = 500;
    let label = '-';
    let requestId = '-';
    let traceId: string | undefined;
    let handedOver = false;
    try {
      const body = req.method === 'POST' ? await readBody(req, options.bodyLimit) : EMPTY;
      const request = new NodeRequest(req, res, body, options.clientIp(req));
      const response = await handler(request);
      if (response === null) {
        handedOver = true;
        options.fallback(req, res);
        return;
      }
      label = response.label;
      requestId = response.headers['x-request-id'] ?? '-';
      traceId = response.traceId;
      const written = write(request, response);
      status = typeof written === 'number' ? written : await written;
    } catch (err) {
      if (err instanceof ClientGoneError) {
        status = 499; // nginx's "client closed request", for the log line only
        req.destroy();
        return;
      }
      log.error({ reqId: requestId, traceId, err }, 'request failed');
      if (!res.headersSent && !res.destroyed) {
        const text = JSON.stringify(simpleErrorBody(new ApiError('InternalError')));
        res.writeHead(500, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(text)) });
        res.end(text);
      }
    } finally {
      if (!handedOver) requestLine(requestId, label, status, performance.now() - started, traceId);
    }
  };

  return (req, res) => {
    if (!options.claims(req.method ?? 'GET', req.url ?? '/')) {
      options.fallback(req, res);
      return;
    }
    void serve(req, res);
  };
}
