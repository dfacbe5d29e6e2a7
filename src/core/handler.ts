/**
 * The core: one function from a request to a response, for every route simpleapi owns: the POST
 * endpoint, its CORS preflight, `GET /jobs/<id>`, `/health` (with `/health/live` and
 * `/health/ready`) and, with `--metrics` on the main port, `GET /metrics`. It returns null for any
 * other path, which the transport then hands to the console or to a user's own routes.
 */
import type { Logger } from 'pino';
import type { AuthSettings } from './auth.ts';
import { corsPolicy } from './cors.ts';
import { newRequestId } from './ids.ts';
import { createEndpoint, type EndpointSettings } from './endpoint.ts';
import { createJobStatus } from './job-status.ts';
import type { Dispatcher } from './dispatch.ts';
import { NO_METRICS, type Metrics, type Route } from './metrics.ts';
import type { CoreRequest, CoreResponse } from './request.ts';
import { traceOf, type TraceContext } from './trace.ts';
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
  /** What the core reports; NO_METRICS when metrics are off. */
  metrics?: Metrics;
  /** The Prometheus text of `GET /metrics`, when it is served on this port. */
  scrape?: () => Promise<{ contentType: string; text: string }>;
}

/** The paths the core answers besides the endpoint and `/jobs/<id>`. */
export const HEALTH_PATHS = ['/health', '/health/live', '/health/ready'] as const;

/** A response, a promise of one, or null: not a route of the core. A call that settles at once is answered without a promise. */
export type Handler = (request: CoreRequest) => CoreResponse | Promise<CoreResponse | null> | null;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The request id: the client's `x-request-id` when it is sane, else a new UUID. */
export function requestIdOf(headers: CoreRequest['headers']): string {
  const incoming = headers['x-request-id'];
  return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : newRequestId();
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
  const metrics = deps.metrics ?? NO_METRICS;
  const endpoint = createEndpoint({ store: deps.store, log: deps.log, dispatcher: deps.dispatcher, settings, metrics });
  const jobStatus = createJobStatus({ store: deps.store, jobs: deps.jobs, auth });
  const cors = corsPolicy(settings.corsOrigins);

  const finish = (request: CoreRequest, response: CoreResponse, trace: TraceContext, name: Route, started: number): CoreResponse => {
    const extra = cors.headers(request.headers);
    if (extra !== undefined) Object.assign(response.headers, extra);
    response.headers.traceresponse = trace.response;
    response.traceId = trace.traceId;
    if (deps.draining()) response.close = true;
    if (metrics.on) {
      metrics.request(name, response.taken === true ? 200 : response.status, performance.now() - started);
      if (response.headers['x-retried'] === '1') metrics.retryAnswered();
    }
    return response;
  };

  /** Runs a route with its request id and trace, and finishes its answer. */
  const route = (request: CoreRequest, name: Route, answer: (requestId: string, trace: TraceContext) => CoreResponse | Promise<CoreResponse>): Promise<CoreResponse> => {
    const started = metrics.on ? performance.now() : 0;
    const requestId = requestIdOf(request.headers);
    const trace = traceOf(request.headers);
    const response = answer(requestId, trace);
    return response instanceof Promise ? response.then((r) => finish(request, r, trace, name, started)) : Promise.resolve(finish(request, response, trace, name, started));
  };

  const ping = () => deps.store.ping().catch(() => false);

  const health = async (requestId: string): Promise<CoreResponse> => {
    const up = await ping();
    return json(up ? 200 : 503, requestId, up ? { status: 'ok' } : { status: 'degraded', db: 'down' }, 'GET /health', up ? {} : { 'retry-after': '5' });
  };

  /** Ready for traffic: the database answers and the server is not draining (a load balancer's check). */
  const ready = async (requestId: string): Promise<CoreResponse> => {
    if (deps.draining()) return json(503, requestId, { status: 'draining' }, 'GET /health/ready');
    const up = await ping();
    // Draining may have begun while the ping ran.
    if (deps.draining()) return json(503, requestId, { status: 'draining' }, 'GET /health/ready');
    return json(up ? 200 : 503, requestId, up ? { status: 'ready' } : { status: 'unready', db: 'down' }, 'GET /health/ready', up ? {} : { 'retry-after': '5' });
  };

  const scrape = async (requestId: string): Promise<CoreResponse> => {
    const { contentType, text } = await deps.scrape!();
    return { status: 200, headers: { 'x-request-id': requestId, 'content-type': contentType, 'cache-control': 'no-store' }, body: text, label: 'GET /metrics' };
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
      if (request.method === 'POST') {
        // The hot path, without a closure per request.
        const started = metrics.on ? performance.now() : 0;
        const trace = traceOf(request.headers);
        const response = endpoint(request, requestIdOf(request.headers), trace);
        return response instanceof Promise ? response.then((r) => finish(request, r, trace, 'endpoint', started)) : finish(request, response, trace, 'endpoint', started);
      }
      if (request.method === 'OPTIONS') {
        return route(request, 'preflight', (requestId) => ({ status: 204, headers: { 'x-request-id': requestId, ...cors.preflight(request.headers) }, label: 'OPTIONS' }));
      }
      return route(request, 'endpoint', (requestId) => notPost(request, requestId));
    }
    if (request.method === 'GET' && path.startsWith('/jobs/')) return route(request, 'jobs', (requestId) => jobStatus(request, path, requestId));
    if (request.method !== 'GET' && request.method !== 'HEAD') return null;
    if (path === '/health') return route(request, 'health', health);
    if (path === '/health/live') return route(request, 'health_live', (requestId) => json(200, requestId, { status: 'ok' }, 'GET /health/live'));
    if (path === '/health/ready') return route(request, 'health_ready', ready);
    if (path === '/metrics' && deps.scrape !== undefined) return route(request, 'metrics', scrape);
    return null;
  };
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
