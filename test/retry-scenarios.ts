/**
 * The §6 retry cases over real servers, written once and run on every store: the first attempt
 * goes to instance `a`, its retries to instance `b` (the same server on the embedded store).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, newAttempt, postSigned, retryUntilSettled, until, type Attempt } from './helpers/retry.ts';
import { createAccount, type Grant } from './helpers/signed.ts';

export interface Instances {
  a: string;
  b: string;
  /** How often once.hold / once.job ran for a key, summed over the instances. */
  runs(key: string): Promise<number>;
  close(): Promise<void>;
  /**
   * Jobs are at-least-once here: Agenda on FerretDB, whose conditional updates are not atomic, can
   * lock one job on both instances. The retry must still start no second job (the same job id).
   */
  jobsAtLeastOnce?: boolean;
}

const unique = (label: string) => `${label}-${randomBytes(4).toString('hex')}`;

async function publicCall(url: string, method: string, parameters: unknown): Promise<unknown> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: call(method, parameters) });
  return res.json();
}

/** Sums a public method's numeric answer over the given endpoints (one per process). */
export function runsOver(urls: string[]): (key: string) => Promise<number> {
  return async (key) => {
    let total = 0;
    for (const url of urls) total += (await publicCall(url, 'once.runs', { key })) as number;
    return total;
  };
}

export function retryScenarios(label: string, open: () => Promise<Instances>): void {
  describe(`retries (§6): ${label}`, () => {
    let inst: Instances;
    let grant: Grant;
    beforeAll(async () => {
      inst = await open();
      grant = await createAccount(inst.a, `${unique('retrier')}@example.com`);
    });
    afterAll(() => inst?.close());

    it('the connection is cut after the method ran: a retry meanwhile is 409 with Retry-After, a later one gets the first outcome, and the method ran once', async () => {
      const key = unique('cut');
      const body = call('once.hold', { key, hold: true });
      const first = newAttempt();
      const cut = new AbortController();
      const pending = postSigned(inst.a, grant, body, { ...first, signal: cut.signal }).then(
        () => 'answered',
        (err: Error) => err.name,
      );
      await until(async () => (await inst.runs(key)) === 1); // the method ran (and holds)
      cut.abort(); // the client gives up: the connection is closed under the server
      expect(await pending).toBe('AbortError');

      const running = await postSigned(inst.b, grant, body, { retryOf: first });
      expect(running.status).toBe(409);
      expect(running.headers.get('retry-after')).toBe('1');
      expect(running.json).toMatchObject({ error: { code: 'Conflict', type: 'conflict', details: [{ reason: 'first attempt still running' }] } });
      expect(running.signed).toBe(true);
      expect(running.retried).toBe(false);

      await publicCall(inst.a, 'once.release', { key });
      const settled = await retryUntilSettled(inst.b, grant, body, first);
      expect(settled.status).toBe(200);
      expect(settled.retried).toBe(true);
      expect(settled.signed).toBe(true); // over the retry's own nonce
      expect(settled.json).toEqual({ key, run: 1, user: grant.user_id, pad: '' });
      // Asked again, the same answer; still one run.
      const again = await postSigned(inst.b, grant, body, { retryOf: first });
      expect(again).toMatchObject({ status: 200, retried: true, signed: true, text: settled.text });
      expect(await inst.runs(key)).toBe(1);
    });

    it('the retry arrives first: it runs, the late original is refused as a replay (signed), a second retry gets the outcome', async () => {
      const key = unique('late');
      const body = call('once.hold', { key });
      const first: Attempt = newAttempt(); // signed, never sent until the end
      const retry = await postSigned(inst.b, grant, body, { retryOf: first });
      expect(retry).toMatchObject({ status: 200, retried: false, signed: true });
      expect(retry.json).toMatchObject({ key, run: 1 });
      const late = await postSigned(inst.a, grant, body, first);
      expect(late.status).toBe(401);
      expect(late.json).toEqual({ error: { code: 'BadSignature', message: 'x-nonce was already used', type: 'auth' } });
      expect(late.signed).toBe(true);
      const second = await retryUntilSettled(inst.a, grant, body, first);
      expect(second).toMatchObject({ status: 200, retried: true, signed: true, text: retry.text });
      expect(await inst.runs(key)).toBe(1);
    });

    it('a retry with another body or another x-retry-timestamp is 409 "retry differs", and nothing runs', async () => {
      const key = unique('differs');
      const body = call('once.hold', { key });
      const first = newAttempt();
      expect((await postSigned(inst.a, grant, body, first)).status).toBe(200);
      await retryUntilSettled(inst.b, grant, body, first); // the outcome is kept by now
      const changed = await postSigned(inst.b, grant, call('once.hold', { key, pad: 'changed' }), { retryOf: first });
      expect(changed.status).toBe(409);
      expect(changed.json).toMatchObject({ error: { code: 'Conflict', details: [{ reason: 'retry differs from the first attempt' }] } });
      expect(changed.signed).toBe(true);
      const otherTime = await postSigned(inst.b, grant, body, { retryOf: { nonce: first.nonce, timestamp: String(Number(first.timestamp) - 1) } });
      expect(otherTime.status).toBe(409);
      expect(otherTime.json).toMatchObject({ error: { details: [{ reason: 'retry differs from the first attempt' }] } });
      expect(await inst.runs(key)).toBe(1);
    });

    it('JSON-RPC: the replay is the first body (its id included); a Conflict keeps HTTP 409 with id null, signed', async () => {
      const key = unique('rpc');
      const body = JSON.stringify({ jsonrpc: '2.0', method: 'once.hold', params: { key }, id: 'call-7' });
      const first = newAttempt();
      const original = await postSigned(inst.a, grant, body, first);
      expect(original.json).toMatchObject({ jsonrpc: '2.0', result: { key, run: 1 }, id: 'call-7' });
      const replay = await retryUntilSettled(inst.b, grant, body, first);
      expect(replay).toMatchObject({ status: 200, retried: true, signed: true, text: original.text });
      const other = await postSigned(inst.b, grant, JSON.stringify({ jsonrpc: '2.0', method: 'once.hold', params: { key }, id: 'call-8' }), { retryOf: first });
      expect(other.status).toBe(409);
      expect(other.signed).toBe(true);
      expect(other.json).toEqual({
        jsonrpc: '2.0',
        error: { code: -32009, message: expect.any(String), data: { code: 'Conflict', type: 'conflict', details: [{ reason: 'retry differs from the first attempt' }] } },
        id: null,
      });
      expect(await inst.runs(key)).toBe(1);
    });

    it('a retried 202 answers the same job id and Location; one job is started', async () => {
      const key = unique('job');
      const body = call('once.job', { key });
      const first = newAttempt();
      const accepted = await postSigned(inst.a, grant, body, first);
      expect(accepted.status).toBe(202);
      const retried = await retryUntilSettled(inst.b, grant, body, first);
      expect(retried).toMatchObject({ status: 202, retried: true, signed: true, text: accepted.text });
      expect(retried.headers.get('location')).toBe(accepted.headers.get('location'));
      expect(retried.json).toEqual({ job_id: accepted.json.job_id });
      await until(async () => (await inst.runs(key)) >= 1);
      if (inst.jobsAtLeastOnce === true) {
        console.info('jobs are at-least-once on this database (FerretDB: Agenda\'s lock is not atomic): one job id is checked, not one run');
        expect(await inst.runs(key)).toBeGreaterThanOrEqual(1);
      } else {
        expect(await inst.runs(key)).toBe(1);
      }
    });
  });
}
