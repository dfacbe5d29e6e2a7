/**
 * A Store that times every operation of another and reports it to the metrics, for all three
 * stores in one place. Used only with metrics on: without them the core holds the store itself.
 */
import type { Metrics } from '../core/metrics.ts';
import type { Store } from './types.ts';

/** Not timed: start-up and shutdown, and the job runner (it times nothing of the store's). */
const UNTIMED = new Set<PropertyKey>(['init', 'close', 'startJobRunner', 'constructor']);

/**
 * Every operation of the Store interface is timed, whatever the store adds later: the `op` label
 * takes the operation's name, a value fixed by the code, never by a request.
 *
 * @example const store = measuredStore(new MemoryStore(), metrics); await store.getSession(id, now) // timed
 */
export function measuredStore(inner: Store, metrics: Metrics): Store {
  const timed = new Map<PropertyKey, unknown>();
  return new Proxy(inner, {
    get(target, key) {
      const value: unknown = Reflect.get(target, key, target);
      if (typeof value !== 'function') return value;
      // Bound to the inner store: its methods read its own (#private) fields.
      if (UNTIMED.has(key) || typeof key !== 'string') return value.bind(target);
      let wrapper = timed.get(key);
      if (wrapper === undefined) {
        const original = (value as (...args: unknown[]) => unknown).bind(target);
        wrapper = (...args: unknown[]) => {
          const started = performance.now();
          const result = original(...args);
          if (!(result instanceof Promise)) return result;
          return result.then(
            (v) => {
              metrics.store(key, performance.now() - started, false);
              return v;
            },
            (err: unknown) => {
              metrics.store(key, performance.now() - started, true);
              throw err;
            },
          );
        };
        timed.set(key, wrapper);
      }
      return wrapper;
    },
  });
}
