/**
 * The embedded store: everything in this process's memory. It is what `npm start` serves on when
 * no database is configured; sessions live as long as the process and are not shared.
 */
import { ApiError } from '../core/errors.ts';
import { ExpiryQueue } from '../core/expiry-queue.ts';
import { ProcessCounter } from '../core/rate-limit.ts';
import { OutcomeRing } from './outcome-ring.ts';
import { throttleWindow, type AccountRecord, type CallClaim, type CallRecord, type KeptOutcome, type PasswordHash, type SessionRecord, type Store, type ThrottleState } from './types.ts';

/**
 * A claimed call's nonce, one object with a fixed shape (many live at once). Its answer, once
 * kept, is in the ring at `start`; the MAC moves there with it.
 */
class ClaimedNonce {
  state: 'running' | 'done' | 'unkept';
  status = 0;
  start = 0;
  length = 0;
  location: string | undefined = undefined;
  retryAfter: number | undefined = undefined;
  constructor(
    readonly expires: number,
    public mac: string,
    retry: boolean,
  ) {
    this.state = retry ? 'unkept' : 'running';
  }
}

export interface MemoryStoreOptions {
  /** Bytes of the arena kept outcomes are held in; past it the oldest are dropped (32 MiB by default). */
  outcomeMemory?: number;
  /** Nonces remembered at most (each about 150 bytes); 2,000,000 by default. */
  maxNonces?: number;
  /**
   * New nonces one user may have remembered per 600 s, across their sessions; 200,000 by default
   * (the server sets twice its per-user rate limit: store/index.ts). The nonce of a signed call
   * is kept before the rate limit counts it, so without this one user could fill `maxNonces`.
   */
  maxNoncesPerUser?: number;
}

/** A session as kept here; `state` is this store's own copy, never handed out. */
type StoredSession = SessionRecord;

/**
 * The caller's own copy of a stored session. The state is copied only when it is read: most
 * signed requests never look at it, and copying it on every one made each signed call of a
 * session with 40 MB of state take 54 ms. Measured on a 60 KB state: 74 us when it is read
 * (structuredClone; parsing the same state from JSON text took 214 us). A caller that mutates its
 * copy changes nothing stored. A class with the lazy `state` on its prototype, not an object with
 * a property defined on it: that made every copy a dictionary-mode object (4.8 us per signed call).
 */
class SessionCopy implements SessionRecord {
  readonly sessionId: string;
  readonly userKey: string;
  readonly userId: string;
  readonly key: Buffer;
  expires: number;
  version: number;
  #kept: Record<string, unknown>;
  #state: Record<string, unknown> | undefined = undefined;

  constructor(s: StoredSession) {
    this.sessionId = s.sessionId;
    this.userKey = s.userKey;
    this.userId = s.userId;
    this.key = s.key;
    this.expires = s.expires;
    this.version = s.version;
    this.#kept = s.state;
  }

  get state(): Record<string, unknown> {
    return (this.#state ??= structuredClone(this.#kept));
  }

  set state(value: Record<string, unknown>) {
    this.#state = value;
  }

  /** What JSON.stringify and the console's views see: the fields, the state included. */
  toJSON(): SessionRecord {
    return { sessionId: this.sessionId, userKey: this.userKey, userId: this.userId, key: this.key, expires: this.expires, state: this.state, version: this.version };
  }
}

function stored(s: SessionRecord): StoredSession {
  return { ...s, key: Buffer.from(s.key), state: structuredClone(s.state) };
}

export class MemoryStore implements Store {
  readonly description = 'embedded';
  readonly shared = false;
  readonly forMethods = { db: null, sql: null };
  #accounts = new Map<string, AccountRecord>();
  #sessions = new Map<string, StoredSession>();
  /** Session ids per userKey, so a user's sessions are found without a scan. */
  #byUser = new Map<string, Set<string>>();
  /** A plain nonce is its expiry alone; a claimed call's carries what its retries need. */
  #nonces = new Map<string, number | ClaimedNonce>();
  /** Every nonce remembered, oldest first: how the expired ones are found without a scan. */
  readonly #nonceQueue = new ExpiryQueue({
    size: () => this.#nonces.size,
    entries: () => this.#nonceExpiries(),
    expiryOf: (key) => {
      const entry = this.#nonces.get(key);
      return entry === undefined ? undefined : expiryOf(entry);
    },
    delete: (key) => this.#nonces.delete(key),
  });
  readonly #maxNonces: number;
  readonly #noncesByUser: ProcessCounter | null;
  readonly #outcomes: OutcomeRing;

  constructor(options: MemoryStoreOptions = {}) {
    this.#maxNonces = options.maxNonces ?? 2_000_000;
    const perUser = options.maxNoncesPerUser ?? 200_000;
    this.#noncesByUser = Number.isFinite(perUser) ? new ProcessCounter(perUser, 600) : null;
    this.#outcomes = new OutcomeRing(options.outcomeMemory ?? 32 * 1024 * 1024);
  }
  /** One counter per throttle key: its window's index, the count, and when the window ends. */
  #failures = new Map<string, { index: number; count: number; until: number }>();

  /** Nonces held, and places in the queue they are dropped from (for tests: within about three times them). */
  get nonceCounts(): { held: number; queued: number } {
    return { held: this.#nonces.size, queued: this.#nonceQueue.length };
  }

  /** Bytes of the kept outcomes' arena in use (for tests and the operator). */
  get keptOutcomeBytes(): number {
    return this.#outcomes.used;
  }

  async init(): Promise<void> {}
  async close(): Promise<void> {}
  async ping(): Promise<boolean> {
    return true;
  }

  async createAccount(account: AccountRecord): Promise<void> {
    if (this.#accounts.has(account.userKey)) throw new ApiError('Conflict', 'That user_id is already taken');
    this.#accounts.set(account.userKey, structuredClone(account));
  }

  async findAccount(userKey: string): Promise<AccountRecord | null> {
    const found = this.#accounts.get(userKey);
    return found === undefined ? null : structuredClone(found);
  }

  async setPassword(userKey: string, password: PasswordHash): Promise<boolean> {
    const found = this.#accounts.get(userKey);
    if (found === undefined) return false;
    found.password = { ...password };
    return true;
  }

  async createSession(session: SessionRecord): Promise<void> {
    if (this.#sessions.has(session.sessionId)) throw new ApiError('Conflict', 'Session id collision');
    this.#sessions.set(session.sessionId, stored(session));
    let ids = this.#byUser.get(session.userKey);
    if (ids === undefined) this.#byUser.set(session.userKey, (ids = new Set()));
    ids.add(session.sessionId);
  }

  #drop(sessionId: string): void {
    const found = this.#sessions.get(sessionId);
    if (found === undefined) return;
    this.#sessions.delete(sessionId);
    const ids = this.#byUser.get(found.userKey);
    ids?.delete(sessionId);
    if (ids?.size === 0) this.#byUser.delete(found.userKey);
  }

  getSession(sessionId: string, now: number): SessionRecord | null | Promise<SessionRecord | null> {
    const found = this.#sessions.get(sessionId);
    if (found === undefined) return null;
    if (found.expires <= now) {
      this.#drop(sessionId);
      return null;
    }
    return new SessionCopy(found);
  }

  async touchSession(sessionId: string, expires: number): Promise<void> {
    const found = this.#sessions.get(sessionId);
    if (found !== undefined && expires > found.expires) found.expires = expires;
  }

  async deleteSession(sessionId: string): Promise<void> {
    this.#drop(sessionId);
  }

  async deleteUserSessions(userKey: string, exceptSessionId?: string): Promise<number> {
    let ended = 0;
    for (const id of [...(this.#byUser.get(userKey) ?? [])]) {
      if (id !== exceptSessionId) {
        this.#drop(id);
        ended++;
      }
    }
    return ended;
  }

  async trimUserSessions(userKey: string, keep: number, keepSessionId: string): Promise<number> {
    const ids = [...(this.#byUser.get(userKey) ?? [])].filter((id) => id !== keepSessionId);
    if (ids.length < keep) return 0;
    // Latest expiry first, and of equal ones the later created: the ones used longest ago end.
    const order = new Map(ids.map((id, i) => [id, i]));
    const sorted = ids.map((id) => this.#sessions.get(id)!).sort((a, b) => b.expires - a.expires || order.get(b.sessionId)! - order.get(a.sessionId)!);
    const ending = sorted.slice(keep - 1);
    for (const s of ending) this.#drop(s.sessionId);
    return ending.length;
  }

  async saveSessionState(sessionId: string, state: Record<string, unknown>, expectedVersion: number): Promise<number | null> {
    const found = this.#sessions.get(sessionId);
    if (found === undefined || found.version !== expectedVersion) return null;
    found.state = structuredClone(state);
    found.version += 1;
    return found.version;
  }

  /**
   * Nonces are kept until they expire, so memory follows the signed-call rate times the window.
   * Each insert first drops up to 4 expired ones from the front of the queue (insertion order is
   * nearly expiry order), so the level holds between sweeps; and past `maxNonces` a new one is
   * refused (Unavailable) rather than remembered in memory the process does not have.
   */
  rememberNonce(sessionId: string, nonce: string, expires: number, now: number, claim?: CallClaim): boolean | Promise<boolean> {
    const key = `${sessionId}\n${nonce}`;
    const seen = this.#nonces.get(key);
    if (seen !== undefined && expiryOf(seen) > now) return false;
    this.#dropExpiredNonces(now, 4);
    if (seen === undefined) {
      if (this.#noncesByUser !== null) {
        const userKey = this.#sessions.get(sessionId)?.userKey ?? sessionId;
        const refused = this.#noncesByUser.take(userKey, 'signed by this user (each keeps its nonce for the signing window)');
        // A refusal is a rejected promise, as a database's would be; only the answer is at once.
        if (refused !== null) return Promise.reject(refused);
      }
      if (this.#nonces.size >= this.#maxNonces) {
        return Promise.reject(new ApiError('Unavailable', 'The server is holding as many signed-request nonces as it may; try again shortly', { retryAfter: 5 }));
      }
    }
    this.#nonces.set(key, claim === undefined ? expires : new ClaimedNonce(expires, claim.mac, claim.retry === true));
    this.#nonceQueue.push(key, expires);
    return true;
  }

  *#nonceExpiries(): Generator<[string, number]> {
    for (const [key, entry] of this.#nonces) yield [key, expiryOf(entry)];
  }

  /**
   * Drops expired nonces from the front of the queue, `most` at the most; it stops at the first
   * that has not expired. Those behind it that have wait for it, or for the sweep: a client may
   * ask for an expiry up to twice the window ahead, and one such call a second would otherwise
   * keep every nonce that long.
   */
  #dropExpiredNonces(now: number, most: number): void {
    const queue = this.#nonceQueue;
    // A nonce remembered again after it expired left its place behind: dropFirst keeps it.
    for (let dropped = 0; dropped < most && queue.length > 0 && queue.firstExpires <= now; dropped++) queue.dropFirst();
  }

  async findCall(sessionId: string, nonce: string, now: number): Promise<CallRecord | null> {
    const seen = this.#nonces.get(`${sessionId}\n${nonce}`);
    if (seen === undefined || expiryOf(seen) <= now) return null;
    if (typeof seen === 'number' || seen.state === 'unkept') return { state: 'unkept' };
    if (seen.state === 'running') return { state: 'running', claim: { mac: seen.mac } };
    // Overwritten by newer outcomes: dropped for room.
    if (!this.#outcomes.intact(seen.start)) return { state: 'unkept' };
    const outcome: { status: number; body: string; location?: string; retryAfter?: number } = { status: seen.status, body: this.#outcomes.body(seen.start, seen.length) };
    if (seen.location !== undefined) outcome.location = seen.location;
    if (seen.retryAfter !== undefined) outcome.retryAfter = seen.retryAfter;
    return { state: 'done', claim: { mac: this.#outcomes.mac(seen.start) }, outcome };
  }

  async keepOutcome(sessionId: string, nonce: string, outcome: KeptOutcome | null): Promise<void> {
    const seen = this.#nonces.get(`${sessionId}\n${nonce}`);
    if (seen === undefined || typeof seen === 'number' || seen.state !== 'running') return;
    const placed = outcome === null ? null : this.#outcomes.put(seen.mac, outcome.body);
    seen.mac = '';
    if (outcome === null || placed === null) {
      seen.state = 'unkept';
      return;
    }
    seen.state = 'done';
    seen.status = outcome.status;
    seen.start = placed.start;
    seen.length = placed.length;
    seen.location = outcome.location;
    seen.retryAfter = outcome.retryAfter;
  }

  async countFailures(key: string, now: number, window: number): Promise<ThrottleState> {
    const { index, resetAt } = throttleWindow(now, window);
    const counter = this.#failures.get(key);
    return { count: counter !== undefined && counter.index === index ? counter.count : 0, resetAt };
  }

  async recordFailure(key: string, now: number, window: number): Promise<ThrottleState> {
    const { index, resetAt } = throttleWindow(now, window);
    const counter = this.#failures.get(key);
    if (counter !== undefined && counter.index === index) counter.count += 1;
    else this.#failures.set(key, { index, count: 1, until: resetAt });
    return { count: this.#failures.get(key)!.count, resetAt };
  }

  async resetFailures(key: string): Promise<void> {
    this.#failures.delete(key);
  }

  async sweep(now: number): Promise<void> {
    for (const [id, s] of this.#sessions) if (s.expires <= now) this.#drop(id);
    this.#dropExpiredNonces(now, Infinity);
    // And the expired ones the queue holds behind a nonce that expires later.
    for (const [key, entry] of this.#nonces) if (expiryOf(entry) <= now) this.#nonces.delete(key);
    this.#nonceQueue.bound();
    for (const [key, counter] of this.#failures) if (counter.until <= now) this.#failures.delete(key);
  }
}

function expiryOf(entry: number | ClaimedNonce): number {
  return typeof entry === 'number' ? entry : entry.expires;
}
