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
 * At most `limit` tasks run at once; the rest wait, each under the key it gave (a client
 * address), and a freed slot goes to the keys in turn, so a flood from one key waits behind
 * itself, not in front of everyone. Past `maxWaiting` waiting in all, or `maxWaitingPerKey` of
 * one key, a task is refused with what `busy()` makes, so a flood cannot queue without end.
 *
 * @example const gate = new Gate(2, 256, () => new Error('busy')); await gate.run(() => work(), ip)
 */
export class Gate {
  readonly #limit: number;
  readonly #maxWaiting: number;
  readonly #maxWaitingPerKey: number;
  readonly #busy: () => Error;
  #running = 0;
  #waiting = 0;
  /** Each key's waiting tasks, in order; a key is here while it has some. */
  readonly #queues = new Map<string, (() => void)[]>();
  /** Keys with tasks waiting, in turn order: the first is served next, then goes to the back. */
  readonly #turns = new Set<string>();
  #peak = 0;
  #started = 0;

  constructor(limit: number, maxWaiting: number, busy: () => Error, maxWaitingPerKey = maxWaiting) {
    this.#limit = limit;
    this.#maxWaiting = maxWaiting;
    this.#maxWaitingPerKey = maxWaitingPerKey;
    this.#busy = busy;
  }

  /** Tasks running now and waiting, the most ever run at once, and how many ever started (for tests and the abuse bench). */
  get load(): { running: number; waiting: number; peak: number; started: number } {
    return { running: this.#running, waiting: this.#waiting, peak: this.#peak, started: this.#started };
  }

  async run<T>(task: () => Promise<T>, key = ''): Promise<T> {
    if (this.#running >= this.#limit) {
      const queue = this.#queues.get(key);
      if (this.#waiting >= this.#maxWaiting || (queue?.length ?? 0) >= this.#maxWaitingPerKey) throw this.#busy();
      await new Promise<void>((resolve) => {
        if (queue === undefined) this.#queues.set(key, [resolve]);
        else queue.push(resolve);
        this.#turns.add(key);
        this.#waiting++;
      });
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

  /** Hands the slot to the next key's first waiting task, or frees it. */
  #release(): void {
    const key = this.#turns.values().next();
    if (key.done === true) {
      this.#running--;
      return;
    }
    const queue = this.#queues.get(key.value)!;
    const next = queue.shift()!;
    this.#turns.delete(key.value);
    if (queue.length > 0) this.#turns.add(key.value); // to the back of the line
    else this.#queues.delete(key.value);
    this.#waiting--;
    next();
  }
}
