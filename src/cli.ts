/**
 * The `simpleapi` command: serve, methods, call, createuser. Exit status 2 for a usage or config
 * mistake, 1 for anything else that failed.
 */
import cluster from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { ConfigError, loadConfig, optionsHelp, parseArgs, type Config } from './config.ts';
import { createLogger } from './log.ts';
import { discoverMethods, RegistryError } from './core/registry.ts';
import { startServer } from './server.ts';
import { openStore } from './store/index.ts';
import { nowSeconds } from './core/clock.ts';

const COMMANDS: Record<string, { summary: string; flags: readonly string[] }> = {
  serve: { summary: 'serve the API (what `npm start` runs); --watch reloads method files as they change', flags: ['watch?'] },
  new: { summary: 'write methods/a/b/c.ts and its test from a template: simpleapi new a.b.c [--public]', flags: ['public?'] },
  types: { summary: 'write the TypeScript map of every method for the client: simpleapi types --out=client-types.ts', flags: ['out'] },
  methods: { summary: 'list the methods found in the methods folder', flags: [] },
  call: { summary: 'call a method: simpleapi call <method> [json-params] --url=... [--user=... --password=...]', flags: ['url', 'user', 'password', 'unix'] },
  createuser: { summary: 'create an account in the configured database and print its generated password', flags: [] },
};

function usage(): string {
  const commands = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(11)} ${c.summary}`);
  return [
    'Usage: simpleapi <command> [options]',
    '',
    'Commands:',
    ...commands,
    '',
    'Options (defaults < server.conf.json < SIMPLEAPI_* environment < flags; --name=value or --name value):',
    optionsHelp(),
    '',
    'call takes also: --url=<http://host:port/> or --unix=<socket path>, --user=<user_id>, --password=<password>',
  ].join('\n');
}

/** Runs the CLI; resolves to the process exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  const [first, ...rest] = argv;
  const command = first === undefined || first.startsWith('-') ? 'serve' : first;
  const args = first === undefined || first.startsWith('-') ? argv : rest;
  const spec = COMMANDS[command];
  if (spec === undefined) {
    process.stderr.write(`simpleapi: unknown command '${command}'\n\n${usage()}\n`);
    return 2;
  }
  let config: ReturnType<typeof loadConfig>;
  let parsed;
  try {
    parsed = parseArgs(args, spec.flags);
    if (parsed.help) {
      process.stdout.write(`${usage()}\n`);
      return 0;
    }
    config = loadConfig({ argvOptions: parsed.options, configPath: parsed.configPath });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`simpleapi: ${err.message}\nRun 'simpleapi --help' for the options.\n`);
      return 2;
    }
    throw err;
  }
  try {
    switch (command) {
      case 'serve':
        return await serve(config, parsed.extra.watch === 'true');
      case 'new': {
        const { newMethod } = await import('./cli-scaffold.ts');
        return newMethod(config, parsed.positional, parsed.extra);
      }
      case 'types': {
        const { writeTypes } = await import('./cli-scaffold.ts');
        return await writeTypes(config, parsed.extra);
      }
      case 'methods':
        return await listMethods(config);
      case 'call': {
        const { callCommand } = await import('./cli-call.ts');
        return await callCommand(parsed.positional, parsed.extra, config);
      }
      case 'createuser':
        return await createUser(config, parsed.positional);
    }
  } catch (err) {
    if (err instanceof RegistryError || err instanceof ConfigError) {
      process.stderr.write(`simpleapi: ${err.message}\n`);
      return err instanceof ConfigError ? 2 : 1;
    }
    process.stderr.write(`simpleapi: ${(err as Error).message}\n`);
    return 1;
  }
  return 0;
}

async function serve(config: ReturnType<typeof loadConfig>, watchFiles = false): Promise<number> {
  if (config.port < 0 && config.socket === '') throw new ConfigError('--port=-1 serves no TCP: give --socket too');
  if (watchFiles && config.workers > 1) throw new ConfigError('--watch serves one process: leave --workers at 1');
  if (config.metrics.enabled && config.workers > 1 && config.metrics.port < 0) {
    throw new ConfigError('--metrics with --workers needs --metrics-port: the primary process serves the sum of its workers there');
  }
  if (config.workers > 1 && cluster.isPrimary) return runPrimary(config);
  const log = createLogger({ level: config.logLevel, base: { pid: process.pid, ...(cluster.isWorker ? { worker: cluster.worker!.id } : {}) } });
  const store = await openStore(config, log);
  let server;
  try {
    server = await startServer({ config, store, log });
  } catch (err) {
    await store.close();
    throw err;
  }
  const stopWatching = watchFiles ? (await import('./watch.ts')).watchMethods(config.methodsDir, server.methods, log, (table) => server.setMethods(table)) : () => {};
  // Handlers first: the "listening" line below may reach a supervisor before this function
  // returns (pino writes from the thread pool), and it may signal at once.
  const stopped = new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) process.exit(1);
      stopping = true;
      log.info({ signal }, 'shutting down');
      stopWatching();
      void server
        .close()
        .then(() => store.close())
        .then(() => {
          log.flush();
          // A worker's IPC channel to the primary would keep it alive.
          if (cluster.isWorker) cluster.worker!.disconnect();
          resolve(0);
        });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
  const methodCount = Object.keys(server.methods).length;
  log.info(
    {
      url: server.url,
      socket: server.socketPath,
      methods: methodCount,
      store: store.description,
      hmacScheme: config.hmac.scheme,
      config: config.configFile ?? null,
    },
    `listening on ${[server.url, server.socketPath].filter(Boolean).join(' and ')} with ${methodCount} methods`,
  );
  if (!store.shared) {
    log.info('store: embedded in-process store (no --db-url): sessions live in this process only and are not shared with other instances; ctx.db is null');
  }
  if (config.hmac.scheme === 'v1') {
    log.warn('hmac.scheme is v1: signatures use the user_id as the key, which anyone who knows the user_id can forge; use v2 unless old clients need v1');
  }
  log.flush(); // the start-up lines now, not with the next buffer
  return stopped;
}

async function runPrimary(config: Config): Promise<number> {
  const log = createLogger({ level: config.logLevel });
  log.info({ workers: config.workers }, `starting ${config.workers} workers`);
  if (config.metrics.enabled) {
    const { serveClusterMetrics } = await import('./http/metrics.ts');
    const metrics = await serveClusterMetrics({ port: config.metrics.port, host: config.host });
    metrics.unref();
    log.info({ metrics: metrics.address() }, "metrics: the sum of the workers' metrics at /metrics");
  }
  for (let i = 0; i < config.workers; i++) cluster.fork();
  let stopping = false;
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    log.error({ worker: worker.id, code, signal }, 'a worker died; starting another');
    cluster.fork();
  });
  return new Promise((resolve) => {
    const stop = () => {
      if (stopping) process.exit(1);
      stopping = true;
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
      const wait = setInterval(() => {
        if (Object.keys(cluster.workers ?? {}).length === 0) {
          clearInterval(wait);
          resolve(0);
        }
      }, 50);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

async function listMethods(config: Config): Promise<number> {
  const methods = await discoverMethods(config.methodsDir);
  const names = Object.keys(methods).sort();
  const width = Math.max(6, ...names.map((n) => n.length));
  process.stdout.write(`${'METHOD'.padEnd(width)}  AUTH     DESCRIPTION\n`);
  for (const name of names) {
    const m = methods[name]!;
    process.stdout.write(`${name.padEnd(width)}  ${m.auth.padEnd(7)}  ${m.description}\n`);
  }
  return 0;
}

async function createUser(config: Config, positional: string[]): Promise<number> {
  const userId = positional[0];
  if (userId === undefined || positional.length > 1) {
    process.stderr.write('usage: simpleapi createuser <user_id>\n');
    return 2;
  }
  if (userId.length < 1 || userId.length > 254) {
    process.stderr.write('simpleapi: user_id must be 1 to 254 characters\n');
    return 2;
  }
  if (config.db.url === '') {
    process.stderr.write(
      'simpleapi: no database is configured (--db-url). A running server without one keeps its accounts in its own\n' +
        "process memory, which another process cannot reach: create the account with the 'account.create' method instead.\n",
    );
    return 1;
  }
  const log = createLogger({ level: 'warn', destination: process.stderr });
  const store = await openStore(config, log);
  try {
    const { hashPassword } = await import('./core/passwords.ts');
    const { userKeyOf } = await import('./core/accounts.ts');
    const password = randomBytes(18).toString('base64url');
    await store.createAccount({ userKey: userKeyOf(userId), userId, password: await hashPassword(password), created: nowSeconds() });
    process.stdout.write(`created ${userId}\npassword: ${password}\n(shown once; it is stored only as a hash)\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`simpleapi: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await store.close();
  }
}
