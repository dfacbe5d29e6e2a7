import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../src/store/memory.ts';
import { storeContract } from './store.contract.ts';

storeContract('embedded (memory)', async () => new MemoryStore());

describe('embedded store: kept outcomes live in a bounded arena', () => {
  const now = 1_800_000_000;
  const claim = { mac: 'f'.repeat(64) };
  const body = 'x'.repeat(1000);
  const nonce = (i: number) => `nonce-bounded-${String(i).padStart(4, '0')}`;

  it('past the bound the oldest outcomes are dropped (unkept), the newest stay, the arena stays within it', async () => {
    const store = new MemoryStore({ outcomeMemory: 10_000 });
    expect(store.keptOutcomeBytes).toBe(0);
    for (let i = 0; i < 40; i++) {
      expect(await store.rememberNonce('s', nonce(i), now + 600, now, { mac: i.toString(16).padStart(64, '0') })).toBe(true);
      await store.keepOutcome('s', nonce(i), { status: 200, body: `${i}:${body}` });
      expect(store.keptOutcomeBytes).toBeLessThanOrEqual(10_000);
    }
    expect(await store.findCall('s', nonce(0), now)).toEqual({ state: 'unkept' });
    expect(await store.findCall('s', nonce(25), now)).toEqual({ state: 'unkept' });
    // The newest ones, whole, with their own MACs (the arena wrapped around more than once).
    for (const i of [37, 38, 39]) {
      expect(await store.findCall('s', nonce(i), now)).toEqual({ state: 'done', claim: { mac: i.toString(16).padStart(64, '0') }, outcome: { status: 200, body: `${i}:${body}` } });
    }
    // The nonces themselves are all still refused.
    expect(await store.rememberNonce('s', nonce(0), now + 600, now, claim)).toBe(false);
  });

  it('a body is kept byte for byte, multi-byte characters included', async () => {
    const store = new MemoryStore({ outcomeMemory: 4096 });
    const text = JSON.stringify({ t: 'héllo 😀 \u2028 日本' });
    await store.rememberNonce('s', 'nonce-utf8-outcome', now + 600, now, claim);
    await store.keepOutcome('s', 'nonce-utf8-outcome', { status: 201, body: text, location: '/jobs/x', retryAfter: 3 });
    expect(await store.findCall('s', 'nonce-utf8-outcome', now)).toEqual({ state: 'done', claim, outcome: { status: 201, body: text, location: '/jobs/x', retryAfter: 3 } });
  });

  it('an outcome larger than the whole arena is not kept, and takes none of it', async () => {
    const store = new MemoryStore({ outcomeMemory: 1500 });
    await store.rememberNonce('s', 'nonce-huge-outcome', now + 600, now, claim);
    await store.keepOutcome('s', 'nonce-huge-outcome', { status: 200, body: 'y'.repeat(5000) });
    expect(await store.findCall('s', 'nonce-huge-outcome', now)).toEqual({ state: 'unkept' });
    expect(store.keptOutcomeBytes).toBe(0);
  });
});
