/**
 * Accounts and sessions (PROTOCOL.md §5): what the `account.*` methods call through `ctx.accounts`.
 * Every password check goes through the credential throttle (throttle.ts).
 */
import { randomBytes } from 'node:crypto';
import { v4 as uuidv4 } from 'uuid';
import { ApiError } from './errors.ts';
import { dummyHash, hashPassword, verifyPassword } from './passwords.ts';
import { addressKeyOf } from './address.ts';
import type { IssuedSession } from './auth.ts';
import type { AccountRecord, SessionRecord, Store } from '../store/types.ts';
import { nowSeconds } from './clock.ts';
import { CredentialThrottle } from './throttle.ts';
import { checkNewUserId, legacyUserKeyOf, userKeyOf } from './user-id.ts';

export { userKeyOf } from './user-id.ts';

/** Who calls an account operation: the client address and the verified session, if any. */
export interface AccountCaller {
  readonly ip: string;
  readonly session: SessionRecord | null;
}

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
  /** Consecutive failed checks of one user_id from one address. */
  maxFailures: number;
  /** Failed checks from one address, across user_ids. */
  maxFailuresPerIp: number;
  /** Failed checks of one user_id, across addresses (a much higher ceiling). */
  maxFailuresPerUser: number;
  window: number;
  /** Sessions per user; a new one ends the least recently used past it. Absent: no limit. */
  maxSessionsPerUser?: number;
  scrypt?: { N: number; r: number; p: number };
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
  readonly #throttle: CredentialThrottle;

  constructor(store: Store, settings: AccountSettings) {
    this.#store = store;
    this.#settings = settings;
    this.#throttle = new CredentialThrottle(store, {
      perPair: settings.maxFailures,
      perAddress: settings.maxFailuresPerIp,
      perUser: settings.maxFailuresPerUser,
      window: settings.window,
    });
  }

  /** The `ctx.accounts` a method sees, bound to its request. */
  bind(scope: AccountCaller): Accounts {
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
  async create(scope: AccountCaller, userId: string, password: string): Promise<SessionGrant> {
    checkNewUserId(userId);
    const now = nowSeconds();
    const userKey = userKeyOf(userId);
    if ((await this.#findAccount(userId, userKey)) !== null) throw new ApiError('Conflict', TAKEN);
    const hash = await hashPassword(password, this.#settings.scrypt, addressKeyOf(scope.ip));
    await this.#store.createAccount({ userKey, userId, password: hash, created: now });
    return this.#startSession({ userKey, userId }, now);
  }

  /**
   * The password check runs under the throttle. A session is handed out only if the password it
   * was checked against is still the account's once the session exists: a password change that
   * came in between either sees the session (and ends it) or is seen here (and the session ends).
   */
  async login(scope: AccountCaller, userId: string, password: string): Promise<SessionGrant> {
    const userKey = userKeyOf(userId);
    let account: AccountRecord | null = null;
    const ok = await this.#throttle.check(userKey, scope.ip, async () => {
      account = await this.#findAccount(userId, userKey);
      // Hash against a dummy when the account does not exist: the same work, the same answer.
      const right = await verifyPassword(password, account?.password ?? (await dummyHash()), addressKeyOf(scope.ip));
      return account !== null && right;
    });
    if (!ok || account === null) throw new ApiError('Unauthenticated', WRONG_CREDENTIALS);
    const checked: AccountRecord = account;
    const grant = await this.#startSession(checked, nowSeconds());
    const current = await this.#store.findAccount(checked.userKey);
    if (current === null || current.password.hash !== checked.password.hash || current.password.salt !== checked.password.salt) {
      await this.#store.deleteSession(grant.session_id);
      throw new ApiError('Unauthenticated', WRONG_CREDENTIALS);
    }
    return grant;
  }

  /** The account of a user_id; an account made before width folding is found under its old key. */
  async #findAccount(userId: string, userKey: string): Promise<AccountRecord | null> {
    const found = await this.#store.findAccount(userKey);
    if (found !== null) return found;
    const legacy = legacyUserKeyOf(userId);
    return legacy === userKey ? null : this.#store.findAccount(legacy);
  }

  async logout(scope: AccountCaller): Promise<void> {
    const session = requireSession(scope);
    await this.#store.deleteSession(session.sessionId);
  }

  /**
   * Checks the old password under the throttle, as a login is, stores the new one and ends every
   * other session of the user. Sessions from logins still in flight end too (see login).
   */
  async changePassword(scope: AccountCaller, oldPassword: string, newPassword: string): Promise<void> {
    const session = requireSession(scope);
    let account: AccountRecord | null = null;
    const ok = await this.#throttle.check(session.userKey, scope.ip, async () => {
      account = await this.#store.findAccount(session.userKey);
      return account !== null && (await verifyPassword(oldPassword, account.password, addressKeyOf(scope.ip)));
    });
    if (account === null) throw new ApiError('Unauthenticated', 'The account no longer exists');
    if (!ok) throw new ApiError('Forbidden', 'old_password is wrong');
    await this.#store.setPassword(session.userKey, await hashPassword(newPassword, this.#settings.scrypt, addressKeyOf(scope.ip)));
    await this.#store.deleteUserSessions(session.userKey, session.sessionId);
  }

  async #startSession(account: Pick<AccountRecord, 'userKey' | 'userId'>, now: number): Promise<SessionGrant> {
    const { userKey, userId } = account;
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

function requireSession(scope: AccountCaller): SessionRecord {
  if (scope.session === null) throw new ApiError('Unauthenticated');
  return scope.session;
}
