/**
 * Reading a request body from node:http up to a limit, never past it: the raw bytes that
 * signatures are computed over. koa-bodyparser is not used on the standalone server: it decodes
 * invalid UTF-8 leniently (§4 wants ParseError), hands out text instead of the signed bytes, and
 * parses twice what the core parses once.
 */
import type { IncomingMessage } from 'node:http';

/** The client went away before its body arrived; there is nobody to answer. */
export class ClientGoneError extends Error {
  override readonly name = 'ClientGoneError';
}

/**
 * The whole body, or null once it passes `limit` bytes (known at once from Content-Length when
 * the client sent one); reading stops there.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) return Promise.resolve(null);
  return new Promise((resolve, reject) => void new BodyReader(req, limit, resolve, reject));
}

/**
 * One body being read. Its listeners are assigned to fields rather than declared as named
 * consts: tsx compiles with esbuild's keepNames, which wraps every named closure in a
 * defineProperty call, and five of those per request cost more than the reading itself.
 */
class BodyReader {
  readonly #chunks: Buffer[] = [];
  #size = 0;
  #done = false;
  readonly onData: (chunk: Buffer) => void;
  readonly onEnd: () => void;
  readonly onError: (err: Error) => void;
  readonly onClose: () => void;

  constructor(
    readonly req: IncomingMessage,
    readonly limit: number,
    readonly resolve: (body: Buffer | null) => void,
    readonly reject: (err: Error) => void,
  ) {
    this.onData = (chunk) => this.#data(chunk);
    this.onEnd = () => this.#finish(null, this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#size));
    this.onError = (err) => this.#finish(new ClientGoneError(err.message));
    this.onClose = () => this.#finish(new ClientGoneError('the client closed the connection before its body arrived'));
    req.on('data', this.onData);
    req.on('end', this.onEnd);
    req.on('error', this.onError);
    req.on('close', this.onClose);
  }

  #data(chunk: Buffer): void {
    this.#size += chunk.length;
    if (this.#size > this.limit) {
      this.req.pause();
      this.#finish(null, null);
      return;
    }
    this.#chunks.push(chunk);
  }

  #finish(err: Error | null, body: Buffer | null = null): void {
    if (this.#done) return;
    this.#done = true;
    const req = this.req;
    req.off('data', this.onData);
    req.off('end', this.onEnd);
    req.off('error', this.onError);
    req.off('close', this.onClose);
    if (err !== null) this.reject(err);
    else this.resolve(body);
  }
}
