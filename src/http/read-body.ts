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
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err: Error | null, body: Buffer | null = null) => {
      if (done) return;
      done = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      if (err !== null) reject(err);
      else resolve(body);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        finish(null, null);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => finish(null, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    const onError = (err: Error) => finish(new ClientGoneError(err.message));
    const onClose = () => finish(new ClientGoneError('the client closed the connection before its body arrived'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}
