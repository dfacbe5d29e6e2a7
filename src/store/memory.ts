/**
 * The embedded store: everything in this process's memory. It is what `npm start` serves on when
 * no database is configured; sessions live as long as the process and are not shared.
 */
import { ApiError } from '../core/errors.ts';
import type { AccountRecord, CallClaim, CallRecord, KeptOutcome, PasswordHash, SessionRecord, Store, ThrottleState } from './types.ts';

/**
 * A claimed call's nonce, one object with a fixed shape (many live at once): `outcome` undefined
 * while it runs, null when its answer is not kept.
 */
class ClaimedNonce {
  outcome: KeptOutcome | null | undefined = undefined;
  /** What the kept outcome is counted as, while it is kept. */
  bytes = 0;
  constructor(
    readonly expires: number,
    readonly mac: string,
    readonly retry: boolean,
  ) {}
}

export interface MemoryStoreOptions {
  /** Most bytes of kept outcomes held at once; past it the oldest are dropped (32 MiB by default). */
  outcomeMemory?: number;
}

/** Bytes an outcome is counted as: its strings (UTF-16 in memory) and the record around them. */
const outcomeBytes = (o: KeptOutcome) => 2 * (o.body.length + (o.location?.length ?? 0)) + 96;

/** Stored copies, so a caller that mutates what it was given cannot change the store behind its back. */
function copySession(s: SessionRecord): SessionRecord {
  return { ...s, state: structuredClone(s.state) };
}

export class MemoryStore implements Store {
  readonly description = 'embedded';
  readonly shared = false;
  readonly forMethods = { db: null, sql: null };
  #accounts = new Map<string, AccountRecord>();
  #sessions = new Map<string, SessionRecord>();
  /** A plain nonce is its expiry alone; a claimed call's carries what its retries need. */
  #nonces = new Map<string, number | ClaimedNonce>();
  /**
   * Keys of kept outcomes, oldest first, from `#keptHead` on (a queue without shifting); a key
   * whose outcome is gone meanwhile is skipped when reached.
   */
  #kept: string[] = [];
  #keptHead = 0;
  #keptBytes = 0;
  readonly #outcomeMemory: number;
  /** Failure times per throttle key, oldest first, each with the time it leaves the window. */
  #failures = new Map<string, { id: string; at: number; until: number }[]>();
  #failureIds = 0;

  constructor(options: MemoryStoreOptions = {}) {
    this.#outcomeMemory = options.outcomeMemory ?? 32 * 1024 * 1024;
  }

  /** Bytes of kept outcomes held now (for tests and the operator). */
  get keptOutcomeBytes(): number {
    return this.#keptBytes;
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
    this.#sessions.set(session.sessionId, copySession(session));
  }

  async getSession(sessionId: string, now: number): Promise<SessionRecord | null> {
    const found = this.#sessions.get(sessionId);
    if (found === undefined) return null;
    if (found.expires <= now) {
      this.#sessions.delete(sessionId);
      return null;
    }
    return copySession(found);
  }

  async touchSession(sessionId: string, expires: number): Promise<void> {
    const found = this.#sessions.get(sessionId);
    if (found !== undefined && expires > found.expires) found.expires = expires;
  }

  async deleteSession(sessionId: string): Promise<void> {
    this.#sessions.delete(sessionId);
  }

  async deleteUserSessions(userKey: string, exceptSessionId?: string): Promise<number> {
    let ended = 0;
    for (const [id, s] of this.#sessions) {
      if (s.userKey === userKey && id !== exceptSessionId) {
        this.#sessions.delete(id);
        ended++;
      }
    }
    return ended;
  }

  async saveSessionState(sessionId: string, state: Record<string, unknown>, expectedVersion: number): Promise<number | null> {
    const found = this.#sessions.get(sessionId);
    if (found === undefined || found.version !== expectedVersion) return null;
    found.state = structuredClone(state);
    found.version += 1;
    return found.version;
  }

  async rememberNonce(sessionId: string, nonce: string, expires: number, now: number, claim?: CallClaim): Promise<boolean> {
    const key = `${sessionId}\n${nonce}`;
    const seen = this.#nonces.get(key);
    if (seen !== undefined && expiryOf(seen) > now) return false;
    if (seen !== undefined) this.#forget(seen);
    // Outcomes are immutable values: kept as given, not copied.
    this.#nonces.set(key, claim === undefined ? expires : new ClaimedNonce(expires, claim.mac, claim.retry === true));
    return true;
  }

  async findCall(sessionId: string, nonce: string, now: number): Promise<CallRecord | null> {
    const seen = this.#nonces.get(`${sessionId}\n${nonce}`);
    if (seen === undefined || expiryOf(seen) <= now) return null;
    if (typeof seen === 'number' || seen.retry || seen.outcome === null) return { state: 'unkept' };
    if (seen.outcome === undefined) return { state: 'running', claim: { mac: seen.mac } };
    return { state: 'done', claim: { mac: seen.mac }, outcome: seen.outcome };
  }

  async keepOutcome(sessionId: string, nonce: string, outcome: KeptOutcome | null): Promise<void> {
    const key = `${sessionId}\n${nonce}`;
    const seen = this.#nonces.get(key);
    if (seen === undefined || typeof seen === 'number' || seen.outcome !== undefined) return;
    const bytes = outcome === null ? 0 : outcomeBytes(outcome);
    if (outcome === null || bytes > this.#outcomeMemory) {
      seen.outcome = null;
      return;
    }
    seen.outcome = outcome;
    seen.bytes = bytes;
    this.#kept.push(key);
    this.#keptBytes += bytes;
    // Past the bound the oldest outcomes go first: their retries get "outcome not kept".
    while (this.#keptBytes > this.#outcomeMemory && this.#keptHead < this.#kept.length) {
      const oldest = this.#nonces.get(this.#kept[this.#keptHead++]!);
      if (oldest !== undefined && typeof oldest !== 'number' && oldest.bytes !== 0) {
        this.#forget(oldest);
        oldest.outcome = null;
      }
    }
    this.#compactKept();
  }

  /** Stops counting a record's kept outcome (its key leaves the queue when reached). */
  #forget(entry: number | ClaimedNonce): void {
    if (typeof entry === 'number' || entry.bytes === 0) return;
    this.#keptBytes -= entry.bytes;
    entry.bytes = 0;
  }

  /** Drops the queue's consumed head once it is most of the array. */
  #compactKept(): void {
    if (this.#keptHead > 1024 && this.#keptHead * 2 > this.#kept.length) {
      this.#kept = this.#kept.slice(this.#keptHead);
      this.#keptHead = 0;
    }
  }

  async getFailures(key: string, now: number, window: number): Promise<ThrottleState> {
    const inWindow = (this.#failures.get(key) ?? []).filter((f) => f.at > now - window);
    return inWindow.length === 0 ? { count: 0, resetAt: now } : { count: inWindow.length, resetAt: inWindow[0]!.at + window };
  }

  async addFailure(key: string, now: number, window: number): Promise<string> {
    const list = (this.#failures.get(key) ?? []).filter((f) => f.until > now);
    const id = String(++this.#failureIds);
    list.push({ id, at: now, until: now + window });
    list.sort((a, b) => a.at - b.at);
    this.#failures.set(key, list);
    return id;
  }

  async removeFailure(key: string, id: string): Promise<void> {
    const list = this.#failures.get(key);
    if (list !== undefined) this.#failures.set(key, list.filter((f) => f.id !== id));
  }

  async clearFailures(key: string): Promise<void> {
    this.#failures.delete(key);
  }

  async sweep(now: number): Promise<void> {
    for (const [id, s] of this.#sessions) if (s.expires <= now) this.#sessions.delete(id);
    for (const [key, entry] of this.#nonces) {
      if (expiryOf(entry) > now) continue;
      this.#nonces.delete(key);
      this.#forget(entry);
    }
    // Keys whose records are gone or no longer kept leave the queue.
    this.#kept = this.#kept.slice(this.#keptHead).filter((key) => {
      const entry = this.#nonces.get(key);
      return entry !== undefined && typeof entry !== 'number' && entry.bytes !== 0;
    });
    this.#keptHead = 0;
    for (const [key, list] of this.#failures) {
      const live = list.filter((f) => f.until > now);
      if (live.length === 0) this.#failures.delete(key);
      else this.#failures.set(key, live);
    }
  }
}

function expiryOf(entry: number | ClaimedNonce): number {
  return typeof entry === 'number' ? entry : entry.expires;
}
