/**
 * The MySQL / MariaDB store (mysql2's promise pool): the second shared database many instances
 * can serve the same users on. A signed call costs two round trips before its answer: the session
 * read, and the nonce insert (which also says the call is running, for §6 retries) with the rate
 * limiter's count of the call in the same query (rememberNonceWith); its outcome is written after
 * the answer (the sliding-expiry write is skipped unless it would move expiry by
 * `session.touchFraction`).
 *
 * There are no TTL indexes in SQL: expiry columns are indexed, every read checks them, and
 * `sweep` deletes what has expired. Conditional writes are single statements, which InnoDB makes
 * atomic per row (`UPDATE … WHERE version = ?`, a primary-key INSERT for nonces).
 */
import { createPool, type Pool, type PoolConnection, type PoolOptions, type ResultSetHeader, type RowDataPacket } from 'mysql2/promise';
import type { Logger } from 'pino';
import { ApiError } from '../core/errors.ts';
import { redactUrl } from './redact.ts';
import { HealthPing } from './health-ping.ts';
import { throttleWindow, type AccountRecord, type CallClaim, type CallRecord, type JoinedWrite, type KeptOutcome, type MethodResources, type PasswordHash, type SessionRecord, type Store, type ThrottleState } from './types.ts';

export interface MySqlStoreOptions {
  /** The database used when the URL names none. */
  dbName: string;
  /** Seconds to wait for the database at start-up; 0 waits forever. */
  connectTimeout: number;
  /** Seconds a nonce row must at least live. */
  nonceTtl: number;
  log: Logger;
}

/** Table names, prefixed so they do not clash with methods' own tables in `ctx.sql`. */
export const TABLES = {
  schema: 'simpleapi_schema',
  accounts: 'simpleapi_accounts',
  sessions: 'simpleapi_sessions',
  nonces: 'simpleapi_nonces',
  throttle: 'simpleapi_throttle',
} as const;

type Migration = string | ((conn: PoolConnection) => Promise<void>);

/**
 * Adds the columns a table lacks, in one ALTER: idempotent where `ADD COLUMN IF NOT EXISTS` is
 * not (MySQL has no such clause).
 */
function addColumns(table: string, columns: Record<string, string>): Migration {
  return async (conn) => {
    const [rows] = await conn.query<RowDataPacket[]>('SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?', [table]);
    const present = new Set(rows.map((r) => String(r.name).toLowerCase()));
    const missing = Object.entries(columns).filter(([name]) => !present.has(name));
    if (missing.length > 0) await conn.query(`ALTER TABLE ${table} ${missing.map(([name, type]) => `ADD COLUMN ${name} ${type}`).join(', ')}`);
  };
}

/**
 * Each entry brings the schema from the version before it to its own (index + 1); a later change
 * appends an entry, and start-up runs the ones a database has not had. Steps stay idempotent
 * so a run cut short can be run again.
 */
const MIGRATIONS: readonly (readonly Migration[])[] = [
  [
    `CREATE TABLE IF NOT EXISTS ${TABLES.accounts} (
      user_key VARCHAR(512) NOT NULL PRIMARY KEY,
      user_id VARCHAR(512) NOT NULL,
      password TEXT NOT NULL,
      created BIGINT NOT NULL
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
    `CREATE TABLE IF NOT EXISTS ${TABLES.sessions} (
      session_id VARCHAR(64) NOT NULL PRIMARY KEY,
      user_key VARCHAR(512) NOT NULL,
      user_id VARCHAR(512) NOT NULL,
      sign_key VARBINARY(64) NOT NULL,
      expires BIGINT NOT NULL,
      state LONGTEXT NOT NULL,
      version INT UNSIGNED NOT NULL,
      INDEX sessions_user_key (user_key),
      INDEX sessions_expires (expires)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
    `CREATE TABLE IF NOT EXISTS ${TABLES.nonces} (
      session_id VARCHAR(64) NOT NULL,
      nonce VARCHAR(64) NOT NULL,
      expires BIGINT NOT NULL,
      PRIMARY KEY (session_id, nonce),
      INDEX nonces_expires (expires)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
    `CREATE TABLE IF NOT EXISTS simpleapi_login_failures (
      id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
      throttle_key VARCHAR(600) NOT NULL,
      at BIGINT NOT NULL,
      expires BIGINT NOT NULL,
      INDEX failures_key_at (throttle_key, at),
      INDEX failures_expires (expires)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
  ],
  // 2: one counter row per throttle key and fixed window instead of a row per failure.
  [
    `CREATE TABLE IF NOT EXISTS ${TABLES.throttle} (
      throttle_key VARCHAR(600) NOT NULL,
      win BIGINT NOT NULL,
      failures INT UNSIGNED NOT NULL,
      expires BIGINT NOT NULL,
      PRIMARY KEY (throttle_key, win),
      INDEX throttle_expires (expires)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
    'DROP TABLE IF EXISTS simpleapi_login_failures',
  ],
  // 3: a signed call's nonce row carries its claim and, once it ended, its answer (§6 retries).
  // `kept`: NULL while the call runs, 0 when its answer is not kept, 1 with the answer beside it.
  [
    addColumns(TABLES.nonces, {
      mac: 'VARCHAR(64) NULL',
      retry: 'TINYINT NOT NULL DEFAULT 0',
      kept: 'TINYINT NULL',
      status: 'SMALLINT NULL',
      location: 'VARCHAR(2048) NULL',
      retry_after: 'INT NULL',
      body: 'LONGTEXT NULL',
    }),
  ],
];

/** The schema version this code writes and reads. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** Rows one sweep statement deletes at most, so a backlog does not hold locks for long. */
const SWEEP_BATCH = 5000;

/** Seconds a client is told to wait when the database does not answer. */
const RETRY_AFTER = 5;
/** mysql2 and server codes that mean "the database is not there", as opposed to a bad query. */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOENT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_CON_COUNT_ERROR',
  'ER_TOO_MANY_USER_CONNECTIONS',
  'ER_USER_LIMIT_REACHED',
  'ER_CONNECTION_KILLED',
]);

/** A database that does not answer becomes Unavailable (503, Retry-After); other errors pass. */
export function mapMySqlError(err: unknown): unknown {
  if (err instanceof Error) {
    const e = err as Error & { code?: string; fatal?: boolean };
    if (e.fatal === true || (e.code !== undefined && UNAVAILABLE_CODES.has(e.code))) {
      return new ApiError('Unavailable', 'The database does not answer; try again shortly', { retryAfter: RETRY_AFTER, cause: err });
    }
  }
  return err;
}

const isDuplicateKey = (err: unknown) => (err as { code?: string } | null)?.code === 'ER_DUP_ENTRY';

/** A call's claim as the nonce row's `mac` and `retry` columns hold it. */
const claimColumns = (claim: CallClaim | undefined): [string | null, 0 | 1] => [claim?.mac ?? null, claim?.retry === true ? 1 : 0];

/** The insert that claims a nonce (alone, or in a joined claim's transaction). */
function nonceInsert(sessionId: string, nonce: string, lifetime: number, claim: CallClaim | undefined): JoinedWrite {
  return { sql: `INSERT INTO ${TABLES.nonces} (session_id, nonce, expires, mac, retry) VALUES (?, ?, ?, ?, ?)`, values: [sessionId, nonce, lifetime, ...claimColumns(claim)] };
}

type MySqlTarget = ReturnType<typeof parseMySqlUrl>;

/** Connections of the joined claims' pool, beside the main pool's 10. */
const JOINED_CONNECTIONS = 6;

/** The server would not open one more connection: another pool may still have one. */
const REFUSED_CONNECTION_CODES = new Set(['ER_CON_COUNT_ERROR', 'ER_TOO_MANY_USER_CONNECTIONS', 'ER_USER_LIMIT_REACHED']);

/**
 * A pool's options. A short connect timeout: during an outage a request gets its 503 in about
 * 2 s, not 10.
 */
function poolOptions(target: MySqlTarget): PoolOptions {
  return { ...target, connectTimeout: 2000, enableKeepAlive: true, connectionLimit: 10, charset: 'utf8mb4_bin' };
}

/** The pieces of a `mysql://user:pass@host:port/db` URL that mysql2 takes. */
export function parseMySqlUrl(url: string, fallbackDb: string): { host: string; port: number; user: string; password: string; database: string } {
  // Not echoed, nor kept on the error (URL's own error holds its input): a URL missing its '//', or
  // with a '/', '?' or '#' in its password, shows the password where a host or database should be.
  const malformed = () => new Error("db.url is not of the form mysql://user:password@host:3306/database (is its '//' missing, or a '/', '?' or '#' in the password not written as %2F, %3F, %23?)");
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw malformed();
  }
  if (u.protocol !== 'mysql:' && u.protocol !== 'mariadb:') throw new Error(`not a mysql:// URL: ${redactUrl(url)}`);
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  const afterSlashes = /^[a-z]+:\/\/(.*)$/is.exec(url)?.[1];
  const at = afterSlashes?.lastIndexOf('@') ?? -1;
  if (afterSlashes === undefined || database.includes('@') || (at >= 0 && /[/?#]/.test(afterSlashes.slice(0, at)))) throw malformed();
  return {
    host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: u.port === '' ? 3306 : Number(u.port),
    user: decodeURIComponent(u.username) || 'root',
    password: decodeURIComponent(u.password),
    database: database === '' ? fallbackDb : database,
  };
}

interface SessionRow extends RowDataPacket {
  session_id: string;
  user_key: string;
  user_id: string;
  sign_key: Buffer;
  expires: number;
  state: string;
  version: number;
}

export class MySqlStore implements Store {
  readonly description = 'mysql';
  readonly shared = true;
  /** No MongoDB here: methods' own tables go through `sql` (`ctx.sql`). */
  readonly forMethods: MethodResources;
  /** The pool, for methods' own tables (`ctx.sql`). */
  readonly sql: Pool;
  readonly database: string;
  readonly #options: MySqlStoreOptions;
  /** Queries sent, for the bench's round trips per call. */
  #queries = 0;

  /** The pool of joined claims (rememberNonceWith); like every pool, it connects on first use. */
  readonly #joined: Pool;
  /** Joined claims that failed and went the usual way since the last warning, by error code. */
  readonly #fallbacks = { byCode: new Map<string, number>(), warnedAt: -Infinity };
  // On a connection of its own, destroyed when the ping is abandoned: that settles the ping and
  // gives the pool its slot back. (mysql2's query timeout answers the caller but leaves the
  // connection waiting for the lost answer, and every later command on it, pool.end() too; and
  // its destroy() only half-closes the socket and leaves the query unsettled: the socket goes too.)
  readonly #health = new HealthPing(async (abandoned) => {
    const connection = await this.sql.getConnection();
    if (abandoned.aborted) {
      connection.release();
      return;
    }
    const query = connection.query('SELECT 1');
    query.catch(() => {}); // settles, if ever, after the ping was given up on
    let giveUp = () => {};
    const gaveUp = new Promise<never>((_, reject) => {
      giveUp = () => {
        connection.destroy();
        (connection.connection as unknown as { stream?: { destroy(): void } }).stream?.destroy();
        reject(new Error('the ping was given up on'));
      };
    });
    abandoned.addEventListener('abort', giveUp, { once: true });
    try {
      await Promise.race([query, gaveUp]);
    } finally {
      abandoned.removeEventListener('abort', giveUp);
      if (!abandoned.aborted) connection.release();
    }
  });

  private constructor(pool: Pool, target: MySqlTarget, options: MySqlStoreOptions) {
    this.sql = pool;
    this.forMethods = { db: null, sql: pool };
    this.database = target.database;
    this.#options = options;
    // Busy, it does not queue: a claim then goes the usual way on the main pool.
    this.#joined = createPool({ ...poolOptions(target), connectionLimit: JOINED_CONNECTIONS, maxIdle: JOINED_CONNECTIONS, waitForConnections: false, multipleStatements: true });
  }

  /** Queries this store has sent since it opened (methods' own through `sql` not included). */
  get queries(): number {
    return this.#queries;
  }

  /**
   * Connects, retrying until the database answers or `connectTimeout` seconds pass; creates the
   * database when the server answers that it does not exist (as MongoDB creates one on first use).
   *
   * @example const store = await MySqlStore.connect('mysql://root@127.0.0.1:3306/api', { dbName: 'api', connectTimeout: 10, nonceTtl: 601, log })
   */
  static async connect(url: string, options: MySqlStoreOptions): Promise<MySqlStore> {
    const target = parseMySqlUrl(url, options.dbName);
    if (!/^[A-Za-z0-9_$-]{1,64}$/.test(target.database)) throw new Error(`database name ${JSON.stringify(target.database)} is not one this store accepts ([A-Za-z0-9_$-], at most 64)`);
    const deadline = options.connectTimeout === 0 ? Infinity : Date.now() + options.connectTimeout * 1000;
    let warned = false;
    for (;;) {
      const pool = createPool(poolOptions(target));
      try {
        await pool.query('SELECT 1');
        return new MySqlStore(pool, target, options);
      } catch (err) {
        await pool.end().catch(() => {});
        if ((err as { code?: string }).code === 'ER_BAD_DB_ERROR') {
          await createDatabase(target);
          continue;
        }
        // Refused for a reason waiting will not fix (e.g. access denied): say so at once.
        if (mapMySqlError(err) === err) throw new Error(`the database at ${redactUrl(url)} refused the connection: ${(err as Error).message}`);
        if (Date.now() >= deadline) {
          throw new Error(`the database at ${redactUrl(url)} did not answer within ${options.connectTimeout} s (db.connectTimeout): ${(err as Error).message}`);
        }
        if (!warned) options.log.warn({ url: redactUrl(url), why: (err as Error).message }, 'waiting for the database');
        warned = true;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /** Creates the tables or brings them to SCHEMA_VERSION, under a lock so instances starting together take turns. */
  async init(): Promise<void> {
    await this.#guard(async () => {
      const conn = await this.sql.getConnection();
      try {
        const [[lock]] = await conn.query<RowDataPacket[]>("SELECT GET_LOCK('simpleapi_schema', 30) AS got");
        if (lock?.got !== 1) throw new Error('could not take the schema lock within 30 s (another instance migrating?)');
        try {
          await this.#migrate(conn);
        } finally {
          await conn.query("SELECT RELEASE_LOCK('simpleapi_schema')");
        }
      } finally {
        conn.release();
      }
    });
  }

  async #migrate(conn: PoolConnection): Promise<void> {
    await conn.query(`CREATE TABLE IF NOT EXISTS ${TABLES.schema} (
      name VARCHAR(64) NOT NULL PRIMARY KEY,
      version INT NOT NULL,
      updated BIGINT NOT NULL
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`);
    const [rows] = await conn.query<RowDataPacket[]>(`SELECT version FROM ${TABLES.schema} WHERE name = 'store'`);
    const current = rows.length === 0 ? 0 : Number(rows[0]!.version);
    if (current > SCHEMA_VERSION) {
      throw new Error(`the database's schema is version ${current}, newer than this server's ${SCHEMA_VERSION}: upgrade simpleapi`);
    }
    for (let v = current + 1; v <= SCHEMA_VERSION; v++) {
      for (const step of MIGRATIONS[v - 1]!) await (typeof step === 'string' ? conn.query(step) : step(conn));
      await conn.query(`INSERT INTO ${TABLES.schema} (name, version, updated) VALUES ('store', ?, UNIX_TIMESTAMP()) ON DUPLICATE KEY UPDATE version = ?, updated = UNIX_TIMESTAMP()`, [v, v]);
      this.#options.log.info({ version: v }, `database schema at version ${v}`);
    }
  }

  /** The schema version recorded in the database. */
  async schemaVersion(): Promise<number> {
    const rows = await this.#rows(`SELECT version FROM ${TABLES.schema} WHERE name = 'store'`);
    return rows.length === 0 ? 0 : Number(rows[0]!.version);
  }

  async close(): Promise<void> {
    // A ping still waiting would hold pool.end() behind its lost answer: its connection goes first.
    this.#health.abandonAll();
    await Promise.all([this.sql.end(), this.#joined.end()]);
  }

  /** Whether the database answers within 2 s (HealthPing, on a connection of its own: see #health). */
  ping(): Promise<boolean> {
    return this.#health.check();
  }

  /** Runs a database operation, turning "the database does not answer" into Unavailable. */
  async #guard<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      throw mapMySqlError(err);
    }
  }

  async #rows(sql: string, values: unknown[] = []): Promise<RowDataPacket[]> {
    this.#queries++;
    const [rows] = await this.sql.query<RowDataPacket[]>(sql, values);
    return rows;
  }

  /** A write; `affectedRows` counts matched rows (mysql2 sets FOUND_ROWS). */
  async #write(sql: string, values: unknown[]): Promise<ResultSetHeader> {
    this.#queries++;
    const [result] = await this.sql.query<ResultSetHeader>(sql, values);
    return result;
  }

  createAccount(a: AccountRecord): Promise<void> {
    return this.#guard(async () => {
      try {
        await this.#write(`INSERT INTO ${TABLES.accounts} (user_key, user_id, password, created) VALUES (?, ?, ?, ?)`, [a.userKey, a.userId, JSON.stringify(a.password), a.created]);
      } catch (err) {
        if (isDuplicateKey(err)) throw new ApiError('Conflict', 'That user_id is already taken');
        throw err;
      }
    });
  }

  findAccount(userKey: string): Promise<AccountRecord | null> {
    return this.#guard(async () => {
      const [row] = await this.#rows(`SELECT user_key, user_id, password, created FROM ${TABLES.accounts} WHERE user_key = ?`, [userKey]);
      if (row === undefined) return null;
      return { userKey: row.user_key, userId: row.user_id, password: JSON.parse(row.password) as PasswordHash, created: Number(row.created) };
    });
  }

  setPassword(userKey: string, password: PasswordHash): Promise<boolean> {
    return this.#guard(async () => (await this.#write(`UPDATE ${TABLES.accounts} SET password = ? WHERE user_key = ?`, [JSON.stringify(password), userKey])).affectedRows === 1);
  }

  createSession(s: SessionRecord): Promise<void> {
    return this.#guard(async () => {
      try {
        await this.#write(`INSERT INTO ${TABLES.sessions} (session_id, user_key, user_id, sign_key, expires, state, version) VALUES (?, ?, ?, ?, ?, ?, ?)`, [
          s.sessionId,
          s.userKey,
          s.userId,
          s.key,
          s.expires,
          JSON.stringify(s.state),
          s.version,
        ]);
      } catch (err) {
        if (isDuplicateKey(err)) throw new ApiError('Conflict', 'Session id collision');
        throw err;
      }
    });
  }

  getSession(sessionId: string, now: number): Promise<SessionRecord | null> {
    return this.#guard(async () => {
      // The sweep runs once a minute at most: expiry is checked here.
      const [row] = (await this.#rows(`SELECT session_id, user_key, user_id, sign_key, expires, state, version FROM ${TABLES.sessions} WHERE session_id = ? AND expires > ?`, [sessionId, now])) as SessionRow[];
      if (row === undefined) return null;
      return {
        sessionId: row.session_id,
        userKey: row.user_key,
        userId: row.user_id,
        key: Buffer.from(row.sign_key),
        expires: Number(row.expires),
        state: JSON.parse(row.state) as Record<string, unknown>,
        version: Number(row.version),
      };
    });
  }

  touchSession(sessionId: string, expires: number): Promise<void> {
    return this.#guard(async () => {
      await this.#write(`UPDATE ${TABLES.sessions} SET expires = ? WHERE session_id = ? AND expires < ?`, [expires, sessionId, expires]);
    });
  }

  deleteSession(sessionId: string): Promise<void> {
    return this.#guard(async () => {
      await this.#write(`DELETE FROM ${TABLES.sessions} WHERE session_id = ?`, [sessionId]);
    });
  }

  deleteUserSessions(userKey: string, exceptSessionId?: string): Promise<number> {
    return this.#guard(async () => {
      const result =
        exceptSessionId === undefined
          ? await this.#write(`DELETE FROM ${TABLES.sessions} WHERE user_key = ?`, [userKey])
          : await this.#write(`DELETE FROM ${TABLES.sessions} WHERE user_key = ? AND session_id <> ?`, [userKey, exceptSessionId]);
      return result.affectedRows;
    });
  }

  trimUserSessions(userKey: string, keep: number, keepSessionId: string): Promise<number> {
    return this.#guard(async () => {
      // MariaDB takes no LIMIT in an IN subquery: the ids first, then one delete.
      const rows = (await this.#rows(`SELECT session_id FROM ${TABLES.sessions} WHERE user_key = ? AND session_id <> ? ORDER BY expires DESC, session_id LIMIT 18446744073709551615 OFFSET ?`, [userKey, keepSessionId, keep - 1])) as { session_id: string }[];
      if (rows.length === 0) return 0;
      const result = await this.#write(`DELETE FROM ${TABLES.sessions} WHERE session_id IN (?)`, [rows.map((r) => r.session_id)]);
      return result.affectedRows;
    });
  }

  /** One conditional UPDATE: InnoDB locks the row, so of two savers from one version only one matches. */
  saveSessionState(sessionId: string, state: Record<string, unknown>, expectedVersion: number): Promise<number | null> {
    return this.#guard(async () => {
      const result = await this.#write(`UPDATE ${TABLES.sessions} SET state = ?, version = version + 1 WHERE session_id = ? AND version = ?`, [JSON.stringify(state), sessionId, expectedVersion]);
      return result.affectedRows === 1 ? expectedVersion + 1 : null;
    });
  }

  rememberNonce(sessionId: string, nonce: string, expires: number, now: number, claim?: CallClaim): Promise<boolean> {
    const lifetime = Math.max(expires, now + this.#options.nonceTtl);
    return this.#guard(async () => {
      try {
        // The claim rides on the nonce's own insert: no query of its own on the hot path.
        const insert = nonceInsert(sessionId, nonce, lifetime, claim);
        await this.#write(insert.sql, insert.values);
        return true;
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
      }
      return this.#revive(sessionId, nonce, lifetime, now, claim);
    });
  }

  /**
   * A nonce seen before is fresh again only if its row expired and the sweep has not removed it
   * yet. The row lock makes this a single winner too: a second revival no longer matches
   * `expires <= now`.
   */
  async #revive(sessionId: string, nonce: string, lifetime: number, now: number, claim: CallClaim | undefined): Promise<boolean> {
    const revived = await this.#write(
      `UPDATE ${TABLES.nonces} SET expires = ?, mac = ?, retry = ?, kept = NULL, status = NULL, location = NULL, retry_after = NULL, body = NULL WHERE session_id = ? AND nonce = ? AND expires <= ?`,
      [lifetime, ...claimColumns(claim), sessionId, nonce, now],
    );
    return revived.affectedRows === 1;
  }

  /**
   * rememberNonce and one more write (the user's rate-limit count, src/core/rate-limit.ts) in one
   * round trip: a transaction sent as one multi-statement query, so both happen or neither does.
   * Its pool is its own: the one methods get (`ctx.sql`) keeps refusing several statements in one
   * query, which would widen what an injection in a method's SQL could do. The query first sets
   * a 1 s lock wait (InnoDB's default is 50 s): a claim behind a locked counter row then fails,
   * is rolled back and goes the usual way, where the counter's own 1 s bound holds.
   * `joined` is the write's answer when the nonce was fresh; null when it was not, or when the
   * nonce went the usual way (three round trips, as before): the pool was busy, the server
   * refused it a connection, or the write failed on the server (then nothing of it happened).
   * A database gone away is Unavailable, as for every query; after the query was sent the
   * transaction may have committed, and the usual way would then call a fresh nonce a replay.
   */
  async rememberNonceWith(sessionId: string, nonce: string, expires: number, now: number, claim: CallClaim | undefined, also: JoinedWrite): Promise<{ fresh: boolean; joined: ResultSetHeader | null }> {
    /** The nonce alone, as rememberNonce claims it; `failure`: why, when the joined write failed. */
    const usual = async (failure?: string) => {
      if (failure !== undefined) this.#fellBack(failure);
      return { fresh: await this.rememberNonce(sessionId, nonce, expires, now, claim), joined: null };
    };
    let conn: PoolConnection;
    try {
      conn = await this.#joined.getConnection();
    } catch (err) {
      const code = (err as { code?: string }).code;
      // Busy (mysql2 gives no code), or the server is at a connection limit: the main pool may have room.
      if (code === undefined && /no connections available/i.test((err as Error).message)) return usual();
      if (code !== undefined && REFUSED_CONNECTION_CODES.has(code)) return usual(code);
      throw mapMySqlError(err);
    }
    const lifetime = Math.max(expires, now + this.#options.nonceTtl);
    const insert = nonceInsert(sessionId, nonce, lifetime, claim);
    let results: ResultSetHeader[];
    try {
      this.#queries++;
      [results] = await conn.query<ResultSetHeader[]>(`SET SESSION innodb_lock_wait_timeout = 1; START TRANSACTION; ${insert.sql}; ${also.sql}; COMMIT`, [...insert.values, ...also.values]);
    } catch (err) {
      const unavailable = mapMySqlError(err);
      if (unavailable !== err) {
        conn.destroy();
        throw unavailable;
      }
      // A failed statement ends the query with the transaction open (a duplicate key leaves a
      // lock on the row): rolled back, the connection goes back clean, or, if it cannot, not at all.
      const clean = await conn.query('ROLLBACK').then(() => true, () => false);
      if (clean) conn.release();
      else conn.destroy();
      if (isDuplicateKey(err)) return { fresh: await this.#guard(() => this.#revive(sessionId, nonce, lifetime, now, claim)), joined: null };
      return usual((err as { code?: string }).code ?? 'unknown');
    }
    conn.release();
    return { fresh: true, joined: results[3]! };
  }

  /**
   * Says, at most once a minute, which failures sent joined claims the usual way, by error code
   * (the code alone: a server's message may quote the values, a session id among them).
   */
  #fellBack(code: string): void {
    const fallbacks = this.#fallbacks;
    fallbacks.byCode.set(code, (fallbacks.byCode.get(code) ?? 0) + 1);
    const now = Date.now();
    if (now - fallbacks.warnedAt < 60_000) return;
    this.#options.log.warn({ fallbacks: Object.fromEntries(fallbacks.byCode) }, 'nonce claims with their rate-limit count failed and went the usual way (two more round trips each)');
    fallbacks.warnedAt = now;
    fallbacks.byCode.clear();
  }

  findCall(sessionId: string, nonce: string, now: number): Promise<CallRecord | null> {
    return this.#guard(async () => {
      const [row] = await this.#rows(`SELECT mac, retry, kept, status, location, retry_after, body FROM ${TABLES.nonces} WHERE session_id = ? AND nonce = ? AND expires > ?`, [sessionId, nonce, now]);
      if (row === undefined) return null;
      if (row.mac === null || Number(row.retry) === 1 || (row.kept !== null && Number(row.kept) === 0)) return { state: 'unkept' };
      const claim: CallClaim = { mac: String(row.mac) };
      if (row.kept === null) return { state: 'running', claim };
      const outcome: KeptOutcome = {
        status: Number(row.status),
        body: String(row.body ?? ''),
        ...(row.location === null ? {} : { location: String(row.location) }),
        ...(row.retry_after === null ? {} : { retryAfter: Number(row.retry_after) }),
      };
      return { state: 'done', claim, outcome };
    });
  }

  keepOutcome(sessionId: string, nonce: string, outcome: KeptOutcome | null): Promise<void> {
    return this.#guard(async () => {
      // Only a call still running takes its outcome: a row revived since belongs to another call.
      const where = `WHERE session_id = ? AND nonce = ? AND mac IS NOT NULL AND kept IS NULL`;
      if (outcome === null) await this.#write(`UPDATE ${TABLES.nonces} SET kept = 0 ${where}`, [sessionId, nonce]);
      else {
        await this.#write(`UPDATE ${TABLES.nonces} SET kept = 1, status = ?, location = ?, retry_after = ?, body = ? ${where}`, [
          outcome.status,
          outcome.location ?? null,
          outcome.retryAfter ?? null,
          outcome.body,
          sessionId,
          nonce,
        ]);
      }
    });
  }

  countFailures(key: string, now: number, window: number): Promise<ThrottleState> {
    const { index, resetAt } = throttleWindow(now, window);
    return this.#guard(async () => {
      const [row] = await this.#rows(`SELECT failures FROM ${TABLES.throttle} WHERE throttle_key = ? AND win = ?`, [key, index]);
      return { count: Number(row?.failures ?? 0), resetAt };
    });
  }

  /**
   * One statement, atomic on the row: the insert or the increment, with the new count handed back
   * through LAST_INSERT_ID(expr) (an insert leaves it 0: the count is then 1).
   */
  recordFailure(key: string, now: number, window: number): Promise<ThrottleState> {
    const { index, resetAt } = throttleWindow(now, window);
    return this.#guard(async () => {
      const result = await this.#write(
        `INSERT INTO ${TABLES.throttle} (throttle_key, win, failures, expires) VALUES (?, ?, 1, ?) ON DUPLICATE KEY UPDATE failures = LAST_INSERT_ID(failures + 1)`,
        [key, index, resetAt],
      );
      return { count: result.affectedRows === 1 ? 1 : Number(result.insertId), resetAt };
    });
  }

  resetFailures(key: string): Promise<void> {
    return this.#guard(async () => {
      await this.#write(`DELETE FROM ${TABLES.throttle} WHERE throttle_key = ?`, [key]);
    });
  }

  /** Deletes expired rows in batches (on the indexed expiry columns). */
  sweep(now: number): Promise<void> {
    return this.#guard(async () => {
      for (const table of [TABLES.sessions, TABLES.nonces, TABLES.throttle]) {
        for (;;) {
          const { affectedRows } = await this.#write(`DELETE FROM ${table} WHERE expires <= ? LIMIT ${SWEEP_BATCH}`, [now]);
          if (affectedRows < SWEEP_BATCH) break;
        }
      }
    });
  }
}

async function createDatabase(target: ReturnType<typeof parseMySqlUrl>): Promise<void> {
  const { database, ...server } = target;
  const pool = createPool({ ...server, connectTimeout: 2000, connectionLimit: 1 });
  try {
    await pool.query(`CREATE DATABASE IF NOT EXISTS \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  } finally {
    await pool.end().catch(() => {});
  }
}

