import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../src/store/memory.ts';
import { storeContract } from './store.contract.ts';

storeContract('embedded (memory)', async () => new MemoryStore());

describe('embedded store: kept outcomes are bounded in total', () => {
  const now = 1_800_000_000;
  const claim = { mac: 'f'.repeat(64) };
  const body = 'x'.repeat(1000);

  it('past the bound the oldest outcomes are dropped (unkept), the newest stay, the count stays under it', async () => {
    const store = new MemoryStore({ outcomeMemory: 10_000 });
    for (let i = 0; i < 20; i++) {
      expect(await store.rememberNonce('s', `nonce-bounded-${String(i).padStart(4, '0')}`, now + 600, now, claim)).toBe(true);
      await store.keepOutcome('s', `nonce-bounded-${String(i).padStart(4, '0')}`, { status: 200, body });
      expect(store.keptOutcomeBytes).toBeLessThanOrEqual(10_000);
    }
    expect(await store.findCall('s', 'nonce-bounded-0000', now)).toEqual({ state: 'unkept' });
    expect(await store.findCall('s', 'nonce-bounded-0019', now)).toMatchObject({ state: 'done', outcome: { body } });
    // The nonces themselves are all still refused.
    expect(await store.rememberNonce('s', 'nonce-bounded-0000', now + 600, now, claim)).toBe(false);
  });

  it('an outcome larger than the whole bound is not kept; the sweep releases what expired', async () => {
    const store = new MemoryStore({ outcomeMemory: 1500 });
    await store.rememberNonce('s', 'nonce-huge-outcome', now + 600, now, claim);
    await store.keepOutcome('s', 'nonce-huge-outcome', { status: 200, body: 'y'.repeat(5000) });
    expect(await store.findCall('s', 'nonce-huge-outcome', now)).toEqual({ state: 'unkept' });
    expect(store.keptOutcomeBytes).toBe(0);
    await store.rememberNonce('s', 'nonce-small-outcome', now + 600, now, claim);
    await store.keepOutcome('s', 'nonce-small-outcome', { status: 200, body: 'ok' });
    expect(store.keptOutcomeBytes).toBeGreaterThan(0);
    await store.sweep(now + 601);
    expect(store.keptOutcomeBytes).toBe(0);
  });
});
