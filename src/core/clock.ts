/** Unix seconds: the unit of every expiry, timestamp and window in the protocol and the stores. */

let offset = 0;

export const nowSeconds = (): number => Math.floor(Date.now() / 1000) + offset;

/**
 * For tests of expiry in one process: moves this process's clock forward instead of sleeping.
 * Nothing outside tests calls it.
 *
 * @example testClock.advance(3600); try { ... } finally { testClock.reset(); }
 */
export const testClock = {
  advance(seconds: number): void {
    offset += seconds;
  },
  reset(): void {
    offset = 0;
  },
};

/** Thrown by answerWithin when the wait ran out; the operation itself goes on. */
export class NoAnswerInTime extends Error {}

/**
 * `pending`'s answer, or NoAnswerInTime once `ms` pass. What `pending` stands for is not
 * stopped: a database that takes a request and never answers (node drivers do not give up on
 * it by themselves) is waited for no longer than the caller can afford.
 */
export function answerWithin<T>(pending: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new NoAnswerInTime(`the database did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([pending, late]).finally(() => clearTimeout(timer));
}
