/**
 * SimpleApiClient's automatic retries (PROTOCOL.md §6 "v2 retries") against a real server behind
 * a proxy that loses answers: the method runs once, the caller learns the answer came from a
 * retry, and the count and the off switch are honoured.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimpleApiClient, type AnswerInfo, type SessionGrant } from '../src/client/index.ts';
import { lossyProxy, type LossyProxy, type Plan } from './helpers/proxy.ts';
import { until } from './helpers/retry.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { runsOver } from './retry-scenarios.ts';

const unique = (label: string) => `${label}-${randomBytes(4).toString('hex')}`;

describe('SimpleApiClient retries signed calls', () => {
  let server: TestServer;
  let grant: SessionGrant;
  const proxies: LossyProxy[] = [];
  const runs = (key: string) => runsOver([server.url])(key);
  beforeAll(async () => {
    server = await startTestServer();
    grant = await new SimpleApiClient({ url: server.url }).create(`${unique('client')}@example.com`, 'password-one');
  });
  afterAll(async () => {
    await Promise.all(proxies.map((p) => p.close()));
    await server.close();
  });

  /** A client with the session, talking to the server through a proxy with these plans. */
  async function behind(plans: Plan[], options: ConstructorParameters<typeof SimpleApiClient>[0] = {}) {
    const proxy = await lossyProxy(new URL(server.url), plans);
    proxies.push(proxy);
    const api = new SimpleApiClient({ url: proxy.url, retryDelayMs: 10, ...options });
    api.useSession(grant);
    return { api, proxy };
  }

  it('the first answer is lost after the method ran: the retry gets that outcome, marked retried, and the method ran once', async () => {
    const { api, proxy } = await behind(['drop-answer']);
    const key = unique('dropped');
    const answers: AnswerInfo[] = [];
    const result = await api.call('once.hold', { key }, { onAnswer: (a) => answers.push(a) });
    expect(result).toEqual({ key, run: 1, user: grant.user_id, pad: '' });
    expect(answers).toEqual([{ status: 200, attempts: 2, retried: true }]);
    expect(proxy.connections).toBe(2);
    expect(await runs(key)).toBe(1);
  });

  it('an unsigned 503 from a proxy: the retry runs the call (its first attempt never arrived), not marked retried', async () => {
    const { api } = await behind(['unsigned-503']);
    const key = unique('lb');
    const answers: AnswerInfo[] = [];
    expect(await api.call('once.hold', { key }, { onAnswer: (a) => answers.push(a) })).toMatchObject({ key, run: 1 });
    expect(answers).toEqual([{ status: 200, attempts: 2, retried: false }]);
    expect(await runs(key)).toBe(1);
  });

  it('an unsigned 502 and 504 are retried the same way', async () => {
    for (const plan of ['unsigned-502', 'unsigned-504'] as const) {
      const { api } = await behind([plan]);
      const key = unique(plan);
      const answers: AnswerInfo[] = [];
      expect(await api.call('once.hold', { key }, { onAnswer: (a) => answers.push(a) })).toMatchObject({ key, run: 1 });
      expect(answers).toEqual([{ status: 200, attempts: 2, retried: false }]);
      expect(await runs(key)).toBe(1);
    }
  });

  it('simpleapi call says on stderr when its answer came from a retry', async () => {
    // The login passes on a connection of its own; the call's first answer is lost.
    const proxy = await lossyProxy(new URL(server.url), ['pass-one', 'drop-answer']);
    proxies.push(proxy);
    const key = unique('cli');
    const { runCli } = await import('./helpers/server.ts');
    const cli = await runCli(['call', 'once.hold', JSON.stringify({ key }), `--url=${proxy.url}`, `--user=${grant.user_id}`], { SIMPLEAPI_PASSWORD: 'password-one' });
    expect(cli.code).toBe(0);
    expect(JSON.parse(cli.stdout)).toMatchObject({ key, run: 1 });
    expect(cli.stderr).toContain('answered from the first attempt (retried, 2 attempts; the method ran once)');
    expect(await runs(key)).toBe(1);
  });

  it('cut while the method runs: the client waits out "still running" and gets the first outcome', async () => {
    // The default retries (2): waiting on "still running" has a budget of its own.
    const { api, proxy } = await behind([]);
    const key = unique('running');
    const answers: AnswerInfo[] = [];
    const pending = api.call('once.hold', { key, hold: true }, { onAnswer: (a) => answers.push(a) });
    await until(async () => (await runs(key)) === 1);
    proxy.cut();
    // The retry reached the server (a new connection) and heard "still running"; now let the method end.
    await until(async () => proxy.connections >= 2);
    // Several "still running" answers (one a second) before the method ends: more than `retries`.
    await new Promise((r) => setTimeout(r, 3500));
    await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ method: 'once.release', parameters: { key } }) });
    expect(await pending).toMatchObject({ key, run: 1 });
    expect(answers).toHaveLength(1);
    expect(answers[0]).toMatchObject({ status: 200, retried: true });
    expect(answers[0]!.attempts).toBeGreaterThanOrEqual(2);
    expect(await runs(key)).toBe(1);
  });

  it('past runningWaitMs the caller gets the Conflict, and the method still ran once', async () => {
    const { api, proxy } = await behind([], { runningWaitMs: 1500 });
    const key = unique('impatient');
    const pending = api.call('once.hold', { key, hold: true });
    const outcome = pending.then(
      () => null,
      (err: unknown) => err,
    );
    await until(async () => (await runs(key)) === 1);
    proxy.cut();
    const err = (await outcome) as { code?: string; details?: unknown[] };
    expect(err).toMatchObject({ code: 'Conflict', details: [{ reason: 'first attempt still running' }] });
    await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ method: 'once.release', parameters: { key } }) });
    expect(await runs(key)).toBe(1);
  });

  it('a batch is retried the same way', async () => {
    const { api } = await behind(['drop-answer']);
    const key = unique('batch');
    const answers: AnswerInfo[] = [];
    const results = await api.batch([{ method: 'once.hold', params: { key } }, { method: 'once.runs', params: { key } }], { onAnswer: (a) => answers.push(a) });
    expect(results[0]).toEqual({ ok: true, result: expect.objectContaining({ key, run: 1 }) });
    expect(answers).toEqual([{ status: 200, attempts: 2, retried: true }]);
    expect(await runs(key)).toBe(1);
  });

  it('retries: 0 turns it off: the network error reaches the caller (the method ran once, unknown to it)', async () => {
    const { api } = await behind(['drop-answer'], { retries: 0 });
    const key = unique('off');
    await expect(api.call('once.hold', { key })).rejects.toBeInstanceOf(TypeError);
    expect(await runs(key)).toBe(1);
  });

  it('past the count, the last network error reaches the caller', async () => {
    const { api, proxy } = await behind(['drop-answer', 'drop-answer', 'drop-answer'], { retries: 2 });
    await expect(api.call('once.hold', { key: unique('exhausted') })).rejects.toBeInstanceOf(TypeError);
    expect(proxy.connections).toBe(3);
  });

  it('a call without a session is never retried', async () => {
    const proxy = await lossyProxy(new URL(server.url), ['drop-answer']);
    proxies.push(proxy);
    const anonymous = new SimpleApiClient({ url: proxy.url, retryDelayMs: 10 });
    await expect(anonymous.call('once.runs', { key: 'x' })).rejects.toBeInstanceOf(TypeError);
    expect(proxy.connections).toBe(1);
  });
});
