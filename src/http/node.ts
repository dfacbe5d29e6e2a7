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
import { readBodyThen, type ClientGoneError } from './read-body.ts';
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

/** A request whose body is being read, and when it began. */
interface Reading {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly started: number;
}

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

  /** An unexpected throw: logged with the request, answered 500 when nothing was sent yet. */
  const failed = (req: IncomingMessage, res: ServerResponse, err: unknown, started: number, response?: CoreResponse): void => {
    const requestId = response?.headers['x-request-id'] ?? '-';
    log.error({ reqId: requestId, traceId: response?.traceId, err }, 'request failed');
    if (!res.headersSent && !res.destroyed) {
      const text = JSON.stringify(simpleErrorBody(new ApiError('InternalError')));
      res.writeHead(500, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(text)) });
      res.end(text);
    }
    requestLine(requestId, response?.label ?? '-', 500, performance.now() - started, response?.traceId);
  };

  const answered = (request: NodeRequest, response: CoreResponse, started: number): void => {
    let written: number | Promise<number>;
    try {
      written = write(request, response);
    } catch (err) {
      failed(request.http.req, request.http.res, err, started, response);
      return;
    }
    const requestId = response.headers['x-request-id'] ?? '-';
    if (typeof written === 'number') requestLine(requestId, response.label, written, performance.now() - started, response.traceId);
    else {
      written.then(
        (status) => requestLine(requestId, response.label, status, performance.now() - started, response.traceId),
        (err: unknown) => failed(request.http.req, request.http.res, err, started, response),
      );
    }
  };

  /**
   * Runs the core on a request whose body has been read. Without a promise when the core answers
   * at once (a public call of a synchronous method): the answer is written in the turn the body
   * arrived.
   */
  const serve = (req: IncomingMessage, res: ServerResponse, body: Buffer | null, started: number): void => {
    let request: NodeRequest;
    let response: ReturnType<Handler>;
    try {
      request = new NodeRequest(req, res, body, options.clientIp(req));
      response = handler(request);
    } catch (err) {
      failed(req, res, err, started);
      return;
    }
    if (response === null) handOver(req, res, started);
    else if (!(response instanceof Promise)) answered(request, response, started);
    else {
      response
        .then(
          (r) => (r === null ? handOver(req, res, started) : answered(request, r, started)),
          (err: unknown) => failed(req, res, err, started),
        )
        .catch((err: unknown) => failed(req, res, err, started));
    }
  };

  /** Not the core's: the fallback app answers (and logs) it. */
  const handOver = (req: IncomingMessage, res: ServerResponse, started: number): void => {
    try {
      options.fallback(req, res);
    } catch (err) {
      failed(req, res, err, started);
    }
  };

  const bodyRead = (reading: Reading, err: ClientGoneError | null, body: Buffer | null): void => {
    if (err === null) {
      serve(reading.req, reading.res, body, reading.started);
      return;
    }
    // The client went away before its body arrived: nobody to answer. 499 is nginx's "client
    // closed request", for the log line only.
    reading.req.destroy();
    requestLine('-', '-', 499, performance.now() - reading.started, undefined);
  };

  return (req, res) => {
    if (!options.claims(req.method ?? 'GET', req.url ?? '/')) {
      options.fallback(req, res);
      return;
    }
    const started = performance.now();
    if (req.method === 'POST') readBodyThen(req, options.bodyLimit, { req, res, started }, bodyRead);
    else serve(req, res, EMPTY, started);
  };
}
