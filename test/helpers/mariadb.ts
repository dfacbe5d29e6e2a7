/**
 * A throw-away MariaDB of a test's own (mariadb-install-db into a temporary directory, mariadbd on
 * a free port of 127.0.0.1), so a test can stop and restart a database without touching the one
 * other tests share. Without the binaries the tests that need it are skipped with the reason
 * printed, except under CI=true, where that is a failure.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createConnection } from 'mysql2/promise';
import { freePort } from './server.ts';

const run = promisify(execFile);

/** The first of `names` that is an executable in PATH (or the sbin folders, which root's PATH may lack). */
function which(...names: string[]): string | null {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin', '/usr/bin'];
  for (const name of names) {
    for (const dir of dirs) {
      if (dir === '') continue;
      try {
        accessSync(join(dir, name), constants.X_OK);
        return join(dir, name);
      } catch {
        // not here
      }
    }
  }
  return null;
}

const MARIADBD = which('mariadbd', 'mysqld');
const INSTALL_DB = which('mariadb-install-db', 'mysql_install_db');

export const hasMariadbBinaries = MARIADBD !== null && INSTALL_DB !== null;

if (!hasMariadbBinaries) {
  const missing = [MARIADBD === null ? 'mariadbd' : '', INSTALL_DB === null ? 'mariadb-install-db' : ''].filter(Boolean).join(' and ');
  if (process.env.CI === 'true') throw new Error(`CI=true but ${missing} is not installed: the MariaDB outage test must run in CI (apt-get install mariadb-server)`);
  console.warn(`MariaDB outage test skipped: ${missing} not found (apt-get install mariadb-server)`);
}

export interface ThrowAwayMariaDb {
  readonly port: number;
  /** mysql://root@127.0.0.1:<port>/<db> */
  url(db: string): string;
  /** Kills the server at once, as a crash or a lost machine would. */
  kill(): Promise<void>;
  /** Starts it again on the same port and data, and waits until it answers. */
  start(): Promise<void>;
  /** Stops it and removes its data. */
  destroy(): Promise<void>;
}

/** Installs a data directory and starts mariadbd on it; resolves when it answers queries. */
export async function startThrowAwayMariaDb(): Promise<ThrowAwayMariaDb> {
  if (!hasMariadbBinaries) throw new Error('mariadbd / mariadb-install-db not installed');
  const dir = mkdtempSync(join(tmpdir(), 'simpleapi-mariadb-'));
  const datadir = join(dir, 'data');
  // Its own temporary folder: two installs sharing /tmp at once break each other's system tables.
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  const asUser = process.getuid?.() === 0 ? ['--user=root'] : [];
  try {
    await run(INSTALL_DB!, ['--no-defaults', `--datadir=${datadir}`, `--tmpdir=${tmp}`, '--auth-root-authentication-method=normal', '--skip-test-db', ...asUser], { timeout: 120_000 });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const port = await freePort();
  let proc: ChildProcess | null = null;

  const start = async () => {
    const args = [
      '--no-defaults',
      `--datadir=${datadir}`,
      `--tmpdir=${tmp}`,
      `--socket=${join(dir, 'mariadb.sock')}`,
      `--pid-file=${join(dir, 'mariadb.pid')}`,
      `--log-error=${join(dir, 'error.log')}`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      '--skip-networking=0',
      '--skip-grant-tables',
      '--skip-log-bin',
      '--innodb-buffer-pool-size=32M',
      '--innodb-log-file-size=16M',
      ...asUser,
    ];
    const child = spawn(MARIADBD!, args, { stdio: 'ignore' });
    proc = child;
    const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`mariadbd exited with ${code} while starting (see ${join(dir, 'error.log')})`))));
    exited.catch(() => {});
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const conn = await Promise.race([createConnection({ host: '127.0.0.1', port, user: 'root', connectTimeout: 1000 }), exited]);
        await conn.query('SELECT 1');
        await conn.end();
        return;
      } catch (err) {
        if (child.exitCode !== null || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  };

  const stop = async (signal: NodeJS.Signals) => {
    const child = proc;
    proc = null;
    if (child === null || child.exitCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await gone;
  };

  await start();
  return {
    port,
    url: (db) => `mysql://root@127.0.0.1:${port}/${db}`,
    kill: () => stop('SIGKILL'),
    start,
    async destroy() {
      await stop('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
