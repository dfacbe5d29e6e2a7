/**
 * Background jobs on MongoDB (Agenda): any instance answers for any job, and a job whose process
 * is killed mid-run is finished by another instance (or failed after its retries).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { hasMongo, MONGODB_URL, uniqueDbName } from './helpers/mongo.ts';
import { spawnServer, type Spawned } from './helpers/server.ts';
import { createAccount, getV2, postV2, type Grant } from './helpers/signed.ts';

const running: Spawned[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop('SIGKILL')));
});
async function serve(db: string, extra: string[] = []): Promise<Spawned> {
  const s = await spawnServer(['--port=0', '--methods-dir=test/fixtures/methods', `--db-url=${MONGODB_URL}`, `--db-name=${db}`, '--jobs-lock=2', ...extra]);
  running.push(s);
  return s;
}

const poll = (url: string, location: string, grant: Grant) => getV2(url, location, grant);

async function until(url: string, location: string, grant: Grant, done: (job: Record<string, unknown>) => boolean, seconds = 40): Promise<Record<string, unknown>> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const p = await poll(url, location, grant);
    if (done(p.json)) return p.json;
    if (Date.now() > deadline) throw new Error(`gave up on ${location}: ${JSON.stringify(p.json)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const slow = (steps: number, stepMs: number) => JSON.stringify({ method: 'reports.slow', parameters: { steps, stepMs } });

describe.skipIf(!hasMongo)('jobs on MongoDB', () => {
  it('a job started on A is polled to its result on B', async () => {
    const db = uniqueDbName('jobs');
    const [a, b] = await Promise.all([serve(db), serve(db)]);
    const grant = await createAccount(a.url!, 'jobs-on-mongo@example.com');
    const start = await postV2(a.url!, grant, slow(3, 100));
    expect(start.status).toBe(202);
    const location = start.headers.get('location')!;
    const job = await until(b.url!, location, grant, (j) => j.state === 'done');
    expect(job).toMatchObject({ state: 'done', method: 'reports.slow', result: { steps: 3, by: 'jobs-on-mongo@example.com' } });
    const mallory = await createAccount(b.url!, 'jobs-mallory@example.com');
    expect((await poll(b.url!, location, mallory)).status).toBe(403);
  }, 60_000);

  it('the per-user cap is counted in the database: two instances together accept no more than it', async () => {
    const db = uniqueDbName('jobcaps');
    const [a, b] = await Promise.all([serve(db, ['--jobs-max-per-owner=3']), serve(db, ['--jobs-max-per-owner=3'])]);
    const grant = await createAccount(a.url!, 'jobs-capped@example.com');
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) codes.push((await postV2(i % 2 === 0 ? a.url! : b.url!, grant, slow(100, 60000))).status);
    expect(codes).toEqual([202, 202, 202, 429, 429]);
    const refused = await postV2(b.url!, grant, slow(1, 0));
    expect(refused.headers.get('retry-after')).toBe('5');
    expect(refused.json).toMatchObject({ error: { code: 'TooManyRequests', message: expect.stringContaining('this user has 3 queued or running') } });
  }, 60_000);

  it("one user's long jobs do not hold every slot: another user's short job runs meanwhile", async () => {
    const db = uniqueDbName('jobfair');
    const a = await serve(db, ['--jobs-concurrency=2', '--jobs-owner-concurrency=1']);
    const [hog, other] = [await createAccount(a.url!, 'jobs-hog@example.com'), await createAccount(a.url!, 'jobs-other@example.com')];
    for (let i = 0; i < 4; i++) expect((await postV2(a.url!, hog, slow(60, 1000))).status).toBe(202);
    const started = Date.now();
    const quick = await postV2(a.url!, other, slow(1, 10));
    const job = await until(a.url!, quick.headers.get('location')!, other, (j) => j.state === 'done', 30);
    expect(job).toMatchObject({ state: 'done', result: { steps: 1, by: 'jobs-other@example.com' } });
    console.log(`fair turns on Agenda: the other user's job finished ${Date.now() - started} ms after it was queued behind 4 minute-long jobs`);
  }, 60_000);

  it('a process killed mid-job: another instance picks the job up after its lock expires and finishes it', async () => {
    const db = uniqueDbName('jobs_kill');
    const a = await serve(db);
    const grant = await createAccount(a.url!, 'killed@example.com');
    const location = (await postV2(a.url!, grant, slow(10, 300))).headers.get('location')!;
    await until(a.url!, location, grant, (j) => j.state === 'running' && (j.progress as { fraction: number } | null)?.fraction !== undefined);
    const b = await serve(db);
    await a.stop('SIGKILL');
    const job = await until(b.url!, location, grant, (j) => j.state === 'done' || j.state === 'failed', 60);
    expect(job).toMatchObject({ state: 'done', result: { steps: 10, by: 'killed@example.com' } });
  }, 90_000);

  it('with no retries left, the job of a killed process is failed, not left running', async () => {
    // Long enough (20 s) that it cannot finish while the second instance starts on a loaded machine.
    const db = uniqueDbName('jobs_noretry');
    const a = await serve(db, ['--jobs-retries=0']);
    const grant = await createAccount(a.url!, 'no-retry@example.com');
    const location = (await postV2(a.url!, grant, slow(40, 500))).headers.get('location')!;
    await until(a.url!, location, grant, (j) => j.state === 'running' && j.progress !== null);
    const b = await serve(db, ['--jobs-retries=0']);
    await a.stop('SIGKILL');
    const job = await until(b.url!, location, grant, (j) => j.state === 'done' || j.state === 'failed', 60);
    expect(job).toMatchObject({ state: 'failed', error: { code: 'InternalError', message: "The job's process stopped before it finished (1 time)", type: 'server' } });
  }, 90_000);
});
