/**
 * The general rate limiter: every call counts against its caller (the user of a signed request,
 * the client address of an anonymous one), and a method may add its own rule
 * (`export const rateLimit = { points, duration }`). Counters are rate-limiter-flexible's: in this
 * process on the embedded store, in the database on MySQL/MariaDB and MongoDB, so the limit holds
 * across instances. On a MongoDB-compatible server whose `$inc` loses counts under concurrency
 * (FerretDB 1.x: 500 concurrent consumes stored 48), a shared counter would let most calls through
 * uncounted; the limiter then counts in this process and says so at start-up.
 */
import type { Db } from 'mongodb';
import type { Logger } from 'pino';
import { RateLimiterMemory, RateLimiterMongo, RateLimiterMySQL, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { ApiError } from './errors.ts';
import type { Store } from '../store/types.ts';

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

type Factory = (prefix: string, points: number, duration: number) => RateLimiterAbstract;

/**
 * Does `$inc` with upsert count every one of concurrent increments? FerretDB 1.x rewrites a
 * document whole, so concurrent increments overwrite each other.
 */
async function incIsAtomic(db: Db): Promise<boolean> {
  const probe = db.collection<{ _id: string; n: number }>(TABLE);
  const id = `probe:${process.pid}:${Date.now()}`;
  const n = 24;
  try {
    await Promise.all(Array.from({ length: n }, () => probe.findOneAndUpdate({ _id: id }, { $inc: { n: 1 } }, { upsert: true })));
    const doc = await probe.findOne({ _id: id });
    return doc?.n === n;
  } catch {
    // Concurrent upserts of a new _id may conflict on some servers: that is not atomic either.
    return false;
  } finally {
    await probe.deleteOne({ _id: id }).catch(() => {});
  }
}

/** Picks where counters live for this store; logs the choice when it is not the obvious one. */
async function factoryFor(store: Store, log: Logger): Promise<{ make: Factory; where: string }> {
  const memory: Factory = (keyPrefix, points, duration) => new RateLimiterMemory({ keyPrefix, points, duration });
  const { db, sql } = store.forMethods;
  if (sql !== null) {
    const callbackPool = (sql as unknown as { pool: unknown }).pool as { config: { connectionConfig: { database: string } } };
    const dbName = callbackPool.config.connectionConfig.database;
    await sql.query(`CREATE TABLE IF NOT EXISTS \`${TABLE}\` (\`key\` VARCHAR(255) CHARACTER SET utf8 NOT NULL, \`points\` INT(9) NOT NULL DEFAULT 0, \`expire\` BIGINT UNSIGNED, PRIMARY KEY (\`key\`)) ENGINE = INNODB`);
    const make: Factory = (keyPrefix, points, duration) =>
      new RateLimiterMySQL({
        storeClient: callbackPool,
        storeType: 'pool',
        dbName,
        tableName: TABLE,
        tableCreated: true,
        // Expired rows are reset in place by the upsert; the library's sweep removes the rest.
        clearExpiredByTimeout: true,
        keyPrefix,
        points,
        duration,
        timeoutMs: DB_TIMEOUT_MS,
        insuranceLimiter: memory(keyPrefix, points, duration),
      } as ConstructorParameters<typeof RateLimiterMySQL>[0]);
    return { make, where: 'the database (MySQL)' };
  }
  if (db !== null) {
    if (!(await incIsAtomic(db))) {
      log.warn('rate limits: this MongoDB-compatible server loses concurrent $inc updates (FerretDB 1.x does), so calls are counted in each process: with N instances a client gets up to N times the limit');
      return { make: memory, where: 'this process (the database\'s $inc is not atomic)' };
    }
    await db.collection(TABLE).createIndex({ key: 1 }, { unique: true });
    await db.collection(TABLE).createIndex({ expire: -1 }, { expireAfterSeconds: 0 }).catch(() => {});
    const make: Factory = (keyPrefix, points, duration) =>
      new RateLimiterMongo({
        storeClient: db,
        tableName: TABLE,
        disableIndexesCreation: true,
        keyPrefix,
        points,
        duration,
        insuranceLimiter: memory(keyPrefix, points, duration),
      } as ConstructorParameters<typeof RateLimiterMongo>[0]);
    return { make, where: 'the database (MongoDB)' };
  }
  return { make: memory, where: 'this process' };
}

/** The TooManyRequests a refused call gets. */
function refused(res: RateLimiterRes, what: string): ApiError {
  const seconds = Math.max(1, Math.ceil(res.msBeforeNext / 1000));
  return new ApiError('TooManyRequests', `Too many calls ${what}; try again in ${seconds} s`, { retryAfter: seconds });
}

/** One point off `key`; a counter that failed past its insurance lets the call through. */
async function attempt(limiter: RateLimiterAbstract, key: string, what: string): Promise<ApiError | null> {
  try {
    await limiter.consume(key);
    return null;
  } catch (thrown) {
    return thrown instanceof RateLimiterRes ? refused(thrown, what) : null;
  }
}

/**
 * @example const limits = await RateLimits.create(store, { address: 6000, user: 6000, window: 60 }, log); const error = await limits.check('echo', undefined, caller)
 */
export class RateLimits {
  readonly #make: Factory;
  readonly #address: RateLimiterAbstract | null;
  readonly #user: RateLimiterAbstract | null;
  readonly #perMethod = new Map<string, { limiter: RateLimiterAbstract; rule: RateRule }>();
  /** Where counters live, for the start-up log. */
  readonly where: string;

  private constructor(make: Factory, where: string, settings: RateLimitSettings) {
    this.#make = make;
    this.where = where;
    this.#address = settings.address > 0 ? make('addr', settings.address, settings.window) : null;
    this.#user = settings.user > 0 ? make('user', settings.user, settings.window) : null;
  }

  static async create(store: Store, settings: RateLimitSettings, log: Logger): Promise<RateLimits> {
    const { make, where } = await factoryFor(store, log);
    return new RateLimits(make, where, settings);
  }

  /** A limiter that counts in this process only, for tools and tests without a store. */
  static inProcess(settings: RateLimitSettings): RateLimits {
    return new RateLimits((keyPrefix, points, duration) => new RateLimiterMemory({ keyPrefix, points, duration }), 'this process', settings);
  }

  /**
   * Counts one call; TooManyRequests when the caller or the method's own rule is past its limit.
   * Null at once, with no promise, when no limit applies to the call.
   */
  check(method: string, rule: RateRule | undefined, caller: Caller): Promise<ApiError | null> | null {
    const general = caller.userKey === null ? this.#address : this.#user;
    if (general === null && rule === undefined) return null;
    return this.#count(general, method, rule, caller);
  }

  async #count(general: RateLimiterAbstract | null, method: string, rule: RateRule | undefined, caller: Caller): Promise<ApiError | null> {
    if (general !== null) {
      const error = await attempt(general, caller.userKey ?? caller.ip, caller.userKey === null ? 'from this address' : 'by this user');
      if (error !== null) return error;
    }
    if (rule === undefined) return null;
    const key = rule.per === 'address' || caller.userKey === null ? `a:${caller.ip}` : `u:${caller.userKey}`;
    return attempt(this.#forMethod(method, rule), key, `to ${method}`);
  }

  #forMethod(method: string, rule: RateRule): RateLimiterAbstract {
    let entry = this.#perMethod.get(method);
    // A reload may change a method's rule: a new rule starts new counters.
    if (entry === undefined || entry.rule.points !== rule.points || entry.rule.duration !== rule.duration) {
      entry = { limiter: this.#make(`m:${method}:${rule.points}:${rule.duration}`, rule.points, rule.duration), rule };
      this.#perMethod.set(method, entry);
    }
    return entry.limiter;
  }
}
