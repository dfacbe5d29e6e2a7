/**
 * `simpleapi serve --watch`: method files are found again when the methods folder changes, and
 * the new table replaces the old one at once. Requests already running finish on the code they
 * started with; a broken file logs its error and the last good table keeps serving.
 */
import { watch, type FSWatcher } from 'node:fs';
import type { Logger } from 'pino';
import { createAjv, discoverMethods, type MethodTable } from './core/registry.ts';

/** Wait this long after the last change before reloading: editors write a file in several steps. */
const SETTLE_MS = 150;

/**
 * Watches `dir` and calls `swap` with each new table. A file that does not load or check keeps
 * its last good version (or stays out, when it never had one), and its error is logged.
 *
 * @example const stop = watchMethods(dir, initialTable, log, (table) => app.setMethods(table))
 */
export function watchMethods(dir: string, initial: MethodTable, log: Logger, swap: (table: MethodTable) => void): () => void {
  let current = initial;
  let generation = 0;
  let timer: NodeJS.Timeout | undefined;
  let running = Promise.resolve();
  const reload = () => {
    running = running.then(async () => {
      generation++;
      try {
        // A fresh module URL per generation: Node caches ES modules by URL for the life of the process.
        const table = await discoverMethods(dir, createAjv(), `watch=${generation}`, (error, name) => {
          const lastGood = current[name];
          log.error({ err: { message: error.message } }, lastGood === undefined ? `${name} is broken and not served` : `${name} is broken: its last good version keeps serving`);
          return lastGood;
        });
        current = table;
        swap(table);
        log.info({ methods: Object.keys(table).length, generation }, 'methods reloaded');
      } catch (err) {
        log.error({ err: { message: (err as Error).message } }, 'methods not reloaded: the last good version keeps serving');
      }
    });
  };
  const watcher: FSWatcher = watch(dir, { recursive: true }, (_event, file) => {
    if (file !== null && !/\.(ts|js)$/.test(file)) return;
    clearTimeout(timer);
    timer = setTimeout(reload, SETTLE_MS);
  });
  watcher.on('error', (err) => log.error({ err: { message: err.message } }, 'watching the methods folder failed'));
  log.info({ dir }, 'watching the methods folder for changes');
  return () => {
    clearTimeout(timer);
    watcher.close();
  };
}
