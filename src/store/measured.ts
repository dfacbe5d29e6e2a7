/**
 * A Store that times every operation of another and reports it to the metrics, for all three
 * stores in one place. Used only with metrics on: without them the core holds the store itself.
 */
import type { Metrics } from '../core/metrics.ts';
import type { Store } from './types.ts';
import { isThenable } from '../core/thenable.ts';

/** Not timed: start-up and shutdown, and the job runner (it times nothing of the store's). */
const UNTIMED = new Set<PropertyKey>(['init', 'close', 'startJobRunner', 'constructor']);

/**
 * Every operation of the Store interface is timed, whatever the store adds later: the `op` label
 * takes the operation's name, a value fixed by the code, never by a request. The wrappers are made
 * once, on an object whose prototype is the store (a Proxy cost a trap on every access), and a
 * timing rides beside the operation's own promise, which the caller awaits unchanged: a promise
 * derived from it cost every store operation one more turn of the microtask queue.
 *
 * @example const store = measuredStore(new MemoryStore(), metrics); await store.getSession(id, now) // timed
 */
export function measuredStore(inner: Store, metrics: Metrics): Store {
  const measured = Object.create(inner) as Record<string, unknown>;
  const seen = new Set<string>();
  for (let proto: object | null = Object.getPrototypeOf(inner); proto !== null && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    for (const key of Object.getOwnPropertyNames(proto)) {
      if (seen.has(key) || key === 'constructor') continue;
      seen.add(key);
      const descriptor = Object.getOwnPropertyDescriptor(proto, key)!;
      if (descriptor.get !== undefined) {
        // Read on the store itself: its getters read its own (#private) fields.
        Object.defineProperty(measured, key, { get: () => (inner as unknown as Record<string, unknown>)[key] });
        continue;
      }
      if (typeof descriptor.value !== 'function') continue;
      const original = (descriptor.value as (...args: unknown[]) => unknown).bind(inner);
      measured[key] = UNTIMED.has(key) ? original : timed(key, original, metrics);
    }
  }
  return measured as unknown as Store;
}

function timed(op: string, original: (...args: unknown[]) => unknown, metrics: Metrics): (...args: unknown[]) => unknown {
  return (...args) => {
    const started = performance.now();
    let result: unknown;
    try {
      result = original(...args);
    } catch (err) {
      metrics.store(op, performance.now() - started, true);
      throw err;
    }
    // The embedded store answers its hot operations at once (getSession, rememberNonce).
    if (!isThenable(result)) metrics.store(op, performance.now() - started, false);
    else {
      Promise.resolve(result).then(
        () => metrics.store(op, performance.now() - started, false),
        () => metrics.store(op, performance.now() - started, true),
      );
    }
    return result;
  };
}
