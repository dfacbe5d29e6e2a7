/**
 * The API console in a real browser: Debian's Chromium driven by playwright-core, against a real
 * server. Screenshots go to test-artifacts/. Without a Chromium the test is skipped with the
 * reason printed, except under CI=true, where that is a failure (.ci/run installs it).
 *
 * The steps share one page and run in order, as a person would use the console: the landing page,
 * the method list, a public call and its curl, account errors, signed calls, a stream, a background
 * job, then a server restart under a signed-in page.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser, type BrowserContext, type Page, type Route } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, SHIPPED_METHODS, startTestServer, type TestServer } from './helpers/server.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) {
  if (process.env.CI === 'true') throw new Error(`CI=true but there is no Chromium at ${CHROMIUM}: .ci/run installs Debian's chromium`);
  console.warn(`Browser test skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
}
const ARTIFACTS = resolve(ROOT, 'test-artifacts');
const PROTOCOL_DOC = resolve(ROOT, 'docs/protocol.md');
const USER = 'console-user@example.com';
const PASSWORD = 'console-password';

describe.skipIf(!hasChromium)('the console at /docs, in Chromium', () => {
  let server: TestServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let origin: string;
  const failures: string[] = [];
  const foreign: string[] = [];
  const shot = (name: string) => page.screenshot({ path: resolve(ARTIFACTS, `${name}.png`), fullPage: true });
  const call = async () => {
    await page.click('#call-form button[type="submit"]');
  };
  const signIn = async (action: 'create' | 'login') => {
    await page.fill('#account input[name="user_id"]', USER);
    await page.fill('#account input[name="password"]', PASSWORD);
    await page.click(`#account button[data-action="${action}"]`);
    await page.waitForFunction(() => document.querySelector('#who')?.textContent?.startsWith('signed in as'));
  };
  /** Stops this server and starts a fresh one (an empty embedded store) on the same port. */
  const restart = async () => {
    const port = Number(new URL(server.url).port);
    await server.close(0);
    server = await startTestServer({ methodsDir: SHIPPED_METHODS, port });
  };

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    server = await startTestServer({ methodsDir: SHIPPED_METHODS });
    origin = new URL(server.url).origin;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
    page = await context.newPage();
    page.on('pageerror', (err) => failures.push(err.message));
    page.on('requestfailed', (req) => {
      // A stream the console stops on purpose is an aborted request; anything else is a failure.
      if (!(req.failure()?.errorText === 'net::ERR_ABORTED' && req.method() === 'POST')) failures.push(`${req.url()} ${req.failure()?.errorText}`);
    });
    page.on('request', (req) => {
      if (!req.url().startsWith(`${origin}/`) && !req.url().startsWith('data:')) foreign.push(req.url());
    });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close(0);
  });

  it('shows a loading indicator, then a landing page with the server, store, signing and how to sign in', async () => {
    // Hold rpc.discover until the indicator has been seen.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const hold = async (route: Route) => {
      if (route.request().postData()?.includes('rpc.discover')) await held;
      await route.continue();
    };
    await page.route(server.url, hold);
    const notFound: string[] = [];
    const onResponse = (res: { status(): number; url(): string }) => {
      if (res.status() >= 400) notFound.push(`${res.status()} ${res.url()}`);
    };
    page.on('response', onResponse);
    await page.goto(new URL('/docs', server.url).href);
    expect(await page.isVisible('#method-list .loading .spinner')).toBe(true);
    expect(await page.textContent('#method-list .loading')).toContain('Loading methods');
    await shot('console-loading');
    release();
    await page.waitForSelector('.home');
    await page.unroute(server.url, hold);
    expect(await page.isVisible('#method-list .loading')).toBe(false);

    expect(await page.textContent('.home h2')).toBe('simpleapi 0.1.0');
    expect(await page.textContent('[data-fact="server"] .value')).toBe(server.url);
    expect(await page.textContent('[data-fact="store"] .value')).toBe('embedded');
    expect(await page.textContent('[data-fact="store"] small')).toContain('a restart forgets them');
    expect(await page.textContent('[data-fact="signing"] .value')).toBe('v2');
    expect(await page.textContent('[data-fact="signing"] small')).toContain('300 s');
    expect(await page.textContent('[data-fact="sessions"] .value')).toBe('live 24 h');
    expect(await page.textContent('[data-fact="background jobs"] .value')).toBe('in-process');
    const steps = await page.textContent('.home .steps');
    expect(steps).toContain('Create account');
    expect(steps).toContain('x-hmac');
    expect(await page.getAttribute('#protocol-link', 'href')).toBe('#/protocol');
    expect(await page.$$eval('.home .card h4', (hs) => hs.map((h) => h.textContent))).toEqual(expect.arrayContaining(['account', 'clock', 'math', 'reports', 'rpc', 'top level']));
    await shot('console-landing');

    // The page loaded nothing that failed, the favicon included (the page links one).
    expect(notFound).toEqual([]);
    page.off('response', onResponse);
    expect(await page.getAttribute('link[rel="icon"]', 'href')).toBe('/docs/favicon.svg');
    expect(await page.$eval('.brand img', (img: HTMLImageElement) => img.complete && img.naturalWidth > 0)).toBe(true);
    const ico = await fetch(new URL('/favicon.ico', server.url));
    expect(ico.status).toBe(200);
    expect(ico.headers.get('content-type')).toBe('image/x-icon');
    const bytes = new Uint8Array(await ico.arrayBuffer());
    expect([...bytes.slice(0, 6)]).toEqual([0, 0, 1, 0, 1, 0]); // ICO header, one image
    expect((await fetch(new URL('/docs/favicon.svg', server.url))).headers.get('content-type')).toBe('image/svg+xml');
    const facts = await (await fetch(new URL('/docs/info.json', server.url))).json();
    expect(facts).toMatchObject({ store: 'embedded', scheme: 'v2', jobs: 'in-process', endpoint: '/' });
  }, 60_000);

  it('groups methods by namespace with their descriptions, and shows params as a table with the raw JSON beside', async () => {
    const groups = await page.$$eval('#methods .group', (gs) => gs.map((g) => ({ ns: (g as HTMLElement).dataset.namespace, methods: Array.from(g.querySelectorAll('button'), (b) => b.dataset.method) })));
    expect(groups.map((g) => g.ns)).toEqual(['', 'account', 'clock', 'math', 'notes', 'prefs', 'reports', 'rpc']);
    expect(groups.find((g) => g.ns === 'account')!.methods).toEqual(['account.create', 'account.login', 'account.logout', 'account.password', 'account.session']);
    expect(await page.textContent('button[data-method="math.sum"] .mdesc')).toBe('Adds numbers');

    await page.fill('#filter', 'stream');
    expect(await page.$$eval('#methods li button', (bs) => bs.map((b) => b.dataset.method))).toEqual(['clock.ticks']);
    await page.fill('#filter', '');

    await page.click('button[data-method="account.password"]');
    expect(await page.evaluate(() => location.hash)).toBe('#/m/account.password');
    const rows = await page.$$eval('table.schema.params tbody tr', (trs) => trs.map((tr) => Array.from(tr.querySelectorAll('td'), (td) => td.textContent)));
    expect(rows).toEqual([
      ['old_password', 'string8–1024 chars', 'yes', ''],
      ['new_password', 'string8–1024 chars', 'yes', ''],
    ]);
    expect(await page.textContent('table.schema.params tfoot')).toContain('No other properties');
    await page.click('details.raw-schema summary');
    const raw = JSON.parse((await page.textContent('pre.schema-json'))!);
    expect(raw.required).toEqual(['old_password', 'new_password']);

    await page.click('button[data-method="clock.ticks"]');
    const ticks = await page.$$eval('table.schema.params tbody tr', (trs) => trs.map((tr) => Array.from(tr.querySelectorAll('td'), (td) => td.textContent)));
    expect(ticks).toEqual([
      ['intervalMs', 'integer10–60000', 'no', ''],
      ['count', 'integer1–100000', 'no', ''],
    ]);
    expect(await page.textContent('.desc')).toContain('server-sent events');
    await shot('console-method-table');

    // A deep link opens the method.
    await page.goto(new URL('/docs#/m/math.sum', server.url).href);
    await page.waitForSelector('#call-form');
    expect(await page.textContent('#method h2')).toBe('math.sum');
    expect(await page.textContent('table.schema.params tbody')).toContain('array of number');
  }, 60_000);

  it('calls a public method unsigned and copies it as a curl command that works', async () => {
    await page.fill('textarea[data-raw]', '[1, 2, 39]');
    await call();
    await page.waitForSelector('.result pre.value');
    expect(await page.textContent('.result pre.value')).toBe('42');
    expect(await page.textContent('.result .body')).toBe('42'); // nothing but the value
    expect(await page.textContent('.result-type')).toBe('number');
    expect(await page.textContent('.result h3')).toBe('okHTTP 200not signed');
    expect(await page.textContent('.result pre.request')).toContain('"method":"math.sum"');

    await page.click('#copy-curl');
    await page.waitForFunction(() => document.querySelector('.copy-status')?.textContent !== 'copying…');
    const shown = (await page.textContent('pre.curl'))!;
    expect(await page.textContent('.copy-status')).toBe('copied to the clipboard');
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(shown);
    const { stdout } = await promisify(execFile)('sh', ['-c', shown]);
    expect(stdout).toBe('42');
    await shot('console-public-call');
  }, 60_000);

  it('shows account errors by the form, with the fields the server named', async () => {
    await page.fill('#account input[name="user_id"]', USER);
    await page.fill('#account input[name="password"]', 'short');
    await page.click('#account button[data-action="create"]');
    await page.waitForSelector('#account-error:not([hidden])');
    expect(await page.textContent('#account-error')).toBe('Creating the account failed: InvalidParams The parameters are not valid.');
    expect(await page.getAttribute('#account .acct-field.invalid', 'data-name')).toBe('password');
    expect(await page.textContent('#account .acct-field.invalid .problem')).toBe('password must NOT have fewer than 8 characters');
    expect(await page.getAttribute('#account input[name="password"]', 'aria-invalid')).toBe('true');
    await shot('console-account-error');

    // Logging in as nobody: the message, by the form; the field marks of the last try are gone.
    await page.fill('#account input[name="password"]', 'long enough password');
    await page.click('#account button[data-action="login"]');
    await page.waitForFunction(() => document.querySelector('#account-error')?.textContent?.includes('Logging in failed'));
    expect(await page.textContent('#account-error')).toContain('Unauthenticated');
    expect(await page.$$('#account .acct-field.invalid')).toHaveLength(0);
    expect(await page.textContent('#who')).toBe('not signed in');
  }, 60_000);

  it('signs calls in the browser once signed in, verifies the answers, and highlights invalid fields', async () => {
    await signIn('create');
    expect(await page.isHidden('#account-error')).toBe(true);

    await page.click('button[data-method="prefs.set"]');
    await page.click('#call-form details summary');
    await page.fill('textarea[data-raw]', '{"key": "theme", "value": "dark"}');
    await call();
    await page.waitForSelector('.result .badge.signature');
    expect(await page.textContent('.result h3')).toContain('signature valid');
    expect(await page.textContent('.result pre.value')).toContain('"theme": "dark"');
    const request = await page.textContent('.result pre.request');
    expect(request).toMatch(/x-hmac: [0-9a-f]{64}/);
    expect(request).toContain('x-session-id: ');
    expect(await page.textContent('.result pre.response')).toMatch(/x-hmac: [0-9a-f]{64}/);
    expect(await page.textContent('pre.cli')).toContain(`--user=${USER}`);
    await shot('console-signed-call');

    await page.click('button[data-method="account.password"]');
    await page.fill('#f-old_password', PASSWORD);
    await page.fill('#f-new_password', 'short');
    await call();
    await page.waitForSelector('.field.invalid');
    expect(await page.getAttribute('.field.invalid', 'data-name')).toBe('new_password');
    expect(await page.textContent('.field.invalid .problem')).toBe('/new_password must NOT have fewer than 8 characters');
    expect(await page.textContent('.result h3')).toContain('InvalidParams (invalidParams)');
    await shot('console-validation-error');
  }, 60_000);

  it('shows a loading indicator while a call runs', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const hold = async (route: Route) => {
      if (route.request().postData()?.includes('"math.sum"')) await held;
      await route.continue();
    };
    await page.route(server.url, hold);
    await page.click('button[data-method="math.sum"]');
    await page.fill('textarea[data-raw]', '[2, 3]');
    await call();
    await page.waitForSelector('.result.loading .spinner');
    expect(await page.textContent('.result h3')).toBe('Calling math.sum…');
    expect(await page.isDisabled('#call-form button[type="submit"]')).toBe(true);
    release();
    await page.waitForSelector('.result:not(.loading) pre.value');
    await page.unroute(server.url, hold);
    expect(await page.textContent('.result pre.value')).toBe('5');
    expect(await page.isEnabled('#call-form button[type="submit"]')).toBe(true);
  }, 60_000);

  it('shows a stream of server-sent events live, with a Stop button, and never calls it signed', async () => {
    await page.click('button[data-method="clock.ticks"]');
    await page.click('#call-form details summary');
    await page.fill('textarea[data-raw]', '{"intervalMs": 50}');
    await call();
    await page.waitForSelector('.result .badge.live');
    await page.waitForFunction(() => document.querySelectorAll('.events li').length >= 3);
    const h3 = await page.textContent('.result h3');
    expect(h3).toContain('event stream');
    expect(h3).toContain('response not signed');
    expect(h3).not.toContain('signature valid');
    expect(h3).not.toContain('not JSON');
    const first = JSON.parse((await page.textContent('.events li:first-child .ev-data'))!);
    expect(first.n).toBe(0);
    expect(await page.textContent('.events li:first-child .ev-name')).toBe('tick');
    await shot('console-stream-live');
    await page.click('.result button.stop');
    await page.waitForSelector('.result .stream-end');
    expect(await page.textContent('.result h3')).toContain('stopped');
    expect(await page.textContent('.result .stream-end')).toMatch(/^Stopped after \d+ events/);
    expect(await page.$$('.result button.stop')).toHaveLength(0);

    // A stream that ends by itself.
    await page.fill('textarea[data-raw]', '{"intervalMs": 10, "count": 3}');
    await call();
    await page.waitForSelector('.result .stream-end');
    expect(await page.textContent('.result .stream-end')).toBe('The server ended the stream after 3 events.');
    expect(await page.$$eval('.events li .ev-id', (ids) => ids.map((i) => i.textContent))).toEqual(['#0', '#1', '#2']);
    expect(await page.textContent('.result pre.response')).toContain('event: tick');
  }, 60_000);

  it('shows a background job: the 202, its progress while polled, then its result', async () => {
    // The first poll goes through only once the job has reported progress, so the console is
    // sure to see it running (the job has seconds of steps left then).
    let gated = true;
    const gate = async (route: Route) => {
      const id = new URL(route.request().url()).pathname.split('/').pop()!;
      while (gated) {
        const job = await server.jobs.get(id);
        if (job?.progress) gated = false;
        else await new Promise((r) => setTimeout(r, 20));
      }
      await route.continue();
    };
    await page.route(`${origin}/jobs/*`, gate);
    await page.click('button[data-method="reports.slow"]');
    await page.fill('#f-steps', '4');
    await page.fill('#f-stepMs', '800');
    await call();
    await page.waitForSelector('.result .job');
    expect(await page.textContent('.result .job')).toContain('202 Accepted');
    expect(await page.textContent('.result .job-id')).toMatch(/^[A-Za-z0-9-]+$/);
    expect(await page.textContent('.result pre.response')).toContain('location: /jobs/');
    await page.waitForSelector('.job[data-state="running"]');
    expect(await page.textContent('.job-note')).toMatch(/^\d+%: step \d of 4$/);
    expect(await page.$eval('.job progress', (p: HTMLProgressElement) => p.value)).toBeGreaterThan(0);
    await shot('console-job-running');
    await page.waitForSelector('.job[data-state="done"] pre.value', { timeout: 30_000 });
    await page.unroute(`${origin}/jobs/*`, gate);
    expect(JSON.parse((await page.textContent('.job pre.value'))!)).toEqual({ steps: 4, by: USER });
    const h3 = await page.textContent('.result h3');
    expect(h3).toContain('done');
    expect(h3).toContain('signature valid'); // the 202 and every poll were signed back and checked
    expect(await page.textContent('.job .polls')).toMatch(/^\d+ polls? of \/jobs\//);
    await shot('console-job-done');
  }, 60_000);

  it('after a server restart, signs out on the unknown session, says so, and public calls work again', async () => {
    await restart();
    // A session method: the 401 carries no x-hmac, so no "signature valid".
    await page.click('button[data-method="prefs.get"]');
    await call();
    await page.waitForSelector('#notice:not([hidden])');
    expect(await page.textContent('#notice')).toContain(`Signed out: the server no longer knows the session of ${USER}`);
    expect(await page.textContent('#who')).toBe('not signed in');
    expect(await page.isHidden('#logout')).toBe(true);
    const h3 = await page.textContent('.result h3');
    expect(h3).toContain('Unauthenticated');
    expect(h3).toContain('HTTP 401');
    expect(h3).toContain('response not signed');
    expect(h3).not.toContain('signature valid');
    await shot('console-session-lost');

    // Signed in again, then another restart: a public call is refused once, then sent unsigned.
    await signIn('create');
    await restart();
    await page.click('button[data-method="math.sum"]');
    await page.fill('textarea[data-raw]', '[20, 22]');
    await call();
    await page.waitForSelector('.result .note');
    expect(await page.textContent('.result pre.value')).toBe('42');
    expect(await page.textContent('.result .note')).toContain('sent again without it');
    expect(await page.textContent('.result h3')).toContain('not signed');
    expect(await page.textContent('#notice')).toContain('Signed out');
    expect(await page.textContent('.result details.earlier summary + * pre.response, .result details.earlier pre.response')).toContain('"code":"Unauthenticated"');
    // And the next public call goes straight through, with no notice of its own.
    await page.click('#notice button');
    await call();
    await page.waitForSelector('.result:not(.loading) pre.value');
    expect(await page.$$('.result .note')).toHaveLength(0);
    expect(await page.isHidden('#notice')).toBe(true);
  }, 60_000);

  it('renders the protocol document, or says it is missing', async () => {
    await page.click('.nav-links a[data-view="protocol"]');
    await page.waitForSelector('article.doc');
    if (existsSync(PROTOCOL_DOC)) {
      const title = /^# (.*)$/m.exec(readFileSync(PROTOCOL_DOC, 'utf8'))?.[1];
      expect(await page.textContent('article.doc h1')).toBe(title);
      expect((await fetch(new URL('/docs/protocol.md', server.url))).status).toBe(200);
    } else {
      console.warn('docs/protocol.md is absent: checking the console says so');
      expect(await page.textContent('article.doc.missing')).toContain('no docs/protocol.md');
      expect((await fetch(new URL('/docs/protocol.md', server.url))).status).toBe(404);
    }
    await shot('console-protocol');
    // /docs/protocol leads to the same view.
    const redirect = await fetch(new URL('/docs/protocol', server.url), { redirect: 'manual' });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get('location')).toBe('/docs#/protocol');

    // The renderer, on a sample with every construct it knows and markup that must stay text.
    // (a string, so that vitest leaves the browser's import() alone)
    const sample = '# T\n\nA *b* **c** `<i>` [l](#x) [bad](javascript:alert)\n\n| a | b |\n|---|---|\n| 1 | `2` |\n\n- x\n- y\n\n```\n<script>\n```\n\n<img src=x onerror=alert(1)>';
    const html = await page.evaluate(`import('/docs/markdown.js').then((m) => m.renderMarkdown(${JSON.stringify(sample)}))`);
    expect(html).toBe(
      '<h1 id="t">T</h1>\n<p>A <em>b</em> <strong>c</strong> <code>&lt;i&gt;</code> <a href="#x">l</a> bad</p>\n' +
        '<table><thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td>1</td><td><code>2</code></td></tr></tbody></table>\n' +
        '<ul><li>x</li><li>y</li></ul>\n<pre><code>&lt;script&gt;</code></pre>\n<p>&lt;img src=x onerror=alert(1)&gt;</p>',
    );
  }, 60_000);

  it('fits a phone screen, and loaded nothing from outside the server', async () => {
    await page.click('.nav-links a[data-view="home"]');
    await page.setViewportSize({ width: 390, height: 844 });
    await shot('console-phone');
    expect(foreign).toEqual([]);
    expect(failures).toEqual([]);
  });

  it('is off with --no-docs', async () => {
    const quiet = await startTestServer({ docs: false });
    try {
      expect((await fetch(new URL('/docs', quiet.url))).status).toBe(404);
      expect((await fetch(new URL('/favicon.ico', quiet.url))).status).toBe(404);
    } finally {
      await quiet.close(0);
    }
  });
});
