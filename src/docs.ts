/**
 * GET /docs: the API console, a page served by the server itself (no CDN). Its methods come from
 * `rpc.discover`, and it calls them with the project's client, bundled for the browser once, on
 * first request, by esbuild.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Context } from 'koa';

const here = (file: string) => fileURLToPath(new URL(`./docs/${file}`, import.meta.url));
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

async function bundleClient(): Promise<string> {
  const { build } = await import('esbuild');
  const out = await build({
    entryPoints: [fileURLToPath(new URL('./client/index.ts', import.meta.url))],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    minify: true,
    // The Unix-socket path of the client loads node:http on demand; a browser never takes it.
    external: ['node:http'],
    logLevel: 'silent',
  });
  return out.outputFiles[0]!.text;
}

/** Makes the handler for /docs and its files; false when the path is not the console's. */
export function createConsole(endpointPath: string): (ctx: Context) => Promise<boolean> {
  const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const page = readFileSync(here('console.html'), 'utf8').replace('<meta charset="utf-8">', `<meta charset="utf-8">\n<meta name="simpleapi-endpoint" content="${escape(endpointPath)}">`);
  const files: Record<string, { type: string; body: string }> = {
    '/docs': { type: 'text/html; charset=utf-8', body: page },
    '/docs/': { type: 'text/html; charset=utf-8', body: page },
    '/docs/console.js': { type: 'text/javascript; charset=utf-8', body: readFileSync(here('console.js'), 'utf8') },
    '/docs/console.css': { type: 'text/css; charset=utf-8', body: readFileSync(here('console.css'), 'utf8') },
  };
  let client: Promise<string> | undefined;
  return async (ctx) => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return false;
    let file = files[ctx.path];
    if (ctx.path === '/docs/client.js') {
      client ??= bundleClient();
      file = { type: 'text/javascript; charset=utf-8', body: await client };
    }
    if (file === undefined) return false;
    ctx.status = 200;
    ctx.type = file.type;
    ctx.set('Content-Security-Policy', CSP);
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Cache-Control', 'no-cache');
    ctx.body = file.body;
    return true;
  };
}
