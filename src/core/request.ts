/**
 * What the core takes and gives: an HTTP request and response as plain values, with no node:http
 * or Koa in them. Each transport (src/http/) turns its own objects into a CoreRequest, calls the
 * handler, and writes the CoreResponse back.
 */
import type { Headers } from './auth.ts';
import type { NativeHttp } from './method.ts';

export interface CoreRequest {
  /** The HTTP method, upper case. */
  readonly method: string;
  /** The request target as sent: path and query (`/jobs/0f8e…?x=1`). */
  readonly target: string;
  /** Header names in lower case, as node:http gives them. */
  readonly headers: Headers;
  /** The body's bytes; `null` when it was larger than the limit and was not read past it. */
  readonly body: Buffer | null;
  /** The client address (after the trusted-proxy rule). */
  readonly ip: string;
  /** Aborts when the client goes away. */
  readonly signal: AbortSignal;
  /** The transport's own request and response, for raw methods; absent where there are none. */
  readonly http?: NativeHttp | null;
}

/** A body sent in pieces, with the MAC of all of them as a trailer when the answer is signed. */
export interface StreamedBody {
  readonly pieces: AsyncIterable<string>;
  /** Trailers to send after the last piece (the `x-hmac` of a signed answer). */
  readonly trailers: () => Record<string, string>;
  /** Stops the producer: the client went away or a limit was reached. */
  readonly stop: () => void;
}

export interface CoreResponse {
  status: number;
  headers: Record<string, string>;
  /** Absent for 204 and for a raw method's answer (`taken`). */
  body?: string | Buffer;
  stream?: StreamedBody;
  /** A raw method already wrote the response through the transport's own objects. */
  taken?: boolean;
  /** Close the connection after answering (the body was not read to its end, or shutdown). */
  close?: boolean;
  /** What the request line names: the method, `batch(n)`, the route. */
  label: string;
  /** The W3C trace id of the request, for its log line. */
  traceId?: string;
}
