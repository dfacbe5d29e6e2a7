import { describe, expect, it } from 'vitest';
import { HealthPing } from '../src/store/health-ping.ts';

const never = () => new Promise<never>(() => {});

describe('HealthPing: a database that takes a ping and never answers', () => {
  it('checks made together share one ping, and are told "down" in time', async () => {
    let sent = 0;
    const health = new HealthPing(() => (sent++, never()), 50);
    const started = Date.now();
    expect(await Promise.all([health.check(), health.check(), health.check()])).toEqual([false, false, false]);
    expect(sent).toBe(1);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('one ping lost on one connection does not keep saying "down" while the database answers', async () => {
    let sent = 0;
    const health = new HealthPing(() => (++sent === 1 ? never() : Promise.resolve()), 50);
    expect(await health.check()).toBe(false);
    expect(await health.check()).toBe(true);
    expect(sent).toBe(2);
  });

  it('leaves at most maxAbandoned pings unanswered, however often it is asked, and pings again once they settle', async () => {
    const pending: (() => void)[] = [];
    const health = new HealthPing(() => new Promise<void>((resolve) => pending.push(resolve)), 20, 3);
    for (let i = 0; i < 10; i++) expect(await health.check()).toBe(false);
    expect(pending).toHaveLength(3);
    // The database answers again: the abandoned pings settle, and the next check sends a new one.
    for (const answer of pending.splice(0)) answer();
    await new Promise((r) => setTimeout(r, 0));
    const next = health.check();
    expect(pending).toHaveLength(1);
    pending[0]!();
    expect(await next).toBe(true);
  });

  it('tells a ping it abandons, so that it can end what it holds, and only that one', async () => {
    const signals: AbortSignal[] = [];
    let answer = false;
    const health = new HealthPing((abandoned) => (signals.push(abandoned), answer ? Promise.resolve() : never()), 20);
    expect(await health.check()).toBe(false);
    answer = true;
    expect(await health.check()).toBe(true);
    expect(signals.map((s) => s.aborted)).toEqual([true, false]);
  });

  it('a ping that fails, even by throwing at once, says "down" without leaving anything behind', async () => {
    let sent = 0;
    const health = new HealthPing(() => {
      sent++;
      throw new Error('pool is closed');
    }, 50);
    expect(await health.check()).toBe(false);
    expect(await health.check()).toBe(false);
    expect(sent).toBe(2);
  });
});
