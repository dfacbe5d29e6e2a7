/**
 * GET /docs: the API console, a page served by the server itself (no CDN). Its methods come from
 * `rpc.discover`, its landing page from /docs/info.json (the facts this server was started with),
 * and it calls methods with the project's client, bundled for the browser once, on first request,
 * by esbuild. It also answers /favicon.ico, which every browser asks for.
 */
import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Context } from 'koa';
import type { Scheme } from '../core/signing.ts';

const here = (file: string) => fileURLToPath(new URL(`./console/${file}`, import.meta.url));
/** docs/protocol.md of the project; read on each request, so an edit shows without a restart. */
const PROTOCOL_FILE = fileURLToPath(new URL('../../docs/protocol.md', import.meta.url));
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** What the landing page says about this server. */
export interface ConsoleOptions {
  /** Path of the POST endpoint. */
  path: string;
  /** Request signing scheme (hmac.scheme). */
  scheme: Scheme;
  /** What the store is, as its `description` says ('embedded', 'mongodb', ...). */
  store: string;
  /** True when other instances share the store's accounts and sessions. */
  shared: boolean;
  /** Where background jobs run: on the database (any instance) or in this process. */
  jobs: 'database' | 'in-process';
  version: string;
  /** v2: seconds a request timestamp may differ from the server clock. */
  window?: number;
  /** Seconds a session lives after its last signed use. */
  sessionTtl?: number;
}

async function bundleClient(): Promise<string> {
  const { build } = await import('esbuild');
  const out = await build({
    entryPoints: [fileURLToPath(new URL('../client/index.ts', import.meta.url))],
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

// The console's mark: a rounded square in the console's accent colour with white braces.
const ACCENT = [0x30, 0x56, 0xd3] as const;
const ICON_ROWS = [
  '..############..',
  '.##############.',
  '################',
  '#####ww##ww#####',
  '####w######w####',
  '####w######w####',
  '####w######w####',
  '###w########w###',
  '####w######w####',
  '####w######w####',
  '####w######w####',
  '#####ww##ww#####',
  '################',
  '################',
  '.##############.',
  '..############..',
];
const FAVICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#3056d3"/><path d="M12 8c-2 0-3 1-3 3v3c0 1-1 2-2 2 1 0 2 1 2 2v3c0 2 1 3 3 3M20 8c2 0 3 1 3 3v3c0 1 1 2 2 2-1 0-2 1-2 2v3c0 2-1 3-3 3" fill="none" stroke="#fff" stroke-width="2.4" stroke-linecap="round" stroke-linejoin="round"/></svg>\n`;

/** A 16×16 32-bit ICO (BMP inside, so no image library): what /favicon.ico answers. */
function faviconIco(): Buffer {
  const size = 16;
  const pixels = Buffer.alloc(size * size * 4);
  for (let y = 0; y < size; y++) {
    const row = ICON_ROWS[size - 1 - y]!; // BMP rows go bottom-up
    for (let x = 0; x < size; x++) {
      const c = row[x];
      const [r, g, b, a] = c === '#' ? [...ACCENT, 255] : c === 'w' ? [255, 255, 255, 255] : [0, 0, 0, 0];
      pixels.set([b, g, r, a], (y * size + x) * 4);
    }
  }
  const mask = Buffer.alloc(size * 4); // AND mask, 1 bit per pixel, rows padded to 4 bytes; alpha decides
  const info = Buffer.alloc(40);
  info.writeUInt32LE(40, 0);
  info.writeInt32LE(size, 4);
  info.writeInt32LE(size * 2, 8); // ICO bitmaps count the mask in the height
  info.writeUInt16LE(1, 12);
  info.writeUInt16LE(32, 14);
  info.writeUInt32LE(pixels.length + mask.length, 20);
  const image = Buffer.concat([info, pixels, mask]);
  const header = Buffer.alloc(6 + 16);
  header.writeUInt16LE(1, 2); // type: icon
  header.writeUInt16LE(1, 4); // one image
  header.writeUInt8(size, 6);
  header.writeUInt8(size, 7);
  header.writeUInt16LE(1, 10);
  header.writeUInt16LE(32, 12);
  header.writeUInt32LE(image.length, 14);
  header.writeUInt32LE(header.length, 18);
  return Buffer.concat([header, image]);
}

type File = { type: string; body: string | Buffer; status?: number };

/** Makes the handler for /docs, its files and /favicon.ico; false when the path is not the console's. */
export function createConsole(options: ConsoleOptions): (ctx: Context) => Promise<boolean> {
  const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const page = readFileSync(here('console.html'), 'utf8').replace('<meta charset="utf-8">', `<meta charset="utf-8">\n<meta name="simpleapi-endpoint" content="${escape(options.path)}">`);
  const info = {
    name: 'simpleapi',
    version: options.version,
    endpoint: options.path,
    store: options.store,
    shared: options.shared,
    scheme: options.scheme,
    window: options.window ?? null,
    sessionTtl: options.sessionTtl ?? null,
    jobs: options.jobs,
    protocol: '/docs/protocol.md',
  };
  const js = 'text/javascript; charset=utf-8';
  const html = 'text/html; charset=utf-8';
  const files: Record<string, File> = {
    '/docs': { type: html, body: page },
    '/docs/': { type: html, body: page },
    '/docs/console.js': { type: js, body: readFileSync(here('console.js'), 'utf8') },
    '/docs/markdown.js': { type: js, body: readFileSync(here('markdown.js'), 'utf8') },
    '/docs/console.css': { type: 'text/css; charset=utf-8', body: readFileSync(here('console.css'), 'utf8') },
    '/docs/info.json': { type: 'application/json; charset=utf-8', body: `${JSON.stringify(info)}\n` },
    '/docs/favicon.svg': { type: 'image/svg+xml', body: FAVICON_SVG },
    '/favicon.ico': { type: 'image/x-icon', body: faviconIco() },
  };
  let client: Promise<string> | undefined;
  return async (ctx) => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return false;
    let file = files[ctx.path];
    if (ctx.path === '/docs/client.js') {
      client ??= bundleClient();
      file = { type: js, body: await client };
    } else if (ctx.path === '/docs/protocol.md') {
      file = await protocolFile();
    } else if (ctx.path === '/docs/protocol') {
      // The console renders the protocol in its own page.
      ctx.redirect('/docs#/protocol');
      return true;
    }
    if (file === undefined) return false;
    ctx.status = file.status ?? 200;
    ctx.type = file.type;
    ctx.set('Content-Security-Policy', CSP);
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Cache-Control', 'no-cache');
    ctx.body = file.body;
    return true;
  };
}

async function protocolFile(): Promise<File> {
  try {
    return { type: 'text/markdown; charset=utf-8', body: await readFile(PROTOCOL_FILE, 'utf8') };
  } catch {
    return { type: 'text/plain; charset=utf-8', status: 404, body: 'docs/protocol.md is not in this installation of simpleapi.\n' };
  }
}
