/**
 * The embedded store: everything in this process's memory. It is what `npm start` serves on when
 * no database is configured; sessions live as long as the process and are not shared.
 */
import { ApiError } from '../core/errors.ts';
import { throttleWindow, type AccountRecord, type PasswordHash, type SessionRecord, type Store, type ThrottleState } from './types.ts';

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
  #nonces = new Map<string, number>();
  /** One counter per throttle key: its window's index, the count, and when the window ends. */
  #failures = new Map<string, { index: number; count: number; until: number }>();

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

  async rememberNonce(sessionId: string, nonce: string, expires: number, now: number): Promise<boolean> {
    const key = `${sessionId}\n${nonce}`;
    const seen = this.#nonces.get(key);
    if (seen !== undefined && seen > now) return false;
    this.#nonces.set(key, expires);
    return true;
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
    for (const [id, s] of this.#sessions) if (s.expires <= now) this.#sessions.delete(id);
    for (const [key, expires] of this.#nonces) if (expires <= now) this.#nonces.delete(key);
    for (const [key, counter] of this.#failures) if (counter.until <= now) this.#failures.delete(key);
  }
}
