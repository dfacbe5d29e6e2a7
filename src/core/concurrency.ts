/**
 * Runs `fn` over `items` with at most `limit` calls in flight; the results keep the input order.
 *
 * @example const pages = await mapLimited(urls, 4, (url) => fetch(url))
 */
export async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * At most `limit` tasks run at once; the rest wait in arrival order. Past `maxWaiting` waiting, a
 * task is refused with what `busy()` makes, so a flood cannot queue without end.
 *
 * @example const gate = new Gate(2, 256, () => new Error('busy')); await gate.run(() => work())
 */
export class Gate {
  readonly #limit: number;
  readonly #maxWaiting: number;
  readonly #busy: () => Error;
  #running = 0;
  readonly #waiting: (() => void)[] = [];
  #head = 0;
  #peak = 0;
  #started = 0;

  constructor(limit: number, maxWaiting: number, busy: () => Error) {
    this.#limit = limit;
    this.#maxWaiting = maxWaiting;
    this.#busy = busy;
  }

  /** Tasks running now and waiting, the most ever run at once, and how many ever started (for tests and the abuse bench). */
  get load(): { running: number; waiting: number; peak: number; started: number } {
    return { running: this.#running, waiting: this.#waiting.length - this.#head, peak: this.#peak, started: this.#started };
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#limit) {
      if (this.#waiting.length - this.#head >= this.#maxWaiting) throw this.#busy();
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#running++;
    }
    this.#started++;
    if (this.#running > this.#peak) this.#peak = this.#running;
    try {
      return await task();
    } finally {
      this.#release();
    }
  }

  /** Hands the slot to the next waiting task, or frees it. */
  #release(): void {
    if (this.#head < this.#waiting.length) {
      const next = this.#waiting[this.#head++]!;
      // Compact now and then, so the array does not keep every task ever queued.
      if (this.#head > 1024 && this.#head * 2 > this.#waiting.length) {
        this.#waiting.splice(0, this.#head);
        this.#head = 0;
      }
      next();
    } else {
      this.#running--;
    }
  }
}
