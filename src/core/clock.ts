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
