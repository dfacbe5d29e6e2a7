/**
 * GET /jobs/<id> (docs/protocol.md §7): 202 with the state while the job is queued or running,
 * 200 once it is done or failed. A job started with a session is readable only by a request of
 * the same user, signed over its request target (§6), and the answer is signed back.
 */
import { authenticate, responseSigner, type AuthResult, type AuthSettings } from './auth.ts';
import { ApiError, simpleErrorBody, toApiError } from './errors.ts';
import type { CoreRequest, CoreResponse } from './request.ts';
import type { JobRunner } from './jobs.ts';
import type { Store } from '../store/types.ts';

const JOB_ID = /^[A-Za-z0-9-]{1,64}$/;

/** @example const answer = createJobStatus({ store, jobs, auth }); await answer(request, id) */
export function createJobStatus(deps: { store: Store; jobs: JobRunner; auth: AuthSettings }) {
  const { store, jobs } = deps;
  return async (request: CoreRequest, path: string, requestId: string): Promise<CoreResponse> => {
    let status: number;
    let body: unknown;
    let auth: AuthResult | undefined;
    let retryAfter: number | undefined;
    try {
      auth = await authenticate(request.headers, Buffer.from(request.target, 'latin1'), store, deps.auth);
      if (auth.kind === 'refused') throw auth.error;
      const id = path.slice('/jobs/'.length);
      const job = JOB_ID.test(id) ? await jobs.get(id) : null;
      if (job === null) throw new ApiError('NotFound', 'No job with that id (finished jobs are kept for --jobs-keep seconds)');
      const { owner, ...view } = job;
      if (owner !== null) {
        if (auth.kind !== 'verified') throw new ApiError('Unauthenticated', 'This job was started with a session: sign the request (over its target, docs/protocol.md §6)');
        if (auth.session.userKey !== owner) throw new ApiError('Forbidden', 'This job belongs to another user');
      }
      status = view.state === 'queued' || view.state === 'running' ? 202 : 200;
      body = view;
    } catch (err) {
      const error = toApiError(err);
      status = error.status;
      body = simpleErrorBody(error);
      retryAfter = error.retryAfter;
    }
    const text = JSON.stringify(body);
    const headers: Record<string, string> = { 'x-request-id': requestId, 'content-type': 'application/json; charset=utf-8' };
    if (retryAfter !== undefined) headers['retry-after'] = String(Math.ceil(retryAfter));
    const signer = auth === undefined ? undefined : responseSigner(auth, undefined, deps.auth.scheme);
    if (signer !== undefined) headers['x-hmac'] = signer.sign(text);
    return { status, headers, body: text, label: 'GET /jobs' };
  };
}
