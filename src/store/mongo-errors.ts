/** MongoDB driver errors as clients see them: a database that does not answer is Unavailable. */
import { ApiError } from '../core/errors.ts';

/** Seconds a client is told to wait when the database does not answer. */
const RETRY_AFTER = 5;
const UNAVAILABLE_ERRORS = new Set([
  'MongoNetworkError',
  'MongoNetworkTimeoutError',
  'MongoServerSelectionError',
  'MongoNotConnectedError',
  'MongoPoolClearedError',
  'MongoTopologyClosedError',
  'MongoServerClosedError',
]);

/** A database that does not answer becomes Unavailable (503, Retry-After); other errors pass. */
export function mapDriverError(err: unknown): unknown {
  if (err instanceof Error && UNAVAILABLE_ERRORS.has(err.name)) {
    return new ApiError('Unavailable', 'The database does not answer; try again shortly', { retryAfter: RETRY_AFTER, cause: err });
  }
  return err;
}
