/**
 * What one HTTP request carries through the server: its id, the client address, the verified
 * session and how to sign the response. Every call of a batch shares it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context as KoaContext } from 'koa';
import { signV1, signV2Response, type Scheme } from './core/signing.ts';
import type { SessionRecord } from './store/types.ts';

export class RequestScope {
  readonly requestId: string;
  readonly ip: string;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly scheme: Scheme;
  /** The verified session of an authenticated request. */
  session: SessionRecord | null = null;
  /** v2: the request's `x-nonce` ('' without one); the response MAC covers it. */
  nonce = '';
  /** The key the response is signed with: the session's, or one issued by create/login. */
  #signWith: SessionRecord | null = null;
  #abort: AbortController | undefined;
  /** Set once a raw method took over the response. */
  rawAnswered = false;
  #makeKoa: () => KoaContext;
  #respondRaw: (koa: KoaContext, invoke: () => unknown) => Promise<void>;
  #koa: KoaContext | undefined;

  constructor(
    requestId: string,
    ip: string,
    req: IncomingMessage,
    res: ServerResponse,
    makeKoa: () => KoaContext,
    scheme: Scheme,
    respondRaw: (koa: KoaContext, invoke: () => unknown) => Promise<void> = async (_koa, invoke) => {
      await invoke();
    },
  ) {
    this.#respondRaw = respondRaw;
    this.requestId = requestId;
    this.ip = ip;
    this.req = req;
    this.res = res;
    this.#makeKoa = makeKoa;
    this.scheme = scheme;
  }

  /**
   * Runs a raw method, which answers through `ctx.koa` (its body, or its `res` directly); Koa
   * sends what it set. Nothing of the server's own is written afterwards.
   */
  respondRaw(invoke: () => unknown): Promise<void> {
    this.rawAnswered = true;
    return this.#respondRaw(this.koa, invoke);
  }

  /** The Koa context, made on first use: most requests never need one. */
  get koa(): KoaContext {
    this.#koa ??= this.#makeKoa();
    return this.#koa;
  }

  /** The session was found: its key signs the response, even an error (§6). */
  useSessionKey(session: SessionRecord): void {
    this.#signWith = session;
  }

  /** A create/login issued a session: on an unauthenticated request, its key signs the response. */
  issued(session: SessionRecord): void {
    if (this.session === null) this.#signWith = session;
  }

  /** The response `x-hmac`, or undefined when this response is not signed. */
  signResponse(body: string | Buffer): string | undefined {
    const s = this.#signWith;
    if (s === null) return undefined;
    return this.scheme === 'v2' ? signV2Response(s.key, this.nonce, body) : signV1(s.userId, body);
  }

  /** Fires when the client disconnects before the response is sent. Made on first use only. */
  get signal(): AbortSignal {
    if (this.#abort === undefined) {
      const controller = new AbortController();
      this.#abort = controller;
      const res = this.res;
      if (res.destroyed && !res.writableFinished) controller.abort(new Error('client disconnected'));
      else {
        res.once('close', () => {
          if (!res.writableFinished) controller.abort(new Error('client disconnected'));
        });
      }
    }
    return this.#abort.signal;
  }
}
