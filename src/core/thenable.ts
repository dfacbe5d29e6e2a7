/**
 * Values that may be promises. The embedded store answers its hot operations at once and a
 * database's store with a promise; a store of a user's own may return any thenable (a Bluebird
 * promise, a query builder), which `await` accepts and `instanceof Promise` would miss.
 */
export function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function';
}
