/**
 * Throttling of credential checks (logins and `account.password`'s old_password), after OWASP's
 * Authentication Cheat Sheet: consecutive failures are limited per (user, address) pair, an
 * address has a budget of failures across users, and a user has a much higher ceiling across
 * addresses. So a stranger's wrong guesses from elsewhere cannot lock an owner out, and a right
 * password is never refused for someone else's failures unless the user's ceiling is reached.
 *
 * Each check costs O(1) store work: three counter reads before it and, for a failure, three
 * counter increments after (fixed windows, src/store/types.ts).
 */
import { ApiError } from './errors.ts';
import { nowSeconds } from './clock.ts';
import type { Store, ThrottleState } from '../store/types.ts';
import { addressKeyOf } from './address.ts';

export interface ThrottleLimits {
  /** Consecutive failures of one user_id from one address. */
  perPair: number;
  /** Failures from one address, whatever the user_id. */
  perAddress: number;
  /** Failures for one user_id, whatever the address: the ceiling against distributed guessing. */
  perUser: number;
  /** Seconds of a counting window. */
  window: number;
}

/** Checks in flight per key in this process, and a way to wait for one of them to end. */
class InFlight {
  readonly #counts = new Map<string, number>();
  readonly #waiters = new Map<string, (() => void)[]>();

  count(key: string): number {
    return this.#counts.get(key) ?? 0;
  }
  add(key: string): void {
    this.#counts.set(key, this.count(key) + 1);
  }
  done(key: string): void {
    const left = this.count(key) - 1;
    if (left <= 0) this.#counts.delete(key);
    else this.#counts.set(key, left);
    const waiting = this.#waiters.get(key);
    this.#waiters.delete(key);
    for (const wake of waiting ?? []) wake();
  }
  /** Resolves when any check of `key` in flight now ends. */
  settled(key: string): Promise<void> {
    return new Promise((resolve) => {
      const list = this.#waiters.get(key) ?? [];
      list.push(resolve);
      this.#waiters.set(key, list);
    });
  }
}

/**
 * Runs credential checks under the limits. Checks of one (user, address) pair run one after
 * another in this process, and checks in flight count against the address budget and the user
 * ceiling, so a burst or a batch of guesses reaches the password check no more often than the
 * limits allow; a check that would pass the limits only because others are in flight waits for
 * them instead of being refused, so concurrent right passwords all get through.
 *
 * @example const ok = await throttle.check(userKey, ip, () => verifyPassword(password, stored))
 */
export class CredentialThrottle {
  readonly #store: Store;
  readonly #limits: ThrottleLimits;
  readonly #pairs = new Map<string, Promise<unknown>>();
  readonly #inFlight = new InFlight();

  constructor(store: Store, limits: ThrottleLimits) {
    this.#store = store;
    this.#limits = limits;
  }

  /**
   * Runs `verify` unless a limit is reached (TooManyRequests with `retryAfter`), records a failure
   * when it answers false, and ends the pair's run of failures when it answers true.
   */
  check(userKey: string, clientIp: string, verify: () => Promise<boolean>): Promise<boolean> {
    const ip = addressKeyOf(clientIp);
    const pair = `pair:${userKey}\n${ip}`;
    const previous = this.#pairs.get(pair) ?? Promise.resolve();
    const run = previous.then(
      () => this.#run(pair, `ip:${ip}`, `user:${userKey}`, verify),
      () => this.#run(pair, `ip:${ip}`, `user:${userKey}`, verify),
    );
    const tail = run.catch(() => {});
    this.#pairs.set(pair, tail);
    // The map holds a pair only while checks of it are queued.
    void tail.then(() => {
      if (this.#pairs.get(pair) === tail) this.#pairs.delete(pair);
    });
    return run;
  }

  async #run(pair: string, address: string, user: string, verify: () => Promise<boolean>): Promise<boolean> {
    const { window, perPair, perAddress, perUser } = this.#limits;
    let now: number;
    let pairState: ThrottleState;
    for (;;) {
      now = nowSeconds();
      const [p, a, u] = await Promise.all([pair, address, user].map((k) => this.#store.countFailures(k, now, window)));
      pairState = p!;
      const over = [
        [p!, perPair, 0],
        [a!, perAddress, this.#inFlight.count(address)],
        [u!, perUser, this.#inFlight.count(user)],
      ] as const;
      const reached = over.find(([state, limit]) => state.count >= limit);
      if (reached !== undefined) throw tooMany(reached[0].resetAt - now);
      const crowded = over.findIndex(([state, limit, flying]) => state.count + flying >= limit);
      if (crowded === -1) break;
      await this.#inFlight.settled(crowded === 1 ? address : user);
    }
    this.#inFlight.add(address);
    this.#inFlight.add(user);
    let ok: boolean;
    try {
      ok = await verify();
    } finally {
      this.#inFlight.done(address);
      this.#inFlight.done(user);
    }
    if (ok) {
      if (pairState.count > 0) await this.#store.resetFailures(pair);
    } else {
      const at = nowSeconds();
      await Promise.all([pair, address, user].map((k) => this.#store.recordFailure(k, at, window)));
    }
    return ok;
  }
}

function tooMany(retryAfter: number): ApiError {
  const seconds = Math.max(1, retryAfter);
  return new ApiError('TooManyRequests', `Too many failed attempts; try again in ${seconds} s`, { retryAfter: seconds });
}
