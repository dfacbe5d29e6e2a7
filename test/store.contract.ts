/**
 * The store contract: what every Store must do, written against the interface. Each
 * implementation runs it (store-memory.test.ts, store-mongo.test.ts), as Hono's routers share
 * one runTest suite.
 */
import { randomBytes } from 'node:crypto';
import { v4 as uuidv4 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError } from '../src/core/errors.ts';
import type { AccountRecord, PasswordHash, SessionRecord, Store } from '../src/store/types.ts';

const hash = (tag: string): PasswordHash => ({ algo: 'scrypt', N: 16384, r: 8, p: 1, salt: Buffer.from(`salt-${tag}`).toString('base64'), hash: Buffer.from(`hash-${tag}`).toString('base64') });
const account = (userKey: string, userId = userKey): AccountRecord => ({ userKey, userId, password: hash(userKey), created: 1_700_000_000 });
const session = (userKey: string, expires: number, extra: Partial<SessionRecord> = {}): SessionRecord => ({
  sessionId: uuidv4(),
  userKey,
  userId: userKey,
  key: randomBytes(32),
  expires,
  state: {},
  version: 0,
  ...extra,
});
const unique = (label: string) => `${label}-${randomBytes(4).toString('hex')}`;

export function storeContract(name: string, open: () => Promise<Store>, close: (store: Store) => Promise<void> = (s) => s.close()): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    const now = 1_800_000_000; // a multiple of 60
    beforeAll(async () => {
      store = await open();
    });
    afterAll(() => close(store));

    it('ping() answers true', async () => {
      expect(await store.ping()).toBe(true);
    });

    describe('accounts', () => {
      it('createAccount then findAccount returns what was stored', async () => {
        const key = unique('alice');
        await store.createAccount(account(key, key.toUpperCase()));
        expect(await store.findAccount(key)).toEqual(account(key, key.toUpperCase()));
        expect(await store.findAccount(unique('nobody'))).toBeNull();
      });

      it('a second createAccount with the same key is Conflict and changes nothing', async () => {
        const key = unique('bob');
        await store.createAccount(account(key, 'first'));
        const err = await store.createAccount(account(key, 'second')).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ApiError);
        expect(err).toMatchObject({ code: 'Conflict' });
        expect((await store.findAccount(key))!.userId).toBe('first');
      });

      it('setPassword replaces the hash; false for an unknown account', async () => {
        const key = unique('carol');
        await store.createAccount(account(key));
        expect(await store.setPassword(key, hash('new'))).toBe(true);
        expect((await store.findAccount(key))!.password).toEqual(hash('new'));
        expect(await store.setPassword(unique('ghost'), hash('x'))).toBe(false);
      });

      it('concurrent creates of one key: exactly one wins', async () => {
        const key = unique('race');
        const results = await Promise.allSettled([1, 2, 3, 4].map((i) => store.createAccount(account(key, `try-${i}`))));
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        expect(results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.code)).toEqual(['Conflict', 'Conflict', 'Conflict']);
      });
    });

    describe('sessions', () => {
      it('createSession then getSession returns it, key bytes included', async () => {
        const s = session(unique('u'), now + 100, { state: { a: [1, 'two'], nested: { ok: true } } });
        await store.createSession(s);
        const got = await store.getSession(s.sessionId, now);
        // The fields, and the state read as a caller reads it (a store may copy it lazily).
        expect({ ...got, state: got!.state }).toEqual(s);
        expect(Buffer.isBuffer(got!.key)).toBe(true);
      });

      it('getSession checks expiry itself: at or after expires it is null', async () => {
        const s = session(unique('u'), now + 10);
        await store.createSession(s);
        expect(await store.getSession(s.sessionId, now + 9)).not.toBeNull();
        expect(await store.getSession(s.sessionId, now + 10)).toBeNull();
        expect(await store.getSession(uuidv4(), now)).toBeNull();
      });

      it('touchSession moves expiry forward only', async () => {
        const s = session(unique('u'), now + 10);
        await store.createSession(s);
        await store.touchSession(s.sessionId, now + 50);
        expect((await store.getSession(s.sessionId, now))!.expires).toBe(now + 50);
        await store.touchSession(s.sessionId, now + 20);
        expect((await store.getSession(s.sessionId, now))!.expires).toBe(now + 50);
      });

      it('deleteSession removes one; deleteUserSessions removes all but the one kept', async () => {
        const user = unique('multi');
        const [a, b, c] = [session(user, now + 100), session(user, now + 100), session(user, now + 100)];
        const other = session(unique('other'), now + 100);
        for (const s of [a, b, c, other]) await store.createSession(s);
        await store.deleteSession(a.sessionId);
        expect(await store.getSession(a.sessionId, now)).toBeNull();
        expect(await store.deleteUserSessions(user, c.sessionId)).toBe(1);
        expect(await store.getSession(b.sessionId, now)).toBeNull();
        expect(await store.getSession(c.sessionId, now)).not.toBeNull();
        expect(await store.getSession(other.sessionId, now)).not.toBeNull();
        expect(await store.deleteUserSessions(user)).toBe(1);
      });

      it('trimUserSessions keeps the most recently used and ends the rest, least recently used first', async () => {
        const user = unique('trim');
        const sessions = [10, 50, 30, 40, 20, 5].map((d) => session(user, now + d));
        const other = session(unique('other'), now + 1);
        for (const s of [...sessions, other]) await store.createSession(s);
        const newest = sessions[5]!.sessionId;
        expect(await store.trimUserSessions(user, 6, newest)).toBe(0);
        expect(await store.trimUserSessions(user, 4, newest)).toBe(2);
        const alive = async (s: SessionRecord) => (await store.getSession(s.sessionId, now)) !== null;
        // The one kept by id (expiry 5) and the three latest of the rest (50, 40, 30) stay.
        expect(await Promise.all(sessions.map(alive))).toEqual([false, true, true, true, false, true]);
        expect(await alive(other)).toBe(true);
        expect(await store.trimUserSessions(user, 1, newest)).toBe(3);
        expect(await alive(sessions[5]!)).toBe(true);
        expect(await store.deleteUserSessions(user)).toBe(1);
      });

      it('saveSessionState is optimistic: the stale version loses and the stored state stays', async () => {
        const s = session(unique('state'), now + 100);
        await store.createSession(s);
        expect(await store.saveSessionState(s.sessionId, { n: 1 }, 0)).toBe(1);
        expect(await store.saveSessionState(s.sessionId, { n: 2 }, 0)).toBeNull();
        const got = await store.getSession(s.sessionId, now);
        expect(got).toMatchObject({ state: { n: 1 }, version: 1 });
        expect(await store.saveSessionState(s.sessionId, { n: 3 }, 1)).toBe(2);
        expect(await store.saveSessionState(uuidv4(), { n: 4 }, 0)).toBeNull();
      });

      it('concurrent saves from one version: exactly one wins', async () => {
        const s = session(unique('race'), now + 100);
        await store.createSession(s);
        const results = await Promise.all([1, 2, 3, 4].map((i) => store.saveSessionState(s.sessionId, { winner: i }, 0)));
        expect(results.filter((r) => r === 1)).toHaveLength(1);
        const winner = results.indexOf(1) + 1;
        expect((await store.getSession(s.sessionId, now))!.state).toEqual({ winner });
      });

      it('a returned session is a copy: changing it changes nothing stored', async () => {
        const s = session(unique('copy'), now + 100, { state: { list: [1] } });
        await store.createSession(s);
        const got = await store.getSession(s.sessionId, now);
        (got!.state.list as number[]).push(2);
        expect((await store.getSession(s.sessionId, now))!.state).toEqual({ list: [1] });
      });
    });

    describe('nonces', () => {
      it('a nonce is fresh once per session; another session may use it', async () => {
        const [s1, s2] = [uuidv4(), uuidv4()];
        expect(await store.rememberNonce(s1, 'nonce-aaaaaaaaaaaa', now + 600, now)).toBe(true);
        expect(await store.rememberNonce(s1, 'nonce-aaaaaaaaaaaa', now + 600, now)).toBe(false);
        expect(await store.rememberNonce(s2, 'nonce-aaaaaaaaaaaa', now + 600, now)).toBe(true);
      });

      it('concurrent uses of one nonce: exactly one is fresh', async () => {
        const s = uuidv4();
        const results = await Promise.all([1, 2, 3, 4, 5].map(() => store.rememberNonce(s, 'nonce-racing-racing', now + 600, now)));
        expect(results.filter(Boolean)).toHaveLength(1);
      });

      it('an expired nonce record does not block its reuse', async () => {
        const s = uuidv4();
        expect(await store.rememberNonce(s, 'nonce-expiring-xx', now + 5, now)).toBe(true);
        expect(await store.rememberNonce(s, 'nonce-expiring-xx', now + 5000, now + 4000)).toBe(true);
      });
    });

    describe('kept outcomes (retries)', () => {
      const claim = (mac = 'a'.repeat(64)) => ({ mac });

      it('a claimed nonce is running, then done with the outcome exactly as kept', async () => {
        const s = uuidv4();
        expect(await store.findCall(s, 'nonce-claimed-call', now)).toBeNull();
        expect(await store.rememberNonce(s, 'nonce-claimed-call', now + 600, now, claim())).toBe(true);
        expect(await store.findCall(s, 'nonce-claimed-call', now)).toEqual({ state: 'running', claim: claim() });
        const outcome = { status: 202, location: '/jobs/abc', retryAfter: 7, body: '{"job_id":"abc","text":"h\u00e9llo \ud83d\ude00"}' };
        await store.keepOutcome(s, 'nonce-claimed-call', outcome);
        expect(await store.findCall(s, 'nonce-claimed-call', now)).toEqual({ state: 'done', claim: claim(), outcome });
        // The claim did not make the nonce reusable.
        expect(await store.rememberNonce(s, 'nonce-claimed-call', now + 600, now, claim())).toBe(false);
        // Another session's nonce of the same text is another record.
        expect(await store.findCall(uuidv4(), 'nonce-claimed-call', now)).toBeNull();
      });

      it('an outcome without location, retry-after or body comes back without them', async () => {
        const s = uuidv4();
        await store.rememberNonce(s, 'nonce-no-content-x', now + 600, now, claim());
        await store.keepOutcome(s, 'nonce-no-content-x', { status: 204, body: '' });
        expect(await store.findCall(s, 'nonce-no-content-x', now)).toEqual({ state: 'done', claim: claim(), outcome: { status: 204, body: '' } });
      });

      it('unkept: an outcome kept as null, a retry\'s own nonce, a plain nonce', async () => {
        const s = uuidv4();
        await store.rememberNonce(s, 'nonce-too-large-xx', now + 600, now, claim());
        await store.keepOutcome(s, 'nonce-too-large-xx', null);
        expect(await store.findCall(s, 'nonce-too-large-xx', now)).toEqual({ state: 'unkept' });
        await store.rememberNonce(s, 'nonce-of-a-retry-x', now + 600, now, { mac: '', retry: true });
        expect(await store.findCall(s, 'nonce-of-a-retry-x', now)).toEqual({ state: 'unkept' });
        await store.rememberNonce(s, 'nonce-plain-get-xx', now + 600, now);
        expect(await store.findCall(s, 'nonce-plain-get-xx', now)).toEqual({ state: 'unkept' });
        // An outcome for a plain nonce is not taken either.
        await store.keepOutcome(s, 'nonce-plain-get-xx', { status: 200, body: '1' });
        expect(await store.findCall(s, 'nonce-plain-get-xx', now)).toEqual({ state: 'unkept' });
      });

      it('the first outcome stays: a second keepOutcome changes nothing', async () => {
        const s = uuidv4();
        await store.rememberNonce(s, 'nonce-kept-twice-x', now + 600, now, claim());
        await store.keepOutcome(s, 'nonce-kept-twice-x', { status: 200, body: '"first"' });
        await store.keepOutcome(s, 'nonce-kept-twice-x', { status: 500, body: '"second"' });
        expect(await store.findCall(s, 'nonce-kept-twice-x', now)).toMatchObject({ state: 'done', outcome: { status: 200, body: '"first"' } });
      });

      it('a record lives as long as its nonce: expired, it is gone, and a revival starts afresh', async () => {
        const s = uuidv4();
        await store.rememberNonce(s, 'nonce-kept-expires', now + 5, now, claim('0'.repeat(64)));
        await store.keepOutcome(s, 'nonce-kept-expires', { status: 200, body: '"old"' });
        expect(await store.findCall(s, 'nonce-kept-expires', now + 4000)).toBeNull();
        expect(await store.rememberNonce(s, 'nonce-kept-expires', now + 5000, now + 4000, claim('1'.repeat(64)))).toBe(true);
        expect(await store.findCall(s, 'nonce-kept-expires', now + 4000)).toEqual({ state: 'running', claim: claim('1'.repeat(64)) });
      });

      it('concurrent claims of one nonce with claims: exactly one wins', async () => {
        const s = uuidv4();
        const results = await Promise.all([1, 2, 3, 4].map(() => store.rememberNonce(s, 'nonce-claim-racing', now + 600, now, claim())));
        expect(results.filter(Boolean)).toHaveLength(1);
      });
    });

    describe('login throttling', () => {
      // `now` is a multiple of 60, so the window [now, now + 60) is the one these counts fall in.
      it('counts failures per key in fixed windows; resetAt is when the window ends', async () => {
        const key = `pair:${unique('t')}`;
        expect(await store.countFailures(key, now, 60)).toEqual({ count: 0, resetAt: now + 60 });
        expect(await store.recordFailure(key, now, 60)).toEqual({ count: 1, resetAt: now + 60 });
        expect(await store.recordFailure(key, now + 10, 60)).toEqual({ count: 2, resetAt: now + 60 });
        expect(await store.countFailures(key, now + 59, 60)).toEqual({ count: 2, resetAt: now + 60 });
        // The next window starts from nothing.
        expect(await store.countFailures(key, now + 60, 60)).toEqual({ count: 0, resetAt: now + 120 });
        expect(await store.recordFailure(key, now + 61, 60)).toEqual({ count: 1, resetAt: now + 120 });
        expect((await store.countFailures(`pair:${unique('other')}`, now, 60)).count).toBe(0);
      });

      it('resetFailures forgets a key and only that key', async () => {
        const [key, other] = [`pair:${unique('r')}`, `pair:${unique('r')}`];
        for (let i = 0; i < 3; i++) await store.recordFailure(key, now, 60);
        await store.recordFailure(other, now, 60);
        await store.resetFailures(key);
        expect((await store.countFailures(key, now, 60)).count).toBe(0);
        expect((await store.countFailures(other, now, 60)).count).toBe(1);
        expect((await store.recordFailure(key, now, 60)).count).toBe(1);
        await store.resetFailures(`pair:${unique('never')}`);
      });

      it('concurrent failures are all counted, each answered with its own count', async () => {
        const key = `ip:${unique('t')}`;
        const counts = await Promise.all(Array.from({ length: 12 }, () => store.recordFailure(key, now, 60)));
        expect(counts.map((c) => c.count).sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
        expect((await store.countFailures(key, now, 60)).count).toBe(12);
      });

      it('a key with many failures is counted exactly', async () => {
        const key = `user:${unique('many')}`;
        for (let i = 0; i < 200; i++) await store.recordFailure(key, now, 60);
        expect(await store.countFailures(key, now, 60)).toEqual({ count: 200, resetAt: now + 60 });
      });
    });

    describe('expiry, as callers see it (swept or not)', () => {
      // What a store does with expired records (a TTL monitor that runs once a minute, a sweep,
      // nothing yet) is its own business: callers must never get them back.
      it('an expired session is never returned, before or after a sweep; a live one always is', async () => {
        const dead = session(unique('sweep'), now - 1);
        const live = session(unique('sweep'), now + 1000);
        await store.createSession(dead);
        await store.createSession(live);
        expect(await store.getSession(dead.sessionId, now)).toBeNull();
        await store.sweep(now);
        expect(await store.getSession(dead.sessionId, now)).toBeNull();
        expect(await store.getSession(live.sessionId, now)).not.toBeNull();
      });

      it('an expired nonce can be used again, before or after a sweep', async () => {
        const s = unique('nonce-sweep');
        expect(await store.rememberNonce(s, 'nonce-expiry-check', now - 5, now - 700)).toBe(true);
        expect(await store.rememberNonce(s, 'nonce-expiry-check', now + 600, now)).toBe(true);
        await store.sweep(now + 601);
        expect(await store.rememberNonce(s, 'nonce-expiry-check', now + 1300, now + 700)).toBe(true);
      });

      it('failures that left the window are not counted, before or after a sweep', async () => {
        const key = `user:${unique('window')}`;
        await store.recordFailure(key, now - 100, 10);
        expect((await store.countFailures(key, now, 10)).count).toBe(0);
        await store.sweep(now);
        expect((await store.countFailures(key, now, 10)).count).toBe(0);
      });
    });
  });
}
