/**
 * A streaming method's events framed for the wire: server-sent events by default, NDJSON when the
 * client asks for it, each event serialised on its own, and the whole signed piece by piece when
 * the request was signed (the MAC travels as the `x-hmac` trailer).
 */
import type { ResponseSigner } from './auth.ts';
import type { EventStream } from './dispatch.ts';
import type { StreamedBody } from './request.ts';
import { addressKeyOf } from './address.ts';

export type StreamFormat = 'sse' | 'ndjson';

/** NDJSON when `Accept` names it before any other type; server-sent events otherwise. */
export function streamFormat(accept: string | undefined): StreamFormat {
  return accept !== undefined && /(^|,)\s*application\/(x-)?ndjson\b/i.test(accept) ? 'ndjson' : 'sse';
}

export const STREAM_CONTENT_TYPES: Record<StreamFormat, string> = {
  sse: 'text/event-stream; charset=utf-8',
  ndjson: 'application/x-ndjson; charset=utf-8',
};

/** One event as it goes out; a value JSON cannot hold becomes an `error` event, and the stream ends. */
function frame(format: StreamFormat, value: unknown, n: number, event: string | undefined): { text: string; last: boolean } {
  let data: string;
  try {
    data = JSON.stringify(value === undefined ? null : value);
  } catch {
    const error = '{"error":{"code":"InternalError","message":"An event could not be serialised as JSON","type":"server"}}';
    return { text: format === 'sse' ? `event: error\ndata: ${error}\n\n` : `${error}\n`, last: true };
  }
  if (format === 'ndjson') return { text: `${data}\n`, last: false };
  return { text: `id: ${n}\n${event === undefined ? '' : `event: ${event}\n`}data: ${data}\n\n`, last: false };
}

/**
 * The pieces of a stream. A throw from the producer ends it with an `error` event carrying the §4
 * body of `errorBody(thrown)`; `stop()` ends the producer (its `finally` runs).
 *
 * @example const body = framedStream(stream, 'sse', signer, toErrorBody)
 */
export function framedStream(stream: EventStream, format: StreamFormat, signer: ResponseSigner | undefined, errorBody: (thrown: unknown) => unknown): StreamedBody {
  const mac = signer?.begin();
  const iterator = stream.events[Symbol.asyncIterator]();
  let stopped = false;
  const emit = (text: string) => {
    mac?.update(text);
    return text;
  };
  async function* pieces(): AsyncGenerator<string> {
    let n = 0;
    try {
      for (;;) {
        let next: IteratorResult<unknown>;
        try {
          next = await iterator.next();
        } catch (thrown) {
          const text = JSON.stringify(errorBody(thrown));
          yield emit(format === 'sse' ? `event: error\ndata: ${text}\n\n` : `${text}\n`);
          return;
        }
        if (next.done === true || stopped) return;
        const { text, last } = frame(format, next.value, n++, stream.event);
        yield emit(text);
        if (last) return;
      }
    } finally {
      await iterator.return?.();
    }
  }
  return {
    pieces: pieces(),
    trailers: (): Record<string, string> => (mac === undefined ? {} : { 'x-hmac': mac.digest() }),
    stop: () => {
      stopped = true;
      void Promise.resolve(iterator.return?.()).catch(() => {});
    },
  };
}

/**
 * Open streams, in all and per client address: a slot is taken when a stream's answer begins and
 * given back when it ends however it ends (done, cut, client gone), so one client cannot hold
 * every stream, and streams cannot hold every connection.
 *
 * @example const release = slots.take(ip); if (release === null) refuse(); else try { … } finally { release() }
 */
export class StreamSlots {
  readonly #max: number;
  readonly #perAddress: number;
  readonly #byAddress = new Map<string, number>();
  #open = 0;

  constructor(max: number, perAddress: number) {
    this.#max = max;
    this.#perAddress = perAddress;
  }

  get open(): number {
    return this.#open;
  }

  /** A release function (safe to call twice), or null when a limit is reached; says which. */
  take(clientIp: string): { release: () => void } | { refused: 'total' | 'address' } {
    const ip = addressKeyOf(clientIp);
    const mine = this.#byAddress.get(ip) ?? 0;
    if (this.#open >= this.#max) return { refused: 'total' };
    if (mine >= this.#perAddress) return { refused: 'address' };
    this.#open++;
    this.#byAddress.set(ip, mine + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#open--;
        const left = (this.#byAddress.get(ip) ?? 1) - 1;
        if (left === 0) this.#byAddress.delete(ip);
        else this.#byAddress.set(ip, left);
      },
    };
  }
}

/** `body` that calls `release` once, when it ends or stops, whichever comes first. */
export function releasingBody(body: StreamedBody, onEnd: () => void): StreamedBody {
  let ended = false;
  const release = () => {
    if (ended) return;
    ended = true;
    onEnd();
  };
  async function* pieces(): AsyncGenerator<string> {
    try {
      yield* body.pieces;
    } finally {
      release();
    }
  }
  return {
    pieces: pieces(),
    trailers: body.trailers,
    stop: () => {
      release();
      body.stop();
    },
  };
}
