/**
 * Accounts and sessions (PROTOCOL.md §5): what the `account.*` methods call through `ctx.accounts`.
 * Throttling of failed logins per user_id and per client address lives here too.
 */
import { randomBytes } from 'node:crypto';
import { v4 as uuidv4 } from 'uuid';
import { ApiError } from './errors.ts';
import { dummyHash, hashPassword, verifyPassword } from './passwords.ts';
import type { IssuedSession } from './auth.ts';
import type { CallScope } from './context.ts';
import type { SessionRecord, Store } from '../store/types.ts';
import { nowSeconds } from './clock.ts';

/** What create and login answer (§5). */
export interface SessionGrant {
  user_id: string;
  session_id: string;
  /** base64url, no padding: the v2 signing key, sent only here. */
  session_key: string;
  expires: number;
}

export interface Accounts {
  create(userId: string, password: string): Promise<SessionGrant>;
  login(userId: string, password: string): Promise<SessionGrant>;
  /** Ends the calling session everywhere. */
  logout(): Promise<void>;
  /** Checks the old password, stores the new one and ends every other session of the user. */
  changePassword(oldPassword: string, newPassword: string): Promise<void>;
}

export interface AccountSettings {
  sessionTtl: number;
  maxFailures: number;
  maxFailuresPerIp: number;
  window: number;
  /** Sessions per user; a new one ends the least recently used past it. Absent: no limit. */
  maxSessionsPerUser?: number;
  scrypt?: { N: number; r: number; p: number };
}

/** §5: user_ids are matched case-insensitively. */
export function userKeyOf(userId: string): string {
  return userId.normalize('NFC').toLowerCase();
}

const WRONG_CREDENTIALS = 'Wrong user_id or password';
/** The stores' own Conflict message for a taken user_id. */
const TAKEN = 'That user_id is already taken';

/**
 * Marks a grant with the session it started, so the answer that carries it is signed with its key
 * (§6). A symbol: JSON never sends it, and a method that spreads the grant keeps it.
 */
export const ISSUED: unique symbol = Symbol('simpleapi.issued');

/** The session a create/login result started, when the result is (or copies) its grant. */
export function issuedBy(result: unknown): IssuedSession | undefined {
  return result !== null && typeof result === 'object' ? (result as { [ISSUED]?: IssuedSession })[ISSUED] : undefined;
}


export class AccountService {
  readonly #store: Store;
  readonly #settings: AccountSettings;

  constructor(store: Store, settings: AccountSettings) {
    this.#store = store;
    this.#settings = settings;
  }

  /** The `ctx.accounts` a method sees, bound to its request. */
  bind(scope: CallScope): Accounts {
    return {
      create: (userId, password) => this.create(scope, userId, password),
      login: (userId, password) => this.login(scope, userId, password),
      logout: () => this.logout(scope),
      changePassword: (oldPassword, newPassword) => this.changePassword(scope, oldPassword, newPassword),
    };
  }

  /**
   * A taken id is answered before any hashing, with the store's own Conflict (its answer says no
   * more than the one after a hash would): a flood of creates for a taken id costs no scrypt.
   */
  async create(scope: CallScope, userId: string, password: string): Promise<SessionGrant> {
    const now = nowSeconds();
    if ((await this.#store.findAccount(userKeyOf(userId))) !== null) throw new ApiError('Conflict', TAKEN);
    await this.#store.createAccount({
      userKey: userKeyOf(userId),
      userId,
      password: await hashPassword(password, this.#settings.scrypt),
      created: now,
    });
    return this.#startSession(userKeyOf(userId), userId, now);
  }

  /**
   * Each attempt is recorded before it is judged, then the counts are read: concurrent guesses
   * (a burst of requests, or a batch) all see each other, so no more than the limit get through
   * to the password check. A right password takes its own record back; a blocked attempt counts.
   */
  async login(scope: CallScope, userId: string, password: string): Promise<SessionGrant> {
    const now = nowSeconds();
    const userKey = userKeyOf(userId);
    const window = this.#settings.window;
    const throttleKeys = [`user:${userKey}`, `ip:${scope.ip}`] as const;
    const limits = [this.#settings.maxFailures, this.#settings.maxFailuresPerIp];
    const attempts = await Promise.all(throttleKeys.map((k) => this.#store.addFailure(k, now, window)));
    const states = await Promise.all(throttleKeys.map((k) => this.#store.getFailures(k, now, window)));
    states.forEach((state, i) => {
      // This attempt is one of `count`: more than the limit means the limit was already used up.
      if (state.count > limits[i]!) throw this.#tooMany(state.resetAt - now);
    });
    const account = await this.#store.findAccount(userKey);
    // Hash against a dummy when the account does not exist: the same work, the same answer.
    const ok = await verifyPassword(password, account?.password ?? (await dummyHash()));
    if (account === null || !ok) throw new ApiError('Unauthenticated', WRONG_CREDENTIALS);
    await Promise.all([this.#store.clearFailures(throttleKeys[0]), this.#store.removeFailure(throttleKeys[1], attempts[1]!)]);
    return this.#startSession(userKey, account.userId, now);
  }

  async logout(scope: CallScope): Promise<void> {
    const session = requireSession(scope);
    await this.#store.deleteSession(session.sessionId);
  }

  async changePassword(scope: CallScope, oldPassword: string, newPassword: string): Promise<void> {
    const session = requireSession(scope);
    const account = await this.#store.findAccount(session.userKey);
    if (account === null) throw new ApiError('Unauthenticated', 'The account no longer exists');
    if (!(await verifyPassword(oldPassword, account.password))) throw new ApiError('Forbidden', 'old_password is wrong');
    await this.#store.setPassword(session.userKey, await hashPassword(newPassword, this.#settings.scrypt));
    await this.#store.deleteUserSessions(session.userKey, session.sessionId);
  }

  #tooMany(retryAfter: number): ApiError {
    const seconds = Math.max(1, retryAfter);
    return new ApiError('TooManyRequests', `Too many failed logins; try again in ${seconds} s`, { retryAfter: seconds });
  }

  async #startSession(userKey: string, userId: string, now: number): Promise<SessionGrant> {
    const record: SessionRecord = {
      sessionId: uuidv4(),
      userKey,
      userId,
      key: randomBytes(32),
      expires: now + this.#settings.sessionTtl,
      state: {},
      version: 0,
    };
    await this.#store.createSession(record);
    if (this.#settings.maxSessionsPerUser !== undefined) await this.#store.trimUserSessions(userKey, this.#settings.maxSessionsPerUser, record.sessionId);
    const grant: SessionGrant = { user_id: userId, session_id: record.sessionId, session_key: record.key.toString('base64url'), expires: record.expires };
    Object.defineProperty(grant, ISSUED, { value: { key: record.key, userId }, enumerable: true });
    return grant;
  }
}

function requireSession(scope: CallScope): SessionRecord {
  if (scope.session === null) throw new ApiError('Unauthenticated');
  return scope.session;
}
