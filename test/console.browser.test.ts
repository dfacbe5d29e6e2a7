/**
 * The API console in a real browser: Debian's Chromium driven by playwright-core, against a real
 * server. Screenshots go to test-artifacts/. Without a Chromium the test is skipped with the
 * reason printed, except under CI=true, where that is a failure (.ci/run installs it).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, SHIPPED_METHODS, startTestServer, type TestServer } from './helpers/server.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) {
  if (process.env.CI === 'true') throw new Error(`CI=true but there is no Chromium at ${CHROMIUM}: .ci/run installs Debian's chromium`);
  console.warn(`Browser test skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
}
const ARTIFACTS = resolve(ROOT, 'test-artifacts');

describe.skipIf(!hasChromium)('the console at /docs, in Chromium', () => {
  let server: TestServer;
  let browser: Browser;
  let page: Page;
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    server = await startTestServer({ methodsDir: SHIPPED_METHODS });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close(0);
  });

  it('lists methods, creates an account, calls public and session methods with valid signatures, and highlights invalid fields', async () => {
    const failures: string[] = [];
    page.on('pageerror', (err) => failures.push(err.message));
    page.on('requestfailed', (req) => failures.push(`${req.url()} ${req.failure()?.errorText}`));
    await page.goto(new URL('/docs', server.url).href);
    await page.waitForSelector('#methods li');
    const names = await page.$$eval('#methods li button', (buttons) => buttons.map((b) => b.dataset.method));
    expect(names).toEqual(expect.arrayContaining(['math.sum', 'account.create', 'prefs.set', 'rpc.discover']));

    // A public method, unsigned: params as JSON.
    await page.click('button[data-method="math.sum"]');
    await page.fill('textarea[data-raw]', '[1, 2, 39]');
    await page.click('#call-form button[type="submit"]');
    await page.waitForSelector('.result pre.value');
    expect(await page.textContent('.result pre.value')).toBe('42');
    expect(await page.textContent('.result h3')).toContain('not signed');
    expect(await page.textContent('.result pre.request')).toContain('"method":"math.sum"');

    // Create an account in the page; from then on calls are signed in the browser (WebCrypto).
    await page.fill('#account input[name="user_id"]', 'console-user@example.com');
    await page.fill('#account input[name="password"]', 'console-password');
    await page.click('#account button[data-action="create"]');
    await page.waitForFunction(() => document.querySelector('#who')?.textContent?.startsWith('signed in as'));

    await page.click('button[data-method="prefs.set"]');
    await page.click('#call-form details summary');
    await page.fill('textarea[data-raw]', '{"key": "theme", "value": "dark"}');
    await page.click('#call-form button[type="submit"]');
    await page.waitForSelector('.result .badge.signature');
    expect(await page.textContent('.result h3')).toContain('signature valid');
    expect(await page.textContent('.result pre.value')).toContain('"theme": "dark"');
    const request = await page.textContent('.result pre.request');
    expect(request).toMatch(/x-hmac: [0-9a-f]{64}/);
    expect(request).toContain('x-session-id: ');
    expect(await page.textContent('.result pre.response')).toMatch(/x-hmac: [0-9a-f]{64}/);
    await page.screenshot({ path: resolve(ARTIFACTS, 'console-signed-call.png'), fullPage: true });

    // A validation error: the field is highlighted with the server's message.
    await page.click('button[data-method="account.password"]');
    await page.fill('#f-old_password', 'console-password');
    await page.fill('#f-new_password', 'short');
    await page.click('#call-form button[type="submit"]');
    await page.waitForSelector('.field.invalid');
    expect(await page.getAttribute('.field.invalid', 'data-name')).toBe('new_password');
    expect(await page.textContent('.field.invalid .problem')).toBe('/new_password must NOT have fewer than 8 characters');
    expect(await page.textContent('.result h3')).toContain('InvalidParams (invalidParams)');
    await page.screenshot({ path: resolve(ARTIFACTS, 'console-validation-error.png'), fullPage: true });

    // And on a phone-sized screen.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: resolve(ARTIFACTS, 'console-phone.png'), fullPage: true });
    expect(failures).toEqual([]);
  }, 60_000);

  it('is off with --no-docs', async () => {
    const quiet = await startTestServer({ docs: false });
    try {
      expect((await fetch(new URL('/docs', quiet.url))).status).toBe(404);
    } finally {
      await quiet.close(0);
    }
  });
});
