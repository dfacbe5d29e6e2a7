/**
 * The core: one function from a request to a response, for every route simpleapi owns: the POST
 * endpoint, its CORS preflight, `GET /jobs/<id>` and `/health`. It returns null for any other
 * path, which the transport then hands to the console or to a user's own routes.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuthSettings } from './auth.ts';
import { corsPolicy } from './cors.ts';
import { createEndpoint, type EndpointSettings } from './endpoint.ts';
import { createJobStatus } from './job-status.ts';
import type { Dispatcher } from './dispatch.ts';
import type { CoreRequest, CoreResponse } from './request.ts';
import type { JobRunner } from './jobs.ts';
import type { Store } from '../store/types.ts';

export interface HandlerDeps {
  store: Store;
  log: Logger;
  dispatcher: Dispatcher;
  jobs: JobRunner;
  settings: EndpointSettings & {
    /** Path of the POST endpoint. */
    path: string;
    corsOrigins: string;
    /** Where the console is served, when it is: a browser's GET of the endpoint is pointed there. */
    consolePath: string | null;
  };
  /** True once the server is shutting down: answers then ask the client to close. */
  draining: () => boolean;
}

export type Handler = (request: CoreRequest) => Promise<CoreResponse | null> | null;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The request id: the client's `x-request-id` when it is sane, else a new UUID. */
export function requestIdOf(headers: CoreRequest['headers']): string {
  const incoming = headers['x-request-id'];
  return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

/** The path of a request target, without its query. */
export function pathOf(target: string): string {
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}

function json(status: number, requestId: string, body: unknown, label: string, extra: Record<string, string> = {}): CoreResponse {
  return { status, headers: { 'x-request-id': requestId, 'content-type': 'application/json; charset=utf-8', ...extra }, body: JSON.stringify(body), label };
}

/**
 * @example const handle = createHandler(deps); const response = await handle(request) // null: not ours
 */
export function createHandler(deps: HandlerDeps): Handler {
  const { settings } = deps;
  const auth: AuthSettings = settings.auth;
  const endpoint = createEndpoint({ store: deps.store, log: deps.log, dispatcher: deps.dispatcher, settings });
  const jobStatus = createJobStatus({ store: deps.store, jobs: deps.jobs, auth });
  const cors = corsPolicy(settings.corsOrigins);

  const finish = (request: CoreRequest, response: CoreResponse): CoreResponse => {
    const extra = cors.headers(request.headers);
    if (extra !== undefined) Object.assign(response.headers, extra);
    if (deps.draining()) response.close = true;
    return response;
  };

  const health = async (requestId: string): Promise<CoreResponse> => {
    const up = await deps.store.ping().catch(() => false);
    return json(up ? 200 : 503, requestId, up ? { status: 'ok' } : { status: 'degraded', db: 'down' }, 'GET /health', up ? {} : { 'retry-after': '5' });
  };

  const notPost = (request: CoreRequest, requestId: string): CoreResponse => {
    const accept = typeof request.headers.accept === 'string' ? request.headers.accept : '';
    if (settings.consolePath !== null && request.method === 'GET' && accept.includes('text/html')) {
      // A person who typed the server's address: show where the console is.
      const page = `<!doctype html><meta charset="utf-8"><title>simpleapi</title><p>This is a simpleapi endpoint: send <code>POST ${escapeHtml(settings.path)}</code> with a JSON body. The API console is at <a href="${settings.consolePath}">${settings.consolePath}</a>.</p>`;
      return { status: 405, headers: { 'x-request-id': requestId, 'content-type': 'text/html; charset=utf-8', allow: 'POST' }, body: page, label: `${request.method} ${settings.path}` };
    }
    const hint = settings.consolePath === null ? '' : `; the API console is at ${settings.consolePath}`;
    return json(405, requestId, { error: { code: 'InvalidRequest', message: `Use POST ${settings.path} with a JSON body${hint}`, type: 'invalidRequest' } }, `${request.method} ${settings.path}`, { allow: 'POST' });
  };

  return (request) => {
    const path = pathOf(request.target);
    if (path === settings.path) {
      const requestId = requestIdOf(request.headers);
      if (request.method === 'POST') return endpoint(request, requestId).then((response) => finish(request, response));
      if (request.method === 'OPTIONS') {
        return Promise.resolve(finish(request, { status: 204, headers: { 'x-request-id': requestId, ...cors.preflight(request.headers) }, label: 'OPTIONS' }));
      }
      return Promise.resolve(finish(request, notPost(request, requestId)));
    }
    if (request.method === 'GET' && path.startsWith('/jobs/')) return jobStatus(request, path, requestIdOf(request.headers)).then((r) => finish(request, r));
    if (path === '/health' && (request.method === 'GET' || request.method === 'HEAD')) return health(requestIdOf(request.headers)).then((r) => finish(request, r));
    return null;
  };
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
