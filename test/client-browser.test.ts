/**
 * The client's browser path runs without Node's crypto or http: a child process with every Node
 * built-in import from src/client/ refused (test/browser/hide-node-builtins.mjs).
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, startTestServer, type TestServer } from './helpers/server.ts';

const run = promisify(execFile);
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.close());

describe('the client with Node built-ins hidden', () => {
  it('creates, calls, batches, logs out and logs in with WebCrypto and fetch only', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx/esm', '--import', resolve(ROOT, 'test/browser/hide-node-builtins.mjs'), resolve(ROOT, 'test/browser/client-flow.ts')], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, SIMPLEAPI_URL: server.url },
    });
    const out = JSON.parse(stdout);
    expect(out.who.userId).toBe(out.grantUser);
    expect(out.batch).toEqual([{ ok: true, result: 42 }, { ok: true, result: expect.objectContaining({ userId: out.grantUser }) }]);
    expect(out.afterLogout).toBe('Unauthenticated');
    expect(out.relogged).toBe(out.grantUser);
  });

  it('the guard does refuse a built-in imported from a client folder', async () => {
    const { mkdtempSync, mkdirSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = resolve(mkdtempSync(resolve(tmpdir(), 'guard-')), 'src/client');
    mkdirSync(dir, { recursive: true });
    writeFileSync(resolve(dir, '../../package.json'), '{"type": "module"}');
    const probe = resolve(dir, 'probe.ts');
    writeFileSync(probe, "import { createHmac } from 'node:crypto';\nexport const x = typeof createHmac;\n");
    await expect(
      run(process.execPath, ['--import', 'tsx/esm', '--import', resolve(ROOT, 'test/browser/hide-node-builtins.mjs'), probe], { cwd: ROOT }),
    ).rejects.toMatchObject({ stderr: expect.stringContaining('browser check: the client imported the Node built-in node:crypto') });
  });
});
