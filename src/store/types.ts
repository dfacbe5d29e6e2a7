/**
 * The store interface: accounts, sessions, seen nonces (with the outcomes kept for retries) and
 * login throttling. The embedded store
 * (`memory.ts`), the MongoDB store (`mongo.ts`) and the MySQL/MariaDB store (`mysql.ts`)
 * implement it and pass `test/store.contract.ts`.
 *
 * Times are Unix seconds throughout. `userKey` is the matched form of a user_id (lower-cased).
 */
import type { Db } from 'mongodb';
import type { Pool } from 'mysql2/promise';
import type { Logger } from 'pino';
import type { JobExecutor, JobRunner, JobSettings } from '../core/jobs.ts';

export interface PasswordHash {
  algo: 'scrypt';
  N: number;
  r: number;
  p: number;
  /** base64 */
  salt: string;
  /** base64 */
  hash: string;
}

export interface AccountRecord {
  userKey: string;
  /** As given at creation. */
  userId: string;
  password: PasswordHash;
  created: number;
}

export interface SessionRecord {
  sessionId: string;
  userKey: string;
  userId: string;
  /** The 32-byte v2 signing key. */
  key: Buffer;
  expires: number;
  state: Record<string, unknown>;
  /** Bumped by every state save; the basis of the Conflict check. */
  version: number;
}

/**
 * Failed credential checks counted for one throttle key in the current fixed window: windows are
 * `window` seconds long and start at multiples of it, so a count is one number per key.
 */
export interface ThrottleState {
  count: number;
  /** When the current window ends and the count starts again from 0. */
  resetAt: number;
}

/** The fixed window holding `now`: its index and when it ends. */
export function throttleWindow(now: number, window: number): { index: number; resetAt: number } {
  const index = Math.floor(now / window);
  return { index, resetAt: (index + 1) * window };
}

/**
 * What the nonce record of a signed call says about the call, so that a retry naming its nonce
 * (PROTOCOL.md §6, v2 retries) can tell whether it is the same request.
 */
export interface CallClaim {
  /**
   * The call's v2 MAC (hex) over its timestamp, nonce and body: a retry is the same request when
   * the MAC of its x-retry-timestamp, x-retry-of and body is this one, so neither the body nor
   * a hash of it need be kept. '' for a retry's own nonce.
   */
  readonly mac: string;
  /** The nonce of a retry: a retry naming it is answered "outcome not kept". */
  readonly retry?: boolean;
}

/** A finished call's answer, kept with its nonce so a retry gets it without running anything. */
export interface KeptOutcome {
  readonly status: number;
  readonly location?: string;
  /** Seconds, as the answer's `Retry-After` said. */
  readonly retryAfter?: number;
  /** The body exactly as sent; '' for none. */
  readonly body: string;
}

/** A claimed nonce as a retry finds it. */
export type CallRecord =
  | { readonly state: 'running'; readonly claim: CallClaim }
  | { readonly state: 'done'; readonly claim: CallClaim; readonly outcome: KeptOutcome }
  /** Nothing a retry can use: a retry's own nonce, a GET's, an answer too large or streamed, or dropped for room. */
  | { readonly state: 'unkept' };

/** One SQL statement (exactly one: no `;`) with `?` placeholders, and its values. */
export interface JoinedWrite {
  readonly sql: string;
  readonly values: unknown[];
}

/**
 * One rate-limit window of one key, as a store that counts calls keeps it: at most `points` calls
 * are counted under `id`; the store may forget it after `expires` (seconds since the epoch).
 */
export interface WindowCount {
  readonly id: string;
  readonly points: number;
  readonly expires: number;
}

/** What a write statement answers (mysql2's ResultSetHeader, the fields read here). */
export interface JoinedAnswer {
  readonly affectedRows: number;
  readonly insertId: number;
}

/** What a store gives methods for their own data (`ctx.db`); null where it has none. */
export interface MethodResources {
  /** MongoDB's database, for methods' own collections. */
  readonly db: Db | null;
  /** The MySQL/MariaDB pool (mysql2/promise), for methods' own tables. */
  readonly sql: Pool | null;
}

export interface Store {
  /** For people: what this store is and where, without secrets ("embedded", "mongodb 127.0.0.1/api"). */
  readonly description: string;
  /** True when other processes see the same accounts and sessions (so --workers and many instances work). */
  readonly shared: boolean;
  readonly forMethods: MethodResources;
  /**
   * A job runner over this store's database, so any instance may run or report any job; absent
   * when the store has none, and jobs then run in the process.
   */
  startJobRunner?(settings: JobSettings & { lock: number }, execute: JobExecutor, log: Logger): Promise<JobRunner>;
  /** Creates indexes and the like; idempotent. */
  init(): Promise<void>;
  close(): Promise<void>;
  /** True when the backing database answers. */
  ping(): Promise<boolean>;

  /** Throws ApiError Conflict when the userKey is taken. */
  createAccount(account: AccountRecord): Promise<void>;
  findAccount(userKey: string): Promise<AccountRecord | null>;
  /** False when there is no such account. */
  setPassword(userKey: string, password: PasswordHash): Promise<boolean>;

  createSession(session: SessionRecord): Promise<void>;
  /**
   * The session when it exists and `expires > now`. The embedded store answers at once, without a
   * promise, as it does for rememberNonce: signed calls ask both on every request. A store may
   * answer either way (any thenable will do); a caller awaits the answer or checks it with
   * `isThenable` (src/core/thenable.ts), never with `.then` alone.
   */
  getSession(sessionId: string, now: number): SessionRecord | null | Promise<SessionRecord | null>;
  /** Moves expiry (never backwards). */
  touchSession(sessionId: string, expires: number): Promise<void>;
  deleteSession(sessionId: string): Promise<void>;
  /** Ends every session of a user but `exceptSessionId`; returns how many ended. */
  deleteUserSessions(userKey: string, exceptSessionId?: string): Promise<number>;
  /**
   * Leaves a user at most `keep` sessions: `keepSessionId` (the one just started) and the most
   * recently used of the others (latest expiry, which each signed use moves forward); the rest
   * end. Returns how many ended.
   */
  trimUserSessions(userKey: string, keep: number, keepSessionId: string): Promise<number>;
  /**
   * Writes `state` when the stored version is still `expectedVersion`; returns the new version,
   * or null when another save came first (or the session is gone).
   */
  saveSessionState(sessionId: string, state: Record<string, unknown>, expectedVersion: number): Promise<number | null>;

  /**
   * Records a nonce for a session; false when it was already seen and has not expired. With a
   * `claim` the record also says the call is running, in the same write (one round trip), until
   * `keepOutcome` records how it ended.
   */
  rememberNonce(sessionId: string, nonce: string, expires: number, now: number, claim?: CallClaim): boolean | Promise<boolean>;
  /**
   * rememberNonce and `also` in one round trip, both or neither (MySQL: a transaction sent as one
   * query); `joined` is the answer of `also` when it ran, null when the nonce was seen before or
   * went rememberNonce's way without it. Absent where a store cannot join them.
   */
  rememberNonceWith?(sessionId: string, nonce: string, expires: number, now: number, claim: CallClaim | undefined, also: JoinedWrite): Promise<{ fresh: boolean; joined: JoinedAnswer | null }>;
  /**
   * rememberNonce and, when the nonce is fresh, a call counted in `count`'s window, in one round
   * trip (MongoDB: one ordered update command). `counted`: the window had room and the call was
   * counted in it. Absent where a store cannot count (MySQL joins its counter's own statement, above).
   */
  rememberNonceCounted?(sessionId: string, nonce: string, expires: number, now: number, claim: CallClaim | undefined, count: WindowCount): Promise<{ fresh: boolean; counted: boolean }>;
  /** Counts one call in `count`'s window, if it has room; false when it had none. */
  countInWindow?(count: WindowCount): Promise<boolean>;
  /**
   * Set where the database is known to lose concurrent updates of one document (FerretDB 1.x):
   * its name. Calls are then counted in the process, without probing it (rate-limit.ts).
   */
  readonly losesRacingUpdates?: string;
  /** The live record of a nonce, or null when it was never seen or has expired. */
  findCall(sessionId: string, nonce: string, now: number): Promise<CallRecord | null>;
  /**
   * Records the answer of a call claimed with `rememberNonce`, or with null that it is not kept.
   * A store may drop kept outcomes to stay within its bounds; they are then `unkept`.
   */
  keepOutcome(sessionId: string, nonce: string, outcome: KeptOutcome | null): Promise<void>;

  /** The failures counted for a throttle key in the window holding `now`; O(1), whatever the count. */
  countFailures(key: string, now: number, window: number): Promise<ThrottleState>;
  /**
   * Counts one failure for a key in the window holding `now` and returns the count with it.
   * Concurrent calls all count, on every store (on MongoDB by unique inserts, since not every
   * MongoDB-compatible server makes `$inc` atomic: see bench/ferretdb-counters.ts). O(1).
   */
  recordFailure(key: string, now: number, window: number): Promise<ThrottleState>;
  /** Forgets a key's failures (a right password ends a run of consecutive failures). */
  resetFailures(key: string): Promise<void>;

  /** Removes expired sessions, nonces and throttle windows; for stores without TTL indexes. */
  sweep(now: number): Promise<void>;
}
