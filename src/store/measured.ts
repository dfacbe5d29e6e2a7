/**
 * A Store that times every operation of another and reports it to the metrics, for all three
 * stores in one place. Used only with metrics on: without them the core holds the store itself.
 */
import type { Metrics } from '../core/metrics.ts';
import type { Store } from './types.ts';

/** The operations timed; also the `op` label values (a fixed list). */
const OPERATIONS = [
  'ping',
  'createAccount',
  'findAccount',
  'setPassword',
  'createSession',
  'getSession',
  'touchSession',
  'deleteSession',
  'deleteUserSessions',
  'saveSessionState',
  'rememberNonce',
  'getFailures',
  'addFailure',
  'removeFailure',
  'clearFailures',
  'sweep',
] as const satisfies readonly (keyof Store)[];

/**
 * @example const store = measuredStore(new MemoryStore(), metrics); await store.getSession(id, now) // timed
 */
export function measuredStore(inner: Store, metrics: Metrics): Store {
  const measured: Record<string, unknown> = {
    get description() {
      return inner.description;
    },
    get shared() {
      return inner.shared;
    },
    get forMethods() {
      return inner.forMethods;
    },
    init: () => inner.init(),
    close: () => inner.close(),
  };
  // Bound to the inner store: its job runner reads the store's own (private) fields.
  if (inner.startJobRunner !== undefined) measured.startJobRunner = inner.startJobRunner.bind(inner);
  for (const op of OPERATIONS) {
    const original = (inner[op] as (...args: unknown[]) => Promise<unknown>).bind(inner);
    measured[op] = (...args: unknown[]) => {
      const started = performance.now();
      return original(...args).then(
        (value) => {
          metrics.store(op, performance.now() - started, false);
          return value;
        },
        (err: unknown) => {
          metrics.store(op, performance.now() - started, true);
          throw err;
        },
      );
    };
  }
  return measured as unknown as Store;
}
