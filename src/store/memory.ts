/**
 * The embedded store: everything in this process's memory. It is what `npm start` serves on when
 * no database is configured; sessions live as long as the process and are not shared.
 */
import { ApiError } from '../core/errors.ts';
import { OutcomeRing } from './outcome-ring.ts';
import type { AccountRecord, CallClaim, CallRecord, KeptOutcome, PasswordHash, SessionRecord, Store, ThrottleState } from './types.ts';

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
}

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
  readonly #outcomes: OutcomeRing;
  /** Failure times per throttle key, oldest first, each with the time it leaves the window. */
  #failures = new Map<string, { id: string; at: number; until: number }[]>();
  #failureIds = 0;

  constructor(options: MemoryStoreOptions = {}) {
    this.#outcomes = new OutcomeRing(options.outcomeMemory ?? 32 * 1024 * 1024);
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
    this.#nonces.set(key, claim === undefined ? expires : new ClaimedNonce(expires, claim.mac, claim.retry === true));
    return true;
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
    for (const [key, entry] of this.#nonces) if (expiryOf(entry) <= now) this.#nonces.delete(key);
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
