/**
 * Reading the request body: content type (415), size limit (413, never reading past it), and the
 * raw bytes that signatures are computed over. koa-bodyparser is not used on purpose: it decodes
 * invalid UTF-8 leniently (§4 wants ParseError), hands out text instead of the signed bytes, and
 * parses twice what we parse once.
 */
import type { IncomingMessage } from 'node:http';
import { ApiError } from './errors.ts';

/** `application/json`, optionally with `charset=utf-8` (any case, quoted or not), and nothing else. */
export function isJsonContentType(header: string | undefined): boolean {
  if (header === undefined) return false;
  if (header === 'application/json') return true;
  const [type, ...params] = header.split(';');
  if (type!.trim().toLowerCase() !== 'application/json') return false;
  return params.every((p) => {
    const [name, value] = p.split('=').map((s) => s.trim().toLowerCase());
    return name === 'charset' && (value === 'utf-8' || value === '"utf-8"');
  });
}

/** The client went away before its body arrived; there is nobody to answer. */
export class ClientGoneError extends Error {
  override readonly name = 'ClientGoneError';
}

/**
 * Reads the whole body up to `limit` bytes. Over the limit it throws PayloadTooLarge at once,
 * from Content-Length when the client sent one, and stops reading.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    return Promise.reject(tooLarge(limit));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err: Error | null, body?: Buffer) => {
      if (done) return;
      done = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      if (err !== null) reject(err);
      else resolve(body!);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        finish(tooLarge(limit));
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

function tooLarge(limit: number): ApiError {
  return new ApiError('PayloadTooLarge', `The body is larger than the limit of ${limit} bytes`);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Strict UTF-8 decoding; null when the bytes are not valid UTF-8. */
export function decodeUtf8(body: Buffer): string | null {
  try {
    return utf8.decode(body);
  } catch {
    return null;
  }
}

/**
 * True when `text` nests arrays and objects deeper than `max`. JSON.parse copes with any depth,
 * but what walks the value afterwards (the validator, JSON.stringify of an echo) recurses and
 * would overflow the stack; the scan skips string contents and costs well under a microsecond
 * for a typical body.
 */
export function exceedsDepth(text: string, max: number): boolean {
  if (text.length <= max) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}
