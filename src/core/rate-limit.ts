/**
 * The general rate limiter: every call counts against its caller (the user of a signed request,
 * the client address of an anonymous one), and a method may add its own rule
 * (`export const rateLimit = { points, duration }`). On MySQL/MariaDB and MongoDB the counters are
 * in the database, so the limit holds across instances, and for a signed call's first attempt the
 * count rides on its nonce's claim, in the same round trip (MySQL: one upsert of ours,
 * MySqlCounter, in the claim's transaction; MongoDB: MongoCounter's statements, in the claim's
 * command). In this process (the embedded store) they are a fixed window of our own, counted
 * without a promise: rate-limiter-flexible's in-memory limiter answers every call through a
 * promise and a timer per key, about 5 us of a 150 us public call here, for a count that is one
 * Map lookup.
 * On a MongoDB-compatible server whose `$inc` loses counts under concurrency (FerretDB 1.x: 500
 * concurrent consumes stored 48), a shared counter would let most calls through uncounted; the
 * limiter then counts in this process and says so at start-up.
 */
import type { Logger } from 'pino';
import { hash } from 'node:crypto';
import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { ApiError } from './errors.ts';
import type { JoinedAnswer, JoinedWrite, Store, WindowCount } from '../store/types.ts';
import type { CountedClaim } from './auth.ts';
import { addressKeyOf } from './address.ts';
import { ExpiryQueue } from './expiry-queue.ts';
import { answerWithin } from './clock.ts';

/** A method's own rule: `points` calls per `duration` seconds, per caller or per client address. */
export interface RateRule {
  readonly points: number;
  readonly duration: number;
  /** `caller` (the default): per user when signed, per address when not; `address`: always per address. */
  readonly per?: 'caller' | 'address';
}

export interface RateLimitSettings {
  /** Calls per window per client address for anonymous calls; 0: no limit. */
  address: number;
  /** Calls per window per user for signed calls; 0: no limit. */
  user: number;
  /** Seconds of the window. */
  window: number;
}

/** Who a call counts against. */
export interface Caller {
  readonly ip: string;
  /** The matched user_id of a signed call; null for an anonymous one. */
  readonly userKey: string | null;
}

const TABLE = 'simpleapi_rate_limits';
/** A database counter slower than this lets the call through on this process's own count. */
const DB_TIMEOUT_MS = 1000;

/** Checks a rule written in a method file; a message naming what is wrong, or null. */
export function ruleProblem(value: unknown): string | null {
  if (value === null || typeof value !== 'object') return 'rateLimit must be an object { points, duration, per? }';
  const r = value as Record<string, unknown>;
  if (!Number.isInteger(r.points) || (r.points as number) < 1) return 'rateLimit.points must be a positive integer';
  if (!Number.isInteger(r.duration) || (r.duration as number) < 1) return 'rateLimit.duration must be a positive integer (seconds)';
  if (r.per !== undefined && r.per !== 'caller' && r.per !== 'address') return "rateLimit.per must be 'caller' or 'address'";
  return null;
}

/** Counts calls against one rule; an error when the key is past it. */
interface Counter {
  take(key: string, what: string): ApiError | null | Promise<ApiError | null>;
}

type Factory = (prefix: string, points: number, duration: number) => Counter;

/** Keys a process counter holds at most (about 100 bytes each); past it the oldest window is forgotten. */
const MAX_PROCESS_KEYS = 1_000_000;

/**
 * A fixed window per key in this process, as rate-limiter-flexible's memory limiter counted: the
 * first call starts a window of `duration` seconds, and every call in it counts, refused ones too.
 * Windows are queued in the order they started, so the expired ones are at the queue's front.
 */
export class ProcessCounter implements Counter {
  readonly #windows = new Map<string, { count: number; resetAt: number }>();
  readonly #queue = new ExpiryQueue({
    size: () => this.#windows.size,
    entries: () => this.#ends(),
    expiryOf: (key) => this.#windows.get(key)?.resetAt,
    delete: (key) => this.#windows.delete(key),
  });
  readonly #durationMs: number;
  #calls = 0;

  constructor(
    readonly points: number,
    duration: number,
    readonly maxKeys = MAX_PROCESS_KEYS,
  ) {
    this.#durationMs = duration * 1000;
  }

  /** Keys held now (for tests). */
  get size(): number {
    return this.#windows.size;
  }

  take(key: string, what: string, now = Date.now()): ApiError | null {
    if ((++this.#calls & 1023) === 0) this.#sweep(now);
    let window = this.#windows.get(key);
    if (window === undefined || window.resetAt <= now) {
      this.#windows.delete(key);
      if (this.#windows.size >= this.maxKeys) this.#sweep(now, true);
      window = { count: 0, resetAt: now + this.#durationMs };
      this.#windows.set(key, window);
      this.#queue.push(key, window.resetAt);
    }
    window.count++;
    return window.count > this.points ? tooMany(window.resetAt - now, what) : null;
  }

  *#ends(): Generator<[string, number]> {
    for (const [key, window] of this.#windows) yield [key, window.resetAt];
  }

  /** Places in the queue (for tests: it stays within about three times `size`). */
  get queued(): number {
    return this.#queue.length;
  }

  /** Drops expired windows from the front; `room`: and the oldest live ones, to make room. */
  #sweep(now: number, room = false): void {
    const queue = this.#queue;
    // A key whose window was renewed left its place behind: dropFirst keeps the new window.
    while (queue.length > 0 && (queue.firstExpires <= now || (room && this.#windows.size >= this.maxKeys))) queue.dropFirst();
  }
}

const inThisProcess: Factory = (_prefix, points, duration) => new ProcessCounter(points, duration);

/**
 * A counter in a database: `statement` makes what counts one call under a key, `send` sends it
 * alone (a nonce's claim may carry it instead), `verdict` reads the answer. A database that
 * fails, or has not answered within DB_TIMEOUT_MS, leaves the call to this process's own count.
 */
abstract class DatabaseCounter<Statement, Answer> implements Counter {
  readonly #insurance: ProcessCounter;
  protected readonly durationMs: number;
  /**
   * Keys whose window is full, with when it ends (ms), where a counter knows that end before it
   * asks (endOf): a count never falls within a window, so until then a call is refused here, and
   * a flood from one client past its limit costs the database nothing. Cleared whole past
   * MAX_FULL_KEYS (expired entries stay until then), losing only the shortcut.
   */
  readonly #full = new Map<string, number>();

  constructor(
    readonly prefix: string,
    readonly points: number,
    duration: number,
  ) {
    this.durationMs = duration * 1000;
    this.#insurance = new ProcessCounter(points, duration);
  }

  abstract statement(key: string, now: number): Statement;
  protected abstract send(statement: Statement): Promise<Answer>;
  abstract verdict(statement: Statement, answer: Answer, what: string): ApiError | null | Promise<ApiError | null>;

  /** When the window `statement` counts in ends (ms), if known without asking the database. */
  protected endOf(_statement: Statement): number | null {
    return null;
  }

  async take(key: string, what: string): Promise<ApiError | null> {
    const now = Date.now();
    const fullUntil = this.#full.get(key);
    if (fullUntil !== undefined) {
      if (fullUntil > now) return tooMany(fullUntil - now, what);
      this.#full.delete(key);
    }
    const statement = this.statement(key, now);
    let answer: Answer;
    try {
      answer = await answerWithin(this.send(statement), DB_TIMEOUT_MS);
    } catch {
      return this.#insurance.take(key, what);
    }
    const refused = await this.verdict(statement, answer, what);
    const ends = refused === null ? null : this.endOf(statement);
    if (ends !== null) {
      if (this.#full.size >= MAX_FULL_KEYS) this.#full.clear();
      this.#full.set(key, ends);
    }
    return refused;
  }
}

/** Keys a database counter remembers as full at most (about 100 bytes each; up to 1 KB with a 254-character user id). */
const MAX_FULL_KEYS = 10_000;

/**
 * Where `key`'s fixed windows of `durationMs` start: counted from the epoch, each key shifted by a
 * hash of itself (FNV-1a), so that clients refused together are not all told to come back at the
 * same instant (a day's window would otherwise end for everyone at midnight UTC).
 *
 * @example windowOf('addr:192.0.2.1', 1_800_000_000_000, 60_000) // { index: 30000000, endsAt: 1800000002769 }: its window ends 2.769 s past the minute
 */
export function windowOf(key: string, now: number, durationMs: number): { index: number; endsAt: number } {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  const offset = (h >>> 0) % durationMs;
  const index = Math.floor((now + offset) / durationMs);
  return { index, endsAt: (index + 1) * durationMs - offset };
}

/** A store that counts calls in windows (MongoStore). */
type CountingStore = Store & Required<Pick<Store, 'countInWindow' | 'rememberNonceCounted'>>;

/** Seconds a MongoDB window's document outlives its window, so none is removed between its two statements. */
const WINDOW_MARGIN = 60;

/** A call's window in a MongoCounter: what the store counts in, and when the window ends. */
interface MongoWindow {
  readonly count: WindowCount;
  readonly now: number;
  readonly endsAt: number;
}

/**
 * A fixed window per key in MongoDB, a document in the store's nonces collection
 * (MongoStore.countInWindow), so that a signed call's count can go in its nonce's claim's
 * command (rememberNonceCounted): two round trips before the answer, not three. Not
 * rate-limiter-flexible's RateLimiterMongo: its count is a findAndModify of its own collection,
 * a command no claim can share. Windows are fixed to the clock (windowOf), so a window's `_id`
 * names it and nothing resets a count. A call is counted only while its window has room:
 * counting the refused ones too would need the count back, which only a findAndModify, a command
 * of its own, gives.
 */
class MongoCounter extends DatabaseCounter<MongoWindow, boolean> {
  constructor(
    readonly store: CountingStore,
    prefix: string,
    points: number,
    duration: number,
  ) {
    super(prefix, points, duration);
  }

  /** The window `key` is counted in at `now` (ms). */
  statement(key: string, now: number): MongoWindow {
    const name = `${this.prefix}:${key}`;
    const { index, endsAt } = windowOf(name, now, this.durationMs);
    return { count: { id: `${name}\n${index}`, points: this.points, expires: Math.ceil(endsAt / 1000) + WINDOW_MARGIN }, now, endsAt };
  }

  protected send(window: MongoWindow): Promise<boolean> {
    return this.store.countInWindow(window.count);
  }

  protected override endOf(window: MongoWindow): number {
    return window.endsAt;
  }

  /** What the store's answer means: null when the call was counted, else TooManyRequests. */
  verdict(window: MongoWindow, counted: boolean, what: string): ApiError | null {
    return counted ? null : tooMany(window.endsAt - window.now, what);
  }
}

/**
 * Does the store count exactly under concurrent calls? It is sent what the counters send
 * (countInWindow): `n` calls at once into a new window of `n` must all be counted, and one more
 * refused. FerretDB 1.x rewrites a document whole, so concurrent increments overwrite each
 * other (the one more then finds room), and concurrent upserts of one new document fail with a
 * duplicate key (which a real MongoDB retries as an update). The probe's window expires within
 * seconds, and the TTL index (or the sweep) removes it.
 */
async function countsExactly(store: CountingStore): Promise<boolean> {
  const n = 24;
  // Random: two limiters probing at once must not count into one window.
  const count = { id: `probe:${process.pid}:${crypto.randomUUID()}`, points: n, expires: Math.floor(Date.now() / 1000) + 10 };
  try {
    // Answered at the first failure, and within PROBE_TIMEOUT_MS: a server may leave some of a
    // burst unanswered (this very burst used up FerretDB 1.24's PostgreSQL connections and hung
    // it, which is why FerretDB 1.x is no longer probed), and start-up must not wait on them.
    const counted = await answerWithin(Promise.all(Array.from({ length: n }, () => store.countInWindow(count))), PROBE_TIMEOUT_MS);
    return counted.every((c) => c) && !(await answerWithin(store.countInWindow(count), PROBE_TIMEOUT_MS));
  } catch {
    return false;
  }
}

/** How long the start-up probe waits for the database before counting in the process. */
const PROBE_TIMEOUT_MS = 5000;

/**
 * A fixed window per key in a MySQL/MariaDB table, counted by one statement: the upsert resets an
 * expired window or adds one, and hands the new count back through LAST_INSERT_ID(expr), which
 * the OK packet carries (an insert, the window's first call, reports none: its count is 1).
 * InnoDB's row lock makes concurrent counts exact. Not rate-limiter-flexible's RateLimiterMySQL:
 * it counts in a transaction of four statements (BEGIN, upsert, SELECT, COMMIT), four round trips
 * on every call; the database counted 7 statements per v2-signed call, 4 of them the limiter's
 * (bench/mysql-round-trips.ts). A row's key is the SHA-256 (hex) of the counter's key: the
 * table's column compares case- and accent-insensitively in 255 three-byte characters, where
 * `user:jose` and `user:José` would share a count and a 512-character user id would not fit.
 * A refused call reads its window's end for Retry-After (a second trip, for refused calls only).
 * The wait for a pool connection counts in DB_TIMEOUT_MS; a late statement still counts.
 */
class MySqlCounter extends DatabaseCounter<CountingUpsert, JoinedAnswer> {
  constructor(
    readonly sql: Pool,
    prefix: string,
    points: number,
    duration: number,
  ) {
    super(prefix, points, duration);
  }

  /** The statement that counts one call under `key` (sent by take, or with a nonce's claim). */
  statement(key: string, now: number): CountingUpsert {
    const row = hash('sha256', `${this.prefix}:${key}`, 'hex');
    const ends = now + this.durationMs;
    return {
      sql: `INSERT INTO \`${TABLE}\` (\`key\`, \`points\`, \`expire\`) VALUES (?, 1, ?) ON DUPLICATE KEY UPDATE \`points\` = LAST_INSERT_ID(IF(\`expire\` <= ?, 1, \`points\` + 1)), \`expire\` = IF(\`expire\` <= ?, ?, \`expire\`)`,
      values: [row, ends, now, now, ends],
      row,
      now,
    };
  }

  protected async send(upsert: CountingUpsert): Promise<JoinedAnswer> {
    const [counted] = await this.sql.query<ResultSetHeader>(upsert.sql, upsert.values);
    return counted;
  }

  /** What the upsert's answer means: null when the call may run, else TooManyRequests. */
  async verdict(upsert: CountingUpsert, counted: JoinedAnswer, what: string): Promise<ApiError | null> {
    const count = counted.affectedRows === 1 ? 1 : counted.insertId;
    if (count <= this.points) return null;
    const ends = upsert.now + this.durationMs;
    try {
      const [window] = await answerWithin(this.sql.query<RowDataPacket[]>(`SELECT \`expire\` FROM \`${TABLE}\` WHERE \`key\` = ?`, [upsert.row]), DB_TIMEOUT_MS);
      return tooMany(Math.max(0, Number(window[0]?.expire ?? ends) - upsert.now), what);
    } catch {
      // The count is past the limit; only Retry-After is unknown: a whole window is the most it can be.
      return tooMany(this.durationMs, what);
    }
  }
}

/** A MySqlCounter's counting statement, with what its answer is read against. */
interface CountingUpsert extends JoinedWrite {
  readonly row: string;
  readonly now: number;
}

/** How often expired rows of the MySQL counters' table are deleted, and how many per statement. */
const MYSQL_SWEEP_MS = 5 * 60 * 1000;
const MYSQL_SWEEP_BATCH = 10_000;

/**
 * Deletes every expired counter row, a batch at a time (a short lock each), by the `expire`
 * index. Returns how many went.
 *
 * @example await sweepMySqlCounters(pool, Date.now())
 */
export async function sweepMySqlCounters(sql: Pool, now: number, batch = MYSQL_SWEEP_BATCH): Promise<number> {
  let removed = 0;
  for (;;) {
    const [result] = await sql.query<ResultSetHeader>(`DELETE FROM \`${TABLE}\` WHERE \`expire\` < ? LIMIT ?`, [now, batch]);
    removed += result.affectedRows;
    if (result.affectedRows < batch) return removed;
  }
}

/** Picks where counters live for this store; logs the choice when it is not the obvious one. */
async function factoryFor(store: Store, log: Logger): Promise<{ make: Factory; where: string }> {
  const { db, sql } = store.forMethods;
  if (sql !== null) {
    await sql.query(`CREATE TABLE IF NOT EXISTS \`${TABLE}\` (\`key\` VARCHAR(255) CHARACTER SET utf8 NOT NULL, \`points\` INT(9) NOT NULL DEFAULT 0, \`expire\` BIGINT UNSIGNED, PRIMARY KEY (\`key\`), KEY \`expire\` (\`expire\`)) ENGINE = INNODB`);
    // A table made by an earlier version (rate-limiter-flexible's) has no index on expire.
    await sql.query(`ALTER TABLE \`${TABLE}\` ADD INDEX \`expire\` (\`expire\`)`).catch((err: { code?: string }) => {
      if (err.code !== 'ER_DUP_KEYNAME') throw err;
    });
    // Expired rows are reset in place by the upsert; the sweep removes the ones nobody calls again.
    const sweep = setInterval(() => {
      sweepMySqlCounters(sql, Date.now()).catch((err: Error) => {
        if (/pool is closed/i.test(err.message)) clearInterval(sweep); // the store was closed
        else log.warn({ err }, 'expired rate-limit rows could not be removed');
      });
    }, MYSQL_SWEEP_MS);
    sweep.unref();
    const make: Factory = (keyPrefix, points, duration) => new MySqlCounter(sql, keyPrefix, points, duration);
    return { make, where: 'the database (MySQL)' };
  }
  if (db !== null) {
    if (store.countInWindow === undefined || store.rememberNonceCounted === undefined) throw new Error(`the ${store.description} store gives MongoDB to methods but counts no calls`);
    const counting = store as CountingStore;
    // Not probed where the server is known to lose updates: FerretDB 1.x can be left answering
    // nothing by the probe's burst (see FERRETDB_1_POOL).
    const lossy = store.losesRacingUpdates ?? ((await countsExactly(counting)) ? undefined : 'this MongoDB-compatible server');
    if (lossy !== undefined) {
      log.warn(`rate limits: ${lossy} loses concurrent $inc updates, so calls are counted in each process: with N instances a client gets up to N times the limit`);
      return { make: inThisProcess, where: 'this process (the database\'s $inc is not atomic)' };
    }
    const make: Factory = (keyPrefix, points, duration) => new MongoCounter(counting, keyPrefix, points, duration);
    return { make, where: 'the database (MongoDB)' };
  }
  return { make: inThisProcess, where: 'this process' };
}

/** A call's count, judged: TooManyRequests, or null when the call may run. */
export type Verdict = ApiError | null | Promise<ApiError | null>;

const BY_USER = 'by this user';

/** The nonce's claim with the user's count in it, where the store can join them; else undefined. */
function joinedClaim(user: Counter | null, store: Store | undefined): CountedClaim | undefined {
  if (store === undefined) return undefined;
  if (user instanceof MySqlCounter && store.rememberNonceWith !== undefined && store.forMethods.sql === user.sql) {
    return async (session, nonce, expires, now, claim) => {
      const upsert = user.statement(session.userKey, Date.now());
      const { fresh, joined } = await store.rememberNonceWith!(session.sessionId, nonce, expires, now, claim, upsert);
      return joined === null ? { fresh } : { fresh, verdict: user.verdict(upsert, joined, BY_USER) };
    };
  }
  if (user instanceof MongoCounter && user.store === store) {
    return async (session, nonce, expires, now, claim) => {
      const window = user.statement(session.userKey, Date.now());
      const { fresh, counted } = await user.store.rememberNonceCounted(session.sessionId, nonce, expires, now, claim, window.count);
      return fresh ? { fresh, verdict: user.verdict(window, counted, BY_USER) } : { fresh };
    };
  }
  return undefined;
}

/** The TooManyRequests a refused call gets. */
function tooMany(msBeforeNext: number, what: string): ApiError {
  const seconds = Math.max(1, Math.ceil(msBeforeNext / 1000));
  return new ApiError('TooManyRequests', `Too many calls ${what}; try again in ${seconds} s`, { retryAfter: seconds });
}

/**
 * @example const limits = await RateLimits.create(store, { address: 6000, user: 6000, window: 60 }, log); const error = await limits.check('echo', undefined, caller)
 */
export class RateLimits {
  readonly #make: Factory;
  readonly #address: Counter | null;
  readonly #user: Counter | null;
  readonly #perMethod = new Map<string, { counter: Counter; rule: RateRule }>();
  /** Where counters live, for the start-up log. */
  readonly where: string;

  /**
   * Claims a signed call's nonce and counts the call against its user in one round trip, where
   * the store and the user's counter can join them (MySQL, MongoDB); absent elsewhere, and the
   * dispatcher counts the call itself, after the claim. The count then comes to `check` with the
   * call. Either way the count is taken only once the nonce is known fresh. Sending it beside the
   * claim instead, as a command of its own (tried on MongoDB), let a replay spend its user's
   * calls: a flood of replays of one captured request, each answered at once while its count and
   * refund waited on the database, kept the user refused (a red-team run: 429s at 1 of a limit
   * of 10; 9,904 updates queued behind 40 s of replays).
   */
  readonly countedClaim: CountedClaim | undefined;

  private constructor(make: Factory, where: string, settings: RateLimitSettings, store?: Store) {
    this.#make = make;
    this.where = where;
    this.#address = settings.address > 0 ? make('addr', settings.address, settings.window) : null;
    this.#user = settings.user > 0 ? make('user', settings.user, settings.window) : null;
    this.countedClaim = joinedClaim(this.#user, store);
  }

  static async create(store: Store, settings: RateLimitSettings, log: Logger): Promise<RateLimits> {
    const { make, where } = await factoryFor(store, log);
    return new RateLimits(make, where, settings, store);
  }

  /** A limiter that counts in this process only, for tools and tests without a store. */
  static inProcess(settings: RateLimitSettings): RateLimits {
    return new RateLimits(inThisProcess, 'this process', settings);
  }

  /**
   * Counts one call; TooManyRequests when the caller or the method's own rule is past its limit,
   * null when it may run. A promise only when a database counts. `verdict`: the caller's general
   * count, already taken with the request's nonce (countedClaim).
   */
  check(method: string, rule: RateRule | undefined, caller: Caller, verdict?: Verdict): Verdict {
    const general = caller.userKey === null ? this.#address : this.#user;
    const first = verdict !== undefined ? verdict : general === null ? null : general.take(caller.userKey ?? addressKeyOf(caller.ip), caller.userKey === null ? 'from this address' : BY_USER);
    if (rule === undefined) return first;
    if (first instanceof Promise) return first.then((error) => error ?? this.#takeForMethod(method, rule, caller));
    return first ?? this.#takeForMethod(method, rule, caller);
  }

  #takeForMethod(method: string, rule: RateRule, caller: Caller): ApiError | null | Promise<ApiError | null> {
    const key = rule.per === 'address' || caller.userKey === null ? `a:${addressKeyOf(caller.ip)}` : `u:${caller.userKey}`;
    return this.#forMethod(method, rule).take(key, `to ${method}`);
  }

  #forMethod(method: string, rule: RateRule): Counter {
    let entry = this.#perMethod.get(method);
    // A reload may change a method's rule: a new rule starts new counters.
    if (entry === undefined || entry.rule.points !== rule.points || entry.rule.duration !== rule.duration) {
      entry = { counter: this.#make(`m:${method}:${rule.points}:${rule.duration}`, rule.points, rule.duration), rule };
      this.#perMethod.set(method, entry);
    }
    return entry.counter;
  }
}
