/**
 * The `simpleapi` command: serve, new, types, methods, call, createuser, help. Exit status 2 for a
 * usage or config mistake, 1 for anything else that failed.
 */
import cluster from 'node:cluster';
import closeWithGrace from 'close-with-grace';
import { randomBytes } from 'node:crypto';
import { ConfigError, loadConfig, parseArgs, suggest, type Config } from '../config.ts';
import { commandUsage, usage as fullUsage, version, type CommandSpec } from './help.ts';
import { createLogger, resolveLogFormat } from '../log.ts';
import { discoverMethods, RegistryError } from '../core/registry.ts';
import { startServer } from '../server.ts';
import { openStore } from '../store/index.ts';
import { nowSeconds } from '../core/clock.ts';
import { builtinNames, startupSummary } from './startup.ts';

const COMMANDS: Record<string, CommandSpec> = {
  serve: { summary: 'serve the API (what `npm start` runs); --watch reloads method files as they change', flags: ['watch?'] },
  new: { summary: 'write methods/a/b/c.ts and its test from a template: simpleapi new a.b.c [--public]', flags: ['public?'] },
  types: { summary: 'write the TypeScript map of every method for the client: simpleapi types --out=client-types.ts', flags: ['out'] },
  methods: { summary: 'list the methods found in the methods folder', flags: [] },
  call: { summary: 'call a method: simpleapi call <method> [json-params] --url=... [--user=... [--password-stdin]]', flags: ['url', 'user', 'password', 'password-stdin?', 'unix'] },
  createuser: { summary: 'create an account in the configured database and print its generated password', flags: [] },
};

function usage(): string {
  return fullUsage(COMMANDS);
}

function unknownCommand(command: string): number {
  const hint = suggest(command, [...Object.keys(COMMANDS), 'help', 'version']);
  process.stderr.write(`simpleapi: unknown command '${command}'${hint === undefined ? '' : ` (did you mean '${hint}'?)`}\nRun 'simpleapi help' for the commands.\n`);
  return 2;
}

/** `simpleapi help [command]`. */
function help(topic: readonly string[]): number {
  if (topic.length === 0 || topic[0] === 'help') {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  const spec = COMMANDS[topic[0]!];
  if (spec === undefined || topic.length > 1) return unknownCommand(topic.join(' '));
  process.stdout.write(`${commandUsage(topic[0]!, spec)}\n`);
  return 0;
}

/** Runs the CLI; resolves to the process exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  const [first, ...rest] = argv;
  const command = first === undefined || first.startsWith('-') ? 'serve' : first;
  const args = first === undefined || first.startsWith('-') ? argv : rest;
  if (command === 'help') return help(args);
  if (command === 'version') {
    process.stdout.write(`simpleapi ${version()} (Node ${process.version})\n`);
    return 0;
  }
  const spec = COMMANDS[command];
  if (spec === undefined) return unknownCommand(command);
  let config: ReturnType<typeof loadConfig>;
  let parsed;
  try {
    parsed = parseArgs(args, spec.flags);
    if (parsed.version) {
      process.stdout.write(`simpleapi ${version()} (Node ${process.version})\n`);
      return 0;
    }
    if (parsed.help) {
      // `simpleapi --help` is the whole text; `simpleapi <command> --help` that command's.
      process.stdout.write(`${command === first ? commandUsage(command, spec) : usage()}\n`);
      return 0;
    }
    config = loadConfig({ argvOptions: parsed.options, configPath: parsed.configPath });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`simpleapi: ${err.message}\nRun 'simpleapi help ${command}' for its options.\n`);
      return 2;
    }
    throw err;
  }
  try {
    switch (command) {
      case 'serve':
        return await serve(config, parsed.extra.watch === 'true');
      case 'new': {
        const { newMethod } = await import('./scaffold.ts');
        return newMethod(config, parsed.positional, parsed.extra);
      }
      case 'types': {
        const { writeTypes } = await import('./scaffold.ts');
        return await writeTypes(config, parsed.extra);
      }
      case 'methods':
        return await listMethods(config);
      case 'call': {
        const { callCommand } = await import('./call.ts');
        // --socket is a server option; call is told it was given, to say so.
        const socket: Record<string, string> = 'socket' in parsed.options ? { socket: String(parsed.options.socket) } : {};
        return await callCommand(parsed.positional, { ...parsed.extra, ...socket }, config);
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
  if (config.workers > 1 && config.db.url === '') {
    // Each worker would have its own embedded store: a login made on one is unknown to the next.
    throw new ConfigError(
      `--workers=${config.workers} needs a shared database: sessions, nonces and login limits would live in each worker's own memory, ` +
        'so logins and signed calls would fail on every other request. Give --db-url=mongodb://... or --db-url=mysql://..., or leave --workers at 1',
    );
  }
  if (config.workers > 1 && cluster.isPrimary) return runPrimary(config);
  try {
    return await serveOne(config, watchFiles);
  } catch (err) {
    // A worker's IPC channel to the primary would keep it alive, and the primary waiting.
    if (cluster.isWorker) cluster.worker!.disconnect();
    throw err;
  }
}

async function serveOne(config: ReturnType<typeof loadConfig>, watchFiles: boolean): Promise<number> {
  const log = createLogger({
    level: config.logLevel,
    format: resolveLogFormat(config.logFormat),
    base: { pid: process.pid, ...(cluster.isWorker ? { worker: cluster.worker!.id } : {}) },
  });
  // Watch mode imports file by file: its reloads do, and one way of loading is easier to reason about.
  const methods = watchFiles ? undefined : await discoverMethods(config.methodsDir, undefined, { bundle: { onFallback: (why) => log.debug(`method files imported one by one: ${why}`) } });
  const store = await openStore(config, log);
  let server;
  try {
    server = await startServer({ config, store, log, ...(methods === undefined ? {} : { methods }) });
  } catch (err) {
    await store.close();
    throw err;
  }
  const builtins = builtinNames(server.methods);
  const stopWatching = watchFiles ? (await import('./watch.ts')).watchMethods(config.methodsDir, server.methods, log, (table) => server.setMethods(table), builtins) : () => {};
  // Handlers first: the "listening" line below may reach a supervisor before this function
  // returns (pino writes from the thread pool), and it may signal at once. close-with-grace takes
  // the signals and, as important, an uncaught exception or unhandled rejection: either is logged
  // in full and the server still drains before it exits 1. A second signal exits at once.
  const stopped = new Promise<number>((resolve) => {
    closeWithGrace(
      {
        delay: (config.shutdownGrace + 5) * 1000,
        logger: { error: (message: string) => log.error(message) },
        onSecondSignal: (signal: string) => log.warn({ signal }, 'a second signal: exiting at once'),
        onSecondError: (err: unknown) => log.fatal({ err }, 'another uncaught error while shutting down'),
        onTimeout: () => log.error('shutting down took too long: exiting'),
      },
      async ({ signal, err }) => {
        if (err !== undefined) log.fatal({ err }, 'an uncaught error: shutting down (a method left a promise unhandled or threw outside a call)');
        else log.info({ signal }, 'shutting down');
        stopWatching();
        await server.close();
        await store.close();
        log.flush();
        // A worker's IPC channel to the primary would keep it alive.
        if (cluster.isWorker) cluster.worker!.disconnect();
        resolve(err === undefined ? 0 : 1);
      },
    );
  });
  const summary = startupSummary({
    url: server.url,
    socketPath: server.socketPath,
    docs: config.docs,
    methods: server.methods,
    store: store.description,
    shared: store.shared,
    dbName: config.db.name,
    scheme: config.hmac.scheme,
    jobs: store.startJobRunner === undefined ? 'in-process' : 'database',
    configFile: config.configFile ?? null,
  });
  log.info(summary.fields, summary.message);
  if (!store.shared) {
    log.info('store: embedded in-process store (no --db-url): sessions live in this process only and are not shared with other instances; ctx.db is null');
  }
  if (config.hmac.scheme === 'v1') {
    log.warn('hmac.scheme is v1: signatures use the user_id as the key, which anyone who knows the user_id can forge; use v2 unless old clients need v1');
  }
  log.flush(); // the start-up lines now, not with the next buffer
  return stopped;
}

/** Re-forks back off from this delay, doubling up to the cap, while workers keep dying. */
const REFORK_DELAY_MS = 250;
const REFORK_DELAY_MAX_MS = 30_000;
/** A worker that served this long before dying resets the back-off. */
const HEALTHY_MS = 60_000;

/**
 * The cluster primary: forks the workers and replaces one that dies, backing off while they keep
 * dying. A worker that dies before it ever listened (the port is taken, the database cannot be
 * reached, a method file is broken) while none is serving is a start-up failure: the others are
 * stopped and the primary exits 1 instead of forking the same failure forever.
 */
async function runPrimary(config: Config): Promise<number> {
  const log = createLogger({ level: config.logLevel, format: resolveLogFormat(config.logFormat) });
  if (config.socket !== '') {
    const { checkSocketPath } = await import('../http/listen.ts');
    // The workers share one socket the primary holds: check the path once, here.
    if (await checkSocketPath(config.socket)) (await import('node:fs')).unlinkSync(config.socket);
  }
  log.info({ workers: config.workers }, `starting ${config.workers} workers`);
  if (config.metrics.enabled) {
    const { serveClusterMetrics } = await import('../http/metrics.ts');
    const metrics = await serveClusterMetrics({ port: config.metrics.port, host: config.host });
    metrics.unref();
    log.info({ metrics: metrics.address() }, "metrics: the sum of the workers' metrics at /metrics");
  }
  const listening = new Set<number>();
  const startedAt = new Map<number, number>();
  let everServed = false;
  let failures = 0;
  let stopping = false;
  let giveUp: (code: number) => void = () => {};
  const fork = () => {
    const worker = cluster.fork();
    startedAt.set(worker.id, Date.now());
  };
  cluster.on('listening', (worker) => {
    listening.add(worker.id);
    everServed = true;
  });
  cluster.on('exit', (worker, code, signal) => {
    const served = listening.delete(worker.id);
    const lived = Date.now() - (startedAt.get(worker.id) ?? Date.now());
    startedAt.delete(worker.id);
    if (stopping) return;
    if (!served && !everServed && listening.size === 0) {
      log.error({ worker: worker.id, code, signal }, 'a worker could not start (its error is above): stopping the others and exiting');
      giveUp(1);
      return;
    }
    failures = served && lived >= HEALTHY_MS ? 1 : failures + 1;
    const delay = Math.min(REFORK_DELAY_MAX_MS, REFORK_DELAY_MS * 2 ** (failures - 1));
    log.error({ worker: worker.id, code, signal, restartInMs: delay }, served ? 'a worker died; starting another' : 'a worker could not start; trying again');
    setTimeout(() => {
      if (!stopping) fork();
    }, delay);
  });
  for (let i = 0; i < config.workers; i++) fork();
  return new Promise((resolve) => {
    const stop = (code: number) => {
      if (stopping) process.exit(1);
      stopping = true;
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
      const wait = setInterval(() => {
        if (Object.keys(cluster.workers ?? {}).length === 0) {
          clearInterval(wait);
          log.flush();
          resolve(code);
        }
      }, 50);
    };
    giveUp = stop;
    process.once('SIGTERM', () => stop(0));
    process.once('SIGINT', () => stop(0));
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
    const { hashPassword } = await import('../core/passwords.ts');
    const { checkNewUserId, userKeyOf } = await import('../core/user-id.ts');
    checkNewUserId(userId);
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
