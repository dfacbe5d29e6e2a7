import type { RowDataPacket } from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { MySqlStore, parseMySqlUrl, SCHEMA_VERSION, TABLES } from '../src/store/mysql.ts';
import { createLogger } from '../src/log.ts';
import { LogCapture } from './helpers/server.ts';
import { dropMySqlDb, hasMySql, MYSQL_URL, mysqlUrlFor, openMySqlStore, uniqueMySqlDb } from './helpers/mysql.ts';
import { mysqlRelay } from './helpers/mysql-relay.ts';
import { storeContract } from './store.contract.ts';

// Without MYSQL_URL these are skipped; helpers/mysql.ts prints why (and fails under CI=true).
describe.skipIf(!hasMySql)('MySQL store', () => {
  const contractDb = uniqueMySqlDb('contract');
  storeContract(
    'MySQL (MariaDB)',
    () => openMySqlStore(contractDb),
    async (store) => {
      await store.close();
      await dropMySqlDb(contractDb);
    },
  );

  describe('MySqlStore specifics', () => {
    it('creates its tables idempotently and records the schema version once', async () => {
      const db = uniqueMySqlDb('schema');
      const first = await openMySqlStore(db);
      const second = await openMySqlStore(db);
      try {
        expect(await first.schemaVersion()).toBe(SCHEMA_VERSION);
        const [rows] = await first.sql.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${TABLES.schema}`);
        expect(Number(rows[0]!.n)).toBe(1);
        const [indexes] = await first.sql.query<RowDataPacket[]>(`SHOW INDEX FROM ${TABLES.sessions}`);
        expect(new Set(indexes.map((i) => i.Key_name))).toEqual(new Set(['PRIMARY', 'sessions_user_key', 'sessions_expires']));
        expect(first.description).toBe('mysql');
        expect(first.forMethods).toEqual({ db: null, sql: first.sql });
      } finally {
        await first.close();
        await second.close();
        await dropMySqlDb(db);
      }
    });

    it('refuses a database whose schema is newer than it knows', async () => {
      const db = uniqueMySqlDb('newer');
      const store = await openMySqlStore(db);
      try {
        await store.sql.query(`UPDATE ${TABLES.schema} SET version = ? WHERE name = 'store'`, [SCHEMA_VERSION + 1]);
        await expect(store.init()).rejects.toThrow(`the database's schema is version ${SCHEMA_VERSION + 1}, newer than this server's ${SCHEMA_VERSION}`);
      } finally {
        await store.close();
        await dropMySqlDb(db);
      }
    });

    it('creates the database named in the URL when it does not exist', async () => {
      const db = uniqueMySqlDb('created');
      const store = await MySqlStore.connect(mysqlUrlFor(db), { dbName: 'unused', connectTimeout: 10, nonceTtl: 601, log: createLogger({ level: 'silent' }) });
      try {
        await store.init();
        expect(store.database).toBe(db);
        expect(await store.ping()).toBe(true);
      } finally {
        await store.close();
        await dropMySqlDb(db);
      }
    });

    it('user keys match byte for byte, not by the server collation (no accent or case folding)', async () => {
      const db = uniqueMySqlDb('collation');
      const store = await openMySqlStore(db);
      try {
        const password = { algo: 'scrypt' as const, N: 16384, r: 8, p: 1, salt: 'c2FsdA==', hash: 'aGFzaA==' };
        await store.createAccount({ userKey: 'rené', userId: 'René', password, created: 1 });
        await store.createAccount({ userKey: 'rene', userId: 'rene', password, created: 2 });
        expect((await store.findAccount('rené'))!.userId).toBe('René');
        expect((await store.findAccount('rene'))!.userId).toBe('rene');
        expect(await store.findAccount('RENE')).toBeNull();
      } finally {
        await store.close();
        await dropMySqlDb(db);
      }
    });

    it('the sweep removes expired nonces and throttle windows, and keeps live ones', async () => {
      const db = uniqueMySqlDb('sweep');
      const store = await openMySqlStore(db, 1);
      try {
        const now = Math.floor(Date.now() / 1000);
        await store.rememberNonce('s', 'nonce-to-be-swept-1', now - 10, now - 700);
        await store.rememberNonce('s', 'nonce-still-live-01', now + 100, now);
        await store.recordFailure('user:swept', now - 100, 10);
        await store.recordFailure('user:kept', now, 60);
        await store.sweep(now);
        const [nonces] = await store.sql.query<RowDataPacket[]>(`SELECT nonce FROM ${TABLES.nonces}`);
        expect(nonces.map((r) => r.nonce)).toEqual(['nonce-still-live-01']);
        const [failures] = await store.sql.query<RowDataPacket[]>(`SELECT throttle_key FROM ${TABLES.throttle}`);
        expect(failures.map((r) => r.throttle_key)).toEqual(['user:kept']);
      } finally {
        await store.close();
        await dropMySqlDb(db);
      }
    });

    it('a database of schema 1 is brought to the current one (the throttle table of 2, the nonce columns of 3); a migration cut short runs again', async () => {
      const db = uniqueMySqlDb('migrate');
      const store = await openMySqlStore(db);
      const columns = async () => {
        const [rows] = await store.sql.query<RowDataPacket[]>('SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?', [TABLES.nonces]);
        return rows.map((r) => String(r.name)).sort();
      };
      try {
        const now = Math.floor(Date.now() / 1000);
        await store.sql.query(`ALTER TABLE ${TABLES.nonces} DROP COLUMN mac, DROP COLUMN retry, DROP COLUMN kept, DROP COLUMN status, DROP COLUMN location, DROP COLUMN retry_after, DROP COLUMN body`);
        await store.sql.query(`UPDATE ${TABLES.schema} SET version = 1 WHERE name = 'store'`);
        await store.sql.query(`INSERT INTO ${TABLES.nonces} (session_id, nonce, expires) VALUES ('old', 'nonce-from-schema-1', ?)`, [now + 600]);
        expect(await columns()).toEqual(['expires', 'nonce', 'session_id']);
        await store.init();
        expect(await store.schemaVersion()).toBe(SCHEMA_VERSION);
        expect(await columns()).toEqual(['body', 'expires', 'kept', 'location', 'mac', 'nonce', 'retry', 'retry_after', 'session_id', 'status']);
        expect(await store.rememberNonce('old', 'nonce-from-schema-1', now + 600, now)).toBe(false);
        expect(await store.findCall('old', 'nonce-from-schema-1', now)).toEqual({ state: 'unkept' });
        // The columns are there but the version was not recorded: start-up runs the step again.
        await store.sql.query(`UPDATE ${TABLES.schema} SET version = 1 WHERE name = 'store'`);
        await store.init();
        expect(await store.schemaVersion()).toBe(SCHEMA_VERSION);
      } finally {
        await store.close();
        await dropMySqlDb(db);
      }
    });

    it('a signed call reads the session and records the nonce: two queries', async () => {
      const db = uniqueMySqlDb('queries');
      const store = await openMySqlStore(db);
      try {
        const now = Math.floor(Date.now() / 1000);
        await store.createSession({ sessionId: 'q-session', userKey: 'q', userId: 'q', key: Buffer.alloc(32, 1), expires: now + 100, state: {}, version: 0 });
        const before = store.queries;
        expect(await store.getSession('q-session', now)).not.toBeNull();
        expect(await store.rememberNonce('q-session', 'nonce-counted-00001', now + 300, now, { mac: 'c'.repeat(64) })).toBe(true);
        // The claim a retry needs rides on the nonce's insert.
        expect(store.queries - before).toBe(2);
      } finally {
        await store.close();
        await dropMySqlDb(db);
      }
    });

    describe('a nonce claimed with one more write (rememberNonceWith, the rate limit on a signed call)', () => {
      const counts = 'joined_counts';
      const count = (key: string) => ({ sql: `INSERT INTO ${counts} (k, n) VALUES (?, 1) ON DUPLICATE KEY UPDATE n = n + 1`, values: [key] });
      /** A store that reaches the database through a relay, with a table of counts of its own. */
      const throughRelay = async (label: string, url = MYSQL_URL) => {
        const db = uniqueMySqlDb(label);
        const direct = await openMySqlStore(db);
        const target = new URL(url);
        const relay = await mysqlRelay(target.hostname || '127.0.0.1', target.port === '' ? 3306 : Number(target.port));
        let store: MySqlStore | undefined;
        const close = async () => {
          await store?.close();
          relay.close();
          await direct.close();
          await dropMySqlDb(db);
        };
        try {
          await direct.sql.query(`CREATE TABLE ${counts} (k VARCHAR(64) PRIMARY KEY, n INT NOT NULL)`);
          const relayed = new URL(mysqlUrlFor(db, url));
          relayed.hostname = '127.0.0.1';
          relayed.port = String(relay.port);
          store = await MySqlStore.connect(relayed.toString(), { dbName: db, connectTimeout: 10, nonceTtl: 601, log: createLogger({ level: 'silent' }) });
        } catch (err) {
          await close();
          throw err;
        }
        const countOf = async (key: string) => Number((await direct.sql.query<RowDataPacket[]>(`SELECT n FROM ${counts} WHERE k = ?`, [key]))[0][0]?.n ?? 0);
        /** Transactions open on the test's database (a claim must leave none). */
        const openTransactions = async () =>
          Number((await direct.sql.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX t JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id WHERE p.DB = ?', [db]))[0][0]!.n);
        return { store, relay, countOf, openTransactions, close };
      };

      it('/health: answers lost on the way say "down" in 2 s each, and once answers come back it says "up" again, however many pings were lost', async () => {
        const { store, relay, close } = await throughRelay('health');
        try {
          expect(await store.ping()).toBe(true);
          // Connections left open and idle, as under load: every lost ping then goes out on one.
          await Promise.all(Array.from({ length: 6 }, () => store.sql.query('SELECT SLEEP(0.2)')));
          relay.swallowReplies(true);
          // More lost pings than HealthPing leaves behind: each must settle when given up on (its
          // connection destroyed), or the checks after the outage never ping again.
          for (let i = 0; i < 5; i++) {
            const started = Date.now();
            expect(await store.ping()).toBe(false);
            expect(Date.now() - started).toBeLessThan(3000);
          }
          relay.swallowReplies(false);
          let up = false;
          for (let i = 0; i < 10 && !up; i++) {
            up = await store.ping();
            if (!up) await new Promise((r) => setTimeout(r, 500));
          }
          expect(up).toBe(true);
        } finally {
          await close();
        }
      }, 40_000);

      it('closes at once while a ping waits for a lost answer', async () => {
        const { store, relay, close } = await throughRelay('health_close');
        let closed = false;
        try {
          expect(await store.ping()).toBe(true);
          relay.swallowReplies(true);
          const ping = store.ping();
          await new Promise((r) => setTimeout(r, 200));
          const started = Date.now();
          // Without the ping given up on first, pool.end() waits behind its lost answer for good.
          await close();
          closed = true;
          expect(Date.now() - started).toBeLessThan(3000);
          expect(await ping).toBe(false);
        } finally {
          if (!closed) await close();
        }
      }, 20_000);

      it('one command claims the nonce and counts; a replay claims nothing and counts nothing', async () => {
        const { store, relay, countOf, close } = await throughRelay('joined');
        try {
          const now = Math.floor(Date.now() / 1000);
          await store.rememberNonceWith('j-session', 'nonce-joined-0001', now + 300, now, { mac: 'a'.repeat(64) }, count('u'));
          const before = relay.commands();
          const first = await store.rememberNonceWith('j-session', 'nonce-joined-0002', now + 300, now, { mac: 'b'.repeat(64) }, count('u'));
          expect(relay.commands() - before).toBe(1);
          expect(first.fresh).toBe(true);
          expect(first.joined?.affectedRows).toBe(2); // the upsert's update of an existing row
          expect(await countOf('u')).toBe(2);
          const replay = await store.rememberNonceWith('j-session', 'nonce-joined-0002', now + 300, now, { mac: 'b'.repeat(64) }, count('u'));
          expect(replay).toEqual({ fresh: false, joined: null });
          expect(await countOf('u')).toBe(2);
          expect(await store.findCall('j-session', 'nonce-joined-0002', now)).toEqual({ state: 'running', claim: { mac: 'b'.repeat(64) } });
        } finally {
          await close();
        }
      });

      it('claims beyond its pool go the usual way at once: all fresh, each counted when joined and only then', async () => {
        const { store, countOf, openTransactions, close } = await throughRelay('joined_busy');
        try {
          const now = Math.floor(Date.now() / 1000);
          const claims = await Promise.all(Array.from({ length: 20 }, (_, i) => store.rememberNonceWith('j-session', `nonce-joined-busy-${i}`, now + 300, now, undefined, count('u'))));
          expect(claims.every((c) => c.fresh)).toBe(true);
          const joined = claims.filter((c) => c.joined !== null).length;
          expect(joined).toBeLessThan(20); // 20 at once, on a pool of fewer connections
          expect(await countOf('u')).toBe(joined);
          expect(await openTransactions()).toBe(0);
        } finally {
          await close();
        }
      });

      it('an answer lost after the claim was sent is Unavailable (503), never "already used"', async () => {
        const { store, relay, close } = await throughRelay('joined_lost');
        try {
          const now = Math.floor(Date.now() / 1000);
          relay.cutAfter('START TRANSACTION');
          const lost = await store.rememberNonceWith('j-session', 'nonce-joined-lost1', now + 300, now, { mac: 'c'.repeat(64) }, count('u')).catch((e: unknown) => e);
          expect(lost).toMatchObject({ code: 'Unavailable', status: 503 });
          // The next claim opens a new connection and goes through.
          expect((await store.rememberNonceWith('j-session', 'nonce-joined-lost2', now + 300, now, undefined, count('u'))).fresh).toBe(true);
        } finally {
          await close();
        }
      });

      it('a write that fails on the server is rolled back; the nonce is then claimed alone, once', async () => {
        const { store, countOf, openTransactions, close } = await throughRelay('joined_failed');
        try {
          const now = Math.floor(Date.now() / 1000);
          const failing = { sql: 'INSERT INTO no_such_table (k) VALUES (?)', values: ['x'] };
          expect(await store.rememberNonceWith('j-session', 'nonce-joined-fail1', now + 300, now, { mac: 'd'.repeat(64) }, failing)).toEqual({ fresh: true, joined: null });
          expect(await openTransactions()).toBe(0);
          expect(await store.rememberNonceWith('j-session', 'nonce-joined-fail1', now + 300, now, { mac: 'd'.repeat(64) }, count('u'))).toEqual({ fresh: false, joined: null });
          expect(await openTransactions()).toBe(0);
          expect(await countOf('u')).toBe(0);
        } finally {
          await close();
        }
      });

      it('when its own pool gets no connection (the user is at its connection limit), the nonce goes the usual way', async () => {
        const user = `simpleapi_one_${Date.now().toString(36)}`;
        const db = uniqueMySqlDb('joined_limit');
        const admin = await openMySqlStore(db);
        try {
          await admin.sql.query(`CREATE USER ?@'127.0.0.1' IDENTIFIED BY 'one-connection' WITH MAX_USER_CONNECTIONS 1`, [user]);
          await admin.sql.query(`GRANT ALL ON \`${db}\`.* TO ?@'127.0.0.1'`, [user]);
          const url = new URL(mysqlUrlFor(db));
          url.hostname = '127.0.0.1';
          url.username = user;
          url.password = 'one-connection';
          const store = await MySqlStore.connect(url.toString(), { dbName: db, connectTimeout: 10, nonceTtl: 601, log: createLogger({ level: 'silent' }) });
          try {
            const now = Math.floor(Date.now() / 1000);
            expect(await store.rememberNonceWith('j-session', 'nonce-joined-limit', now + 300, now, undefined, count('u'))).toEqual({ fresh: true, joined: null });
            expect(await store.rememberNonce('j-session', 'nonce-joined-limit', now + 300, now)).toBe(false);
          } finally {
            await store.close();
          }
        } finally {
          await admin.sql.query(`DROP USER IF EXISTS ?@'127.0.0.1'`, [user]);
          await admin.close();
          await dropMySqlDb(db);
        }
      });
    });

    it("a method's own query on ctx.sql with the database away is Unavailable (503), as the store's are", async () => {
      const { createPool } = await import('mysql2/promise');
      const { notes } = await import('../methods/notes/_notes.ts');
      const away = createPool({ host: '127.0.0.1', port: 9, user: 'root', connectTimeout: 1000 });
      try {
        const ctx = { session: { userId: 'someone' }, db: null, sql: away } as unknown as Parameters<typeof notes>[0];
        await expect(notes(ctx).list()).rejects.toMatchObject({ code: 'Unavailable', status: 503, retryAfter: 5 });
      } finally {
        await away.end();
      }
    });

    it('start-up with an unreachable database fails after the configured wait, and shows no secret of its URL, in the error or the log', async () => {
      const logs = new LogCapture();
      const started = Date.now();
      // mysql2 takes a password with an unencoded '@': all of it is hidden, not what follows the first.
      const err = await MySqlStore.connect('mysql://root:p@ss@127.0.0.1:9/x?password=zz', { dbName: 'x', connectTimeout: 1, nonceTtl: 601, log: createLogger({ level: 'info', destination: logs }) }).catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toContain('did not answer within 1 s (db.connectTimeout)');
      expect(Date.now() - started).toBeLessThan(10_000);
      const shown = `${(err as Error).message}\n${logs.raw.join('\n')}`;
      expect(shown).toContain('mysql://root:***@127.0.0.1:9/x?password=***');
      for (const secret of ['ss@', 'zz']) expect(shown).not.toContain(secret);
    });
  });
});

describe('db.url for MySQL', () => {
  it("refuses a URL missing its '//', or with a '/', '?' or '#' in its password, without showing the password (it would have become a host or the database's name)", () => {
    for (const url of ['mysql:root:s3cret@db.internal/api', 'mysql:/root:s3cret@db.internal/api', 'mysql:///root:s3cret@db.internal/api', 'mysql://root:123/s3cret@db.internal/api', 'mysql://root:se/cret@db.internal/api', 'mysql://root:?s3cret@db.internal/api', 'mysql://root:s3#cret@db.internal/api']) {
      let message = '';
      try {
        parseMySqlUrl(url, 'simpleapi');
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toContain('db.url is not of the form mysql://user:password@host:3306/database');
      for (const part of ['s3cret', 'cret', 's3']) expect(message).not.toContain(part);
    }
    expect(parseMySqlUrl('mysql://root:s3cret@db.internal/api', 'simpleapi')).toMatchObject({ host: 'db.internal', user: 'root', password: 's3cret', database: 'api' });
    expect(parseMySqlUrl('mysql://root:p@ss%2F%3F%23@[::1]:3307/api', 'simpleapi')).toMatchObject({ host: '::1', port: 3307, password: 'p@ss/?#', database: 'api' });
  });
});
