/**
 * The store interface: accounts, sessions, seen nonces and login throttling. The embedded store
 * (`memory.ts`), the MongoDB store (`mongo.ts`) and the MySQL/MariaDB store (`mysql.ts`)
 * implement it and pass `test/store.contract.ts`.
 *
 * Times are Unix seconds throughout. `userKey` is the matched form of a user_id (lower-cased).
 */
import type { Db } from 'mongodb';
import type { Pool } from 'mysql2/promise';
import type { Logger } from 'pino';
import type { JobExecutor } from '../jobs/execute.ts';
import type { JobRunner, JobSettings } from '../jobs/types.ts';

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

/** Failed logins for one key within the last `window` seconds (a sliding window). */
export interface ThrottleState {
  count: number;
  /** When the oldest of them leaves the window, so the count drops; `now` when there are none. */
  resetAt: number;
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
  /** The session when it exists and `expires > now`. */
  getSession(sessionId: string, now: number): Promise<SessionRecord | null>;
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

  /** Records a nonce for a session; false when it was already seen and has not expired. */
  rememberNonce(sessionId: string, nonce: string, expires: number, now: number): Promise<boolean>;

  /** Failures of a throttle key (`user:…`, `ip:…`) in the `window` seconds before `now`. */
  getFailures(key: string, now: number, window: number): Promise<ThrottleState>;
  /**
   * Records one attempt at `now`, kept for `window` seconds, and returns its id. Concurrent calls
   * all count: each is an insert, since not every MongoDB-compatible server makes a conditional
   * update atomic.
   */
  addFailure(key: string, now: number, window: number): Promise<string>;
  /** Takes back one recorded attempt (a login that turned out right). */
  removeFailure(key: string, id: string): Promise<void>;
  clearFailures(key: string): Promise<void>;

  /** Removes expired sessions, nonces and throttle windows; for stores without TTL indexes. */
  sweep(now: number): Promise<void>;
}
