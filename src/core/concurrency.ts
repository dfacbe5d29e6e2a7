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
 * Items waiting under keys, served in turns: the first key in line gives its oldest item, then
 * goes to the back of the line if it has more, so one key's flood waits behind itself. The hash
 * gate below and the in-process job runner take their turns from this.
 *
 * @example const turns = new Turns<string>(); turns.push('a', 'a1'); turns.push('b', 'b1'); turns.next() // 'a1'
 */
export class Turns<T> {
  /** Each key's waiting items in order; the Map's own order is the line (a key is here while it has some). */
  readonly #queues = new Map<string, T[]>();
  #size = 0;

  /** Items waiting under every key. */
  get size(): number {
    return this.#size;
  }

  /** Items waiting under `key`. */
  sizeOf(key: string): number {
    return this.#queues.get(key)?.length ?? 0;
  }

  push(key: string, item: T): void {
    const queue = this.#queues.get(key);
    if (queue === undefined) this.#queues.set(key, [item]);
    else queue.push(item);
    this.#size++;
  }

  /** The next item by turns, passing over the keys `eligible` refuses; undefined when there is none. */
  next(eligible?: (key: string) => boolean): T | undefined {
    for (const [key, queue] of this.#queues) {
      if (eligible !== undefined && !eligible(key)) continue;
      const item = queue.shift()!;
      this.#queues.delete(key);
      if (queue.length > 0) this.#queues.set(key, queue); // to the back of the line
      this.#size--;
      return item;
    }
    return undefined;
  }

  /** Takes every waiting item out, key by key. */
  drain(): T[] {
    const all = [...this.#queues.values()].flat();
    this.#queues.clear();
    this.#size = 0;
    return all;
  }
}

/**
 * At most `limit` tasks run at once; the rest wait, each under the key it gave (a client
 * address), and a freed slot goes to the keys in turn (Turns), so a flood from one key waits
 * behind itself, not in front of everyone. Past `maxWaiting` waiting in all, or
 * `maxWaitingPerKey` of one key, a task is refused with what `busy()` makes, so a flood cannot
 * queue without end.
 *
 * @example const gate = new Gate(2, 256, () => new Error('busy')); await gate.run(() => work(), ip)
 */
export class Gate {
  readonly #limit: number;
  readonly #maxWaiting: number;
  readonly #maxWaitingPerKey: number;
  readonly #busy: () => Error;
  #running = 0;
  readonly #waiting = new Turns<() => void>();
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
    return { running: this.#running, waiting: this.#waiting.size, peak: this.#peak, started: this.#started };
  }

  async run<T>(task: () => Promise<T>, key = ''): Promise<T> {
    if (this.#running >= this.#limit) {
      if (this.#waiting.size >= this.#maxWaiting || this.#waiting.sizeOf(key) >= this.#maxWaitingPerKey) throw this.#busy();
      await new Promise<void>((resolve) => this.#waiting.push(key, resolve));
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
    const next = this.#waiting.next();
    if (next === undefined) this.#running--;
    else next();
  }
}
