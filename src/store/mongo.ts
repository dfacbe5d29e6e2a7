/**
 * The MongoDB store (official driver): what lets many instances serve the same users. A signed
 * call costs two round trips before its answer: the session read and the nonce's claim (which
 * also says the call is running, for §6 retries, and, where the rate limiter counts here, counts
 * the call: rememberNonceCounted); its outcome is written after the answer. The sliding-expiry
 * write is skipped unless it would move expiry by `session.touchFraction`.
 */
import { Binary, MongoBulkWriteError, MongoClient, MongoServerError, type AnyBulkWriteOperation, type BulkWriteResult, type Collection, type Db, type Document } from 'mongodb';
import { ConnectionString } from 'mongodb-connection-string-url';
import type { Logger } from 'pino';
import { ApiError } from '../core/errors.ts';
import { mapDriverError } from './mongo-errors.ts';
import { redactUrl } from './redact.ts';
import { HealthPing } from './health-ping.ts';

export { mapDriverError };
import { throttleWindow, type AccountRecord, type CallClaim, type CallRecord, type KeptOutcome, type MethodResources, type PasswordHash, type SessionRecord, type Store, type ThrottleState, type WindowCount } from './types.ts';
import type { JobExecutor, JobRunner, JobSettings } from '../core/jobs.ts';
import { answerWithin, NoAnswerInTime, nowSeconds } from '../core/clock.ts';

interface AccountDoc {
  _id: string;
  userId: string;
  password: PasswordHash;
  created: number;
}
interface SessionDoc {
  _id: string;
  userKey: string;
  userId: string;
  key: Binary;
  expires: number;
  expiresAt: Date;
  state: Record<string, unknown>;
  version: number;
}
/**
 * A seen nonce. A signed call's also holds its claim (`m`, its MAC; `rt`, a retry's own) and,
 * once it ended, its answer `o` (null: not kept); written with the nonce, so the claim costs no
 * round trip of its own.
 */
interface NonceDoc {
  _id: string;
  expires: number;
  expiresAt: Date;
  m?: string;
  rt?: boolean;
  o?: { s: number; l?: string; ra?: number; b: string } | null;
}
/**
 * The calls counted in one rate-limit window of one key (WindowCount), kept in the nonces'
 * collection so that a call's count and its nonce's claim go in one command. `_id` starts with
 * `count` and a newline, which no nonce's `_id` (a session id, a UUID, first) can.
 */
interface CountDoc {
  _id: string;
  c: number;
  expires: number;
  expiresAt: Date;
}
/** Either kind of document in the nonces' collection, for the commands that write both. */
type NonceOrCount = { _id: string } & Document;
/**
 * The n-th failure of a throttle key in window `w`: `_id` is `key \n w \n n`, unique, so of
 * concurrent failures each takes its own n, and the count is the highest n (one index lookup).
 */
interface FailureDoc {
  _id: string;
  key: string;
  w: number;
  n: number;
  expiresAt: Date;
}
/** A claim on the next version of a session's state: see saveSessionState. */
interface ClaimDoc {
  _id: string;
  created: number;
  expiresAt: Date;
}

export interface MongoStoreOptions {
  dbName: string;
  /** Seconds to wait for the database at start-up; 0 waits forever. */
  connectTimeout: number;
  /** Seconds a nonce document must at least live. */
  nonceTtl: number;
  log: Logger;
  /**
   * 'ask' (the default) creates TTL indexes and falls back to sweeping where the server refuses
   * them (FerretDB 1.x). 'assume' skips asking and takes the TTL path, as on a real MongoDB whose
   * TTL monitor has not run yet: the tests use it to cover that path on a server that refuses them.
   */
  ttlIndexes?: 'ask' | 'assume';
  /**
   * A stand-in around the database the store and methods use; for tests only (test/helpers/mongo.ts:
   * FerretDB with MongoDB's document-level atomic updates stood in for).
   */
  around?: (db: Db) => Db;
  /**
   * 'ask' (the default) takes a server that calls itself FerretDB 1.x for one that loses
   * concurrent updates of a document (losesRacingUpdates). 'assume' does not: the tests use it
   * with `around`, whose stand-in makes FerretDB's updates atomic.
   */
  atomicUpdates?: 'ask' | 'assume';
  /** Processes of this instance with a store of their own (--workers): they share FERRETDB_1_POOL. */
  processes?: number;
}

/**
 * The most commands one instance has in flight on FerretDB 1.x, its workers together, unless
 * db.url sets maxPoolSize. FerretDB 1.24 keeps a PostgreSQL connection open for each update
 * statement's read until the command ends and takes one more to write, from a pool of 50
 * (pool_max_conns) for all its clients: a command of n statements can hold n + 1. Measured here:
 * 3 clients with 150 single-statement updates at once took every connection, each command
 * waiting for one more, and FerretDB answered nothing again, even after the clients had gone;
 * with at most 8 each, all went through. 8 leaves room for three instances; the store sends no
 * command of more than one statement there (the counts that need them stay in the process).
 */
export const FERRETDB_1_POOL = 8;

/**
 * FerretDB before 2.0, by its own buildInfo field, as `FerretDB v1.24.0`; else null. A version
 * that does not parse is taken for one before 2.0 too: only 2.0 and later store documents in a
 * way that keeps an update of one atomic.
 */
function ferretDbBefore2(buildInfo: Document): string | null {
  const version = buildInfo.ferretdbVersion;
  if (version === undefined) return null;
  const major = /^v?(\d+)\./.exec(String(version))?.[1];
  return major === undefined || Number(major) < 2 ? `FerretDB ${String(version)}` : null;
}

/** Whether db.url sets maxPoolSize, its key read as the driver reads it (any case, percent-encoded). */
function setsPoolSize(url: string): boolean {
  return [...new ConnectionString(url).searchParams.keys()].some((key) => key.toLowerCase() === 'maxpoolsize');
}

/** Collection names, prefixed so they do not clash with methods' own collections in `ctx.db`. */
export const COLLECTIONS = {
  accounts: 'simpleapi_accounts',
  sessions: 'simpleapi_sessions',
  nonces: 'simpleapi_nonces',
  /** Failure counters (the older `simpleapi_login_failures`, one document per failure, is no longer read). */
  throttle: 'simpleapi_throttle',
  claims: 'simpleapi_state_claims',
} as const;

/** Seconds after which an unfinished state-save claim (its process died mid-save) is abandoned. */
const STALE_CLAIM = 30;


const isDuplicateKey = (err: unknown) => err instanceof MongoServerError && err.code === 11000;
const toDate = (seconds: number) => new Date(seconds * 1000);

export class MongoStore implements Store {
  readonly shared = true;
  readonly db: Db;
  readonly forMethods: MethodResources;
  readonly description: string;
  readonly #client: MongoClient;
  readonly #options: MongoStoreOptions;
  readonly #accounts: Collection<AccountDoc>;
  readonly #sessions: Collection<SessionDoc>;
  readonly #nonces: Collection<NonceDoc>;
  /** The nonces' collection again, for the rate-limit windows counted in it (CountDoc). */
  readonly #counts: Collection<CountDoc>;
  /** And once more, for the commands that hold both kinds of document. */
  readonly #noncesAndCounts: Collection<NonceOrCount>;
  readonly #throttle: Collection<FailureDoc>;
  readonly #claims: Collection<ClaimDoc>;
  /** False when the server refused TTL indexes: `sweep` then removes expired documents. */
  #ttlIndexes = true;
  readonly #health = new HealthPing(() => this.db.command({ ping: 1 }));

  /** Set where the server is known to lose concurrent updates of one document: its name. */
  readonly losesRacingUpdates: string | undefined;

  private constructor(client: MongoClient, options: MongoStoreOptions, server: string | null) {
    this.#client = client;
    this.#options = options;
    this.losesRacingUpdates = server === null || options.atomicUpdates === 'assume' ? undefined : server;
    this.db = options.around === undefined ? client.db(options.dbName) : options.around(client.db(options.dbName));
    this.forMethods = { db: this.db, sql: null };
    this.description = 'mongodb';
    this.#accounts = this.db.collection(COLLECTIONS.accounts);
    this.#sessions = this.db.collection(COLLECTIONS.sessions);
    this.#nonces = this.db.collection(COLLECTIONS.nonces);
    this.#counts = this.db.collection(COLLECTIONS.nonces);
    this.#noncesAndCounts = this.db.collection(COLLECTIONS.nonces);
    this.#throttle = this.db.collection(COLLECTIONS.throttle);
    this.#claims = this.db.collection(COLLECTIONS.claims);
  }

  /**
   * Connects, retrying until the database answers or `connectTimeout` seconds pass.
   *
   * @example const store = await MongoStore.connect('mongodb://127.0.0.1:27017', { dbName: 'api', connectTimeout: 10, nonceTtl: 601, log })
   */
  static async connect(url: string, options: MongoStoreOptions): Promise<MongoStore> {
    // A short server-selection timeout: during an outage a request gets its 503 in about 2 s
    // instead of the driver's default 30 s.
    const open = (maxPoolSize?: number) =>
      new MongoClient(url, { serverSelectionTimeoutMS: 2000, connectTimeoutMS: 2000, appName: 'simpleapi', ...(maxPoolSize === undefined ? {} : { maxPoolSize }) });
    const poolChosen = setsPoolSize(url);
    const processes = options.processes ?? 1;
    const cap = Math.max(1, Math.floor(FERRETDB_1_POOL / processes));
    let capped: number | undefined;
    let client = open();
    const deadline = options.connectTimeout === 0 ? Infinity : Date.now() + options.connectTimeout * 1000;
    let warned = false;
    let lastError: Error | undefined;
    // One handshake in flight, waited for a turn at a time: a server that takes connections and
    // answers nothing (a FerretDB whose PostgreSQL connections are all taken) is waited for until
    // the deadline, not asked again every turn; closing the client at the deadline ends it.
    let handshake: Promise<string | null> | null = null;
    for (;;) {
      try {
        handshake ??= serverOf(client, options.dbName);
        const server = await answerWithin(handshake, Math.max(1, Math.min(CONNECT_TURN_MS, deadline - Date.now())));
        handshake = null;
        if (server !== null && !poolChosen && capped === undefined) {
          options.log.info(`the database is ${server}: at most ${cap} commands at once from this process (maxPoolSize in db.url sets another number), since more can leave it answering nothing`);
          if (processes > FERRETDB_1_POOL) options.log.warn(`the database is ${server}: ${processes} workers send it up to ${processes} commands at once, more than the ${FERRETDB_1_POOL} it is safe with`);
          await client.close();
          client = open((capped = cap));
          continue;
        }
        const pool = client.options.maxPoolSize;
        if (server !== null && poolChosen && (pool === 0 || pool > cap)) {
          options.log.warn(`the database is ${server}, and db.url's maxPoolSize=${pool} lets this process send it more than ${cap} commands at once: that many can leave it answering nothing`);
        }
        return new MongoStore(client, options, server);
      } catch (err) {
        if (!(err instanceof NoAnswerInTime)) {
          lastError = err as Error;
          handshake = null;
          // Driver 7 keeps a client whose first connection failed closed ("Topology is closed"):
          // a new one tries the network again.
          await client.close().catch(() => {});
          client = open(capped);
        }
        if (Date.now() >= deadline) {
          await client.close().catch(() => {});
          const why = lastError?.message ?? 'no answer: nothing reachable there, or a server that takes connections and answers nothing';
          throw new Error(`the database at ${redactUrl(url)} did not answer within ${options.connectTimeout} s (db.connectTimeout): ${why}`);
        }
        if (!warned) options.log.warn({ url: redactUrl(url), why: lastError?.message ?? 'no answer yet' }, 'waiting for the database');
        warned = true;
        if (handshake === null) await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /** Agenda over this database: any instance runs or reports any job. */
  async startJobRunner(settings: JobSettings & { lock: number }, execute: JobExecutor, log: Logger): Promise<JobRunner> {
    const { AgendaJobRunner } = await import('../jobs/agenda.ts');
    return AgendaJobRunner.start(this.db, settings, execute, log, mapDriverError);
  }

  async init(): Promise<void> {
    await this.#guard(async () => {
      await this.#sessions.createIndex({ userKey: 1 });
      await this.#throttle.createIndex({ key: 1, w: 1, n: -1 });
      if (this.#options.ttlIndexes === 'assume') return;
      for (const collection of [this.#sessions, this.#nonces, this.#throttle, this.#claims] as Collection<any>[]) {
        try {
          await collection.createIndex({ expiresAt: 1 }, { expireAfterSeconds: 0, name: 'expiresAt_ttl' });
        } catch (err) {
          if (!isTtlRefusal(err)) throw err;
          this.#ttlIndexes = false;
        }
      }
      if (!this.#ttlIndexes) {
        this.#options.log.info('the database refused TTL indexes (expireAfterSeconds): expired sessions, nonces and login failures are removed by a sweep every 60 s instead');
      }
    });
  }

  get usesTtlIndexes(): boolean {
    return this.#ttlIndexes;
  }

  async close(): Promise<void> {
    await this.#client.close();
  }

  /** Whether the database answers a ping within 2 s (HealthPing: shared, and bounded in what it leaves). */
  ping(): Promise<boolean> {
    return this.#health.check();
  }

  /** Runs a database operation, turning "the database does not answer" into Unavailable. */
  async #guard<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      throw mapDriverError(err);
    }
  }

  createAccount(account: AccountRecord): Promise<void> {
    return this.#guard(async () => {
      try {
        await this.#accounts.insertOne({ _id: account.userKey, userId: account.userId, password: account.password, created: account.created });
      } catch (err) {
        if (isDuplicateKey(err)) throw new ApiError('Conflict', 'That user_id is already taken');
        throw err;
      }
    });
  }

  findAccount(userKey: string): Promise<AccountRecord | null> {
    return this.#guard(async () => {
      const doc = await this.#accounts.findOne({ _id: userKey });
      return doc === null ? null : { userKey: doc._id, userId: doc.userId, password: doc.password, created: doc.created };
    });
  }

  setPassword(userKey: string, password: PasswordHash): Promise<boolean> {
    return this.#guard(async () => (await this.#accounts.updateOne({ _id: userKey }, { $set: { password } })).matchedCount === 1);
  }

  createSession(s: SessionRecord): Promise<void> {
    return this.#guard(async () => {
      await this.#sessions.insertOne({
        _id: s.sessionId,
        userKey: s.userKey,
        userId: s.userId,
        key: new Binary(s.key),
        expires: s.expires,
        expiresAt: toDate(s.expires),
        state: s.state,
        version: s.version,
      });
    });
  }

  getSession(sessionId: string, now: number): Promise<SessionRecord | null> {
    return this.#guard(async () => {
      // The TTL monitor runs about once a minute (or never, on the sweep path): expiry is checked here.
      const doc = await this.#sessions.findOne({ _id: sessionId, expires: { $gt: now } });
      if (doc === null) return null;
      return {
        sessionId: doc._id,
        userKey: doc.userKey,
        userId: doc.userId,
        key: Buffer.from(doc.key.buffer),
        expires: doc.expires,
        state: doc.state ?? {},
        version: doc.version,
      };
    });
  }

  touchSession(sessionId: string, expires: number): Promise<void> {
    return this.#guard(async () => {
      await this.#sessions.updateOne({ _id: sessionId, expires: { $lt: expires } }, { $set: { expires, expiresAt: toDate(expires) } });
    });
  }

  deleteSession(sessionId: string): Promise<void> {
    return this.#guard(async () => {
      await this.#sessions.deleteOne({ _id: sessionId });
    });
  }

  deleteUserSessions(userKey: string, exceptSessionId?: string): Promise<number> {
    return this.#guard(async () => {
      const filter = exceptSessionId === undefined ? { userKey } : { userKey, _id: { $ne: exceptSessionId } };
      return (await this.#sessions.deleteMany(filter)).deletedCount;
    });
  }

  trimUserSessions(userKey: string, keep: number, keepSessionId: string): Promise<number> {
    return this.#guard(async () => {
      const surplus = await this.#sessions.find({ userKey, _id: { $ne: keepSessionId } }, { projection: { _id: 1 } }).sort({ expires: -1, _id: 1 }).skip(keep - 1).toArray();
      if (surplus.length === 0) return 0;
      return (await this.#sessions.deleteMany({ _id: { $in: surplus.map((d) => d._id) } })).deletedCount;
    });
  }

  /**
   * Optimistic concurrency that holds on FerretDB 1.x too, where a conditional update is not
   * atomic (two `updateOne({version: 0})` can both match): the next version is first claimed by
   * inserting `<session>:<version>`, which the unique _id lets only one saver do.
   */
  saveSessionState(sessionId: string, state: Record<string, unknown>, expectedVersion: number): Promise<number | null> {
    const next = expectedVersion + 1;
    const claimId = `${sessionId}:${next}`;
    return this.#guard(async () => {
      const now = nowSeconds();
      const claim = () => this.#claims.insertOne({ _id: claimId, created: now, expiresAt: toDate(now + 86400) });
      try {
        await claim();
      } catch (err) {
        if (!isDuplicateKey(err) || !(await this.#dropStaleClaim(sessionId, claimId, expectedVersion, now))) {
          if (isDuplicateKey(err)) return null;
          throw err;
        }
        try {
          await claim();
        } catch (again) {
          if (isDuplicateKey(again)) return null;
          throw again;
        }
      }
      const result = await this.#sessions.updateOne({ _id: sessionId, version: expectedVersion }, { $set: { state, version: next } });
      return result.matchedCount === 1 ? next : null;
    });
  }

  /** A claim left by a saver that died before its update: the session still has the old version. */
  async #dropStaleClaim(sessionId: string, claimId: string, expectedVersion: number, now: number): Promise<boolean> {
    const session = await this.#sessions.findOne({ _id: sessionId }, { projection: { version: 1 } });
    if (session === null || session.version !== expectedVersion) return false;
    const dropped = await this.#claims.deleteOne({ _id: claimId, created: { $lt: now - STALE_CLAIM } });
    return dropped.deletedCount === 1;
  }

  /**
   * A nonce's record as its claim writes it, and the update that revives the record when it has
   * expired but was not yet removed (fresh again), dropping what the earlier call left.
   */
  #claimOf(sessionId: string, nonce: string, expires: number, now: number, claim: CallClaim | undefined) {
    const _id = `${sessionId}\n${nonce}`;
    const lifetime = Math.max(expires, now + this.#options.nonceTtl);
    const fields: Omit<NonceDoc, '_id'> = { expires: lifetime, expiresAt: toDate(lifetime) };
    if (claim !== undefined) {
      fields.m = claim.mac;
      if (claim.retry === true) fields.rt = true;
    }
    return { record: { _id, ...fields }, filter: { _id, expires: { $lte: now } }, revive: { $set: fields, $unset: staleFields(fields) } };
  }

  rememberNonce(sessionId: string, nonce: string, expires: number, now: number, claim?: CallClaim): Promise<boolean> {
    const { record, filter, revive } = this.#claimOf(sessionId, nonce, expires, now, claim);
    return this.#guard(async () => {
      try {
        await this.#nonces.insertOne(record);
        return true;
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
      }
      return (await this.#nonces.updateOne(filter, revive)).modifiedCount === 1;
    });
  }

  /**
   * One ordered update command of three statements: the nonce's claim, an upsert that makes sure
   * the window's document exists, and the count, an `$inc` only while the window has room.
   * - The claim is an upsert that matches only an expired record of the nonce, so a live one makes
   *   it insert a duplicate `_id`: that error is the replay, and ordered, nothing after it runs.
   *   Counting after the claim is what keeps a flood of replays from spending the user's calls.
   * - The count is read from the answer: every statement that ran matched one document or
   *   upserted one, and the answer says which upserted, so the count's match is what remains.
   *   (Not from errors: FerretDB 1.x answers a failed statement past the first with index 0.)
   * - The window's document is made by its own statement, whose filter is its `_id` alone: when
   *   two calls make it at once, the server retries the one that lost as an update (MongoDB 4.2
   *   and later; the driver needs 4.4), where a conditional upsert would fail it with a duplicate key.
   * The count needs a MongoDB whose updates are atomic on a document; the rate limiter uses this
   * only there (FerretDB 1.x counts in the process).
   */
  rememberNonceCounted(sessionId: string, nonce: string, expires: number, now: number, claim: CallClaim | undefined, count: WindowCount): Promise<{ fresh: boolean; counted: boolean }> {
    const { filter, revive } = this.#claimOf(sessionId, nonce, expires, now, claim);
    const statements: AnyBulkWriteOperation<NonceOrCount>[] = [
      { updateOne: { filter, update: revive, upsert: true } },
      ...(countStatements(count) as AnyBulkWriteOperation<NonceOrCount>[]),
    ];
    return this.#guard(async () => {
      let answer: BulkWriteResult;
      try {
        answer = await this.#noncesAndCounts.bulkWrite(statements, { ordered: true });
      } catch (err) {
        if (err instanceof MongoBulkWriteError && isDuplicateKey(err) && [err.writeErrors].flat()[0]?.index === 0) return { fresh: false, counted: false };
        throw err;
      }
      return { fresh: true, counted: countMatched(answer, statements.length) };
    });
  }

  countInWindow(count: WindowCount): Promise<boolean> {
    const statements = countStatements(count);
    return this.#guard(async () => countMatched(await this.#counts.bulkWrite(statements, { ordered: true }), statements.length));
  }

  findCall(sessionId: string, nonce: string, now: number): Promise<CallRecord | null> {
    return this.#guard(async () => {
      const doc = await this.#nonces.findOne({ _id: `${sessionId}\n${nonce}`, expires: { $gt: now } });
      if (doc === null) return null;
      if (doc.m === undefined || doc.rt === true || doc.o === null) return { state: 'unkept' };
      const claim: CallClaim = { mac: doc.m };
      if (doc.o === undefined) return { state: 'running', claim };
      const outcome: KeptOutcome = { status: doc.o.s, body: doc.o.b, ...(doc.o.l === undefined ? {} : { location: doc.o.l }), ...(doc.o.ra === undefined ? {} : { retryAfter: doc.o.ra }) };
      return { state: 'done', claim, outcome };
    });
  }

  keepOutcome(sessionId: string, nonce: string, outcome: KeptOutcome | null): Promise<void> {
    const o: NonceDoc['o'] =
      outcome === null
        ? null
        : { s: outcome.status, b: outcome.body, ...(outcome.location === undefined ? {} : { l: outcome.location }), ...(outcome.retryAfter === undefined ? {} : { ra: outcome.retryAfter }) };
    return this.#guard(async () => {
      // Only a call still running takes its outcome: a record revived since belongs to another call.
      await this.#nonces.updateOne({ _id: `${sessionId}\n${nonce}`, m: { $exists: true }, o: { $exists: false } }, { $set: { o } });
    });
  }

  countFailures(key: string, now: number, window: number): Promise<ThrottleState> {
    const { index, resetAt } = throttleWindow(now, window);
    return this.#guard(async () => ({ count: await this.#highestFailure(key, index), resetAt }));
  }

  async #highestFailure(key: string, w: number): Promise<number> {
    const top = await this.#throttle.findOne({ key, w }, { sort: { n: -1 }, projection: { n: 1 } });
    return top?.n ?? 0;
  }

  /**
   * Takes the next free n by inserting it; a duplicate means a concurrent failure took that n, so
   * try the next. Only as many tries as failures arrive together, never as many as are stored.
   */
  recordFailure(key: string, now: number, window: number): Promise<ThrottleState> {
    const { index, resetAt } = throttleWindow(now, window);
    return this.#guard(async () => {
      let n = (await this.#highestFailure(key, index)) + 1;
      for (let tries = 0; ; tries++) {
        try {
          await this.#throttle.insertOne({ _id: `${key}
${index}
${n}`, key, w: index, n, expiresAt: toDate(resetAt) });
          return { count: n, resetAt };
        } catch (err) {
          if (!isDuplicateKey(err)) throw err;
        }
        // Far behind (many at once): look again rather than walk up one by one.
        n = tries % 8 === 7 ? (await this.#highestFailure(key, index)) + 1 : n + 1;
      }
    });
  }

  resetFailures(key: string): Promise<void> {
    return this.#guard(async () => {
      await this.#throttle.deleteMany({ key });
    });
  }

  sweep(now: number): Promise<void> {
    if (this.#ttlIndexes) return Promise.resolve();
    return this.#guard(async () => {
      await Promise.all([
        this.#sessions.deleteMany({ expires: { $lte: now } }),
        this.#nonces.deleteMany({ expires: { $lte: now } }),
        this.#throttle.deleteMany({ expiresAt: { $lte: toDate(now) } }),
        this.#claims.deleteMany({ expiresAt: { $lte: toDate(now) } }),
      ]);
    });
  }
}

/** The fields a revived nonce record drops: those of the earlier call its new claim does not set. */
function staleFields(fields: Omit<NonceDoc, '_id'>): Record<string, ''> {
  return Object.fromEntries((['m', 'rt', 'o'] as const).filter((k) => !(k in fields)).map((k) => [k, '' as const]));
}

/** The upsert that makes a window's document, and the `$inc` that counts a call while it has room. */
function countStatements(count: WindowCount): AnyBulkWriteOperation<CountDoc>[] {
  const _id = `count\n${count.id}`;
  return [
    { updateOne: { filter: { _id }, update: { $setOnInsert: { c: 0, expires: count.expires, expiresAt: toDate(count.expires) } }, upsert: true } },
    { updateOne: { filter: { _id, c: { $lt: count.points } }, update: { $inc: { c: 1 } } } },
  ];
}

/**
 * Whether the last of `statements` (the count) matched: each one before it matched a document or
 * upserted one, and the count upserts none.
 */
function countMatched(answer: BulkWriteResult, statements: number): boolean {
  return answer.matchedCount + answer.upsertedCount - (statements - 1) === 1;
}

function isTtlRefusal(err: unknown): boolean {
  if (!(err instanceof MongoServerError)) return false;
  return err.codeName === 'NotImplemented' || err.code === 238 || /expireAfterSeconds/i.test(err.message);
}

/**
 * buildInfo's answer; {} where the server refuses the command (it is then taken for MongoDB, and
 * the rate limiter's probe checks its updates). A failure to answer is thrown: the server is
 * waited for again, not mistaken for another.
 */
async function buildInfoOf(client: MongoClient): Promise<Document> {
  try {
    return await client.db('admin').command({ buildInfo: 1 });
  } catch (err) {
    if (err instanceof MongoServerError) return {};
    throw err;
  }
}

/** Pings the database, then asks what the server is: FerretDB before 2.0 by name, else null. */
async function serverOf(client: MongoClient, dbName: string): Promise<string | null> {
  await client.db(dbName).command({ ping: 1 });
  return ferretDbBefore2(await buildInfoOf(client));
}

/** How long connect waits on its handshake before it says it is waiting (and checks the deadline). */
const CONNECT_TURN_MS = 2000;
