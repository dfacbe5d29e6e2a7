/**
 * `simpleapi serve --watch`: method files are found again when the methods folder changes, and
 * the new table replaces the old one at once. Requests already running finish on the code they
 * started with; a broken file logs its error and the last good table keeps serving.
 *
 * chokidar watches the folder: Node's own recursive watch on Linux follows each file's inode, so
 * after a rename-over save (an editor's safe write, `sed -i`) it never sees that file change again.
 * Every reload imports every file under the folder afresh, helpers (`_shared.ts`) included: a
 * method sees a change to a helper it imports. Files outside the folder and packages are shared.
 */
import { register } from 'node:module';
import { pathToFileURL } from 'node:url';
import chokidar from 'chokidar';
import type { Logger } from 'pino';
import { createAjv, discoverMethods, type MethodTable } from '../core/registry.ts';
import { methodCount } from './startup.ts';

/** Wait this long after the last change before reloading: editors write a file in several steps. */
const SETTLE_MS = 150;

/**
 * A module resolve hook: an import made by a file loaded as `...?watch=N` that lands inside the
 * methods folder gets `?watch=N` too. Node caches ES modules by URL, so without it a reloaded
 * method would keep the helper it imported the first time.
 */
function hookSource(root: string): string {
  return `const root = ${JSON.stringify(root)};
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  const tag = context.parentURL === undefined ? null : /[?&](watch=\\d+)/.exec(context.parentURL);
  if (tag === null || !result.url.startsWith(root) || result.url.includes('?') || result.url.includes('/node_modules/')) return result;
  return { ...result, url: result.url + '?' + tag[1] };
}
`;
}

const hooked = new Set<string>();
function reloadHelpersUnder(dir: string): void {
  const root = `${pathToFileURL(dir).href}/`;
  if (hooked.has(root)) return;
  hooked.add(root);
  register(`data:text/javascript,${encodeURIComponent(hookSource(root))}`);
}

/**
 * Watches `dir` and calls `swap` with each new table. A file that does not load or check keeps
 * its last good version (or stays out, when it never had one), and its error is logged.
 * `builtins` are the built-in names the server adds, so the logged count is the one start-up gives.
 *
 * @example const stop = watchMethods(dir, initialTable, log, (table) => app.setMethods(table))
 */
export function watchMethods(dir: string, initial: MethodTable, log: Logger, swap: (table: MethodTable) => void, builtins: readonly string[] = []): () => void {
  reloadHelpersUnder(dir);
  let current = initial;
  let generation = 0;
  let timer: NodeJS.Timeout | undefined;
  let running = Promise.resolve();
  const reload = () => {
    running = running.then(async () => {
      generation++;
      try {
        // A fresh module URL per generation: Node caches ES modules by URL for the life of the process.
        const table = await discoverMethods(dir, createAjv(), {
          version: `watch=${generation}`,
          onBrokenFile: (error, name) => {
            const lastGood = current[name];
            log.error({ err: { message: error.message } }, lastGood === undefined ? `${name} is broken and not served` : `${name} is broken: its last good version keeps serving`);
            return lastGood;
          },
        });
        current = table;
        swap(table);
        const count = methodCount(table, builtins);
        log.info({ methods: count.total, methodFiles: count.files, generation }, `methods reloaded: ${count.text}`);
      } catch (err) {
        log.error({ err: { message: (err as Error).message } }, 'methods not reloaded: the last good version keeps serving');
      }
    });
  };
  const watcher = chokidar.watch(dir, {
    ignoreInitial: true,
    ignored: (path, stats) => path.includes('/node_modules') || (stats?.isFile() === true && !/\.(ts|js)$/.test(path)),
  });
  watcher.on('all', () => {
    clearTimeout(timer);
    timer = setTimeout(reload, SETTLE_MS);
  });
  watcher.on('error', (err) => log.error({ err: { message: (err as Error).message } }, 'watching the methods folder failed'));
  // Changes are seen once chokidar has read the folder: say so only then.
  watcher.once('ready', () => log.info({ dir }, 'watching the methods folder for changes'));
  return () => {
    clearTimeout(timer);
    void watcher.close();
  };
}
