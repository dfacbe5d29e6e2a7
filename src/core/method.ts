/**
 * What a method module is and what it is given. A module needs no import from this package: these
 * types and `defineMethod` are there for authors who want the compiler's help.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Db } from 'mongodb';
import type { Pool } from 'mysql2/promise';
import type { Logger } from 'pino';
import type { Accounts } from './accounts.ts';

export type Auth = 'public' | 'session';

/** The transport's own request and response, for a raw method (`raw = true`) that writes its answer itself. */
export interface NativeHttp {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
}

/** The signed-in session a request carries (docs/protocol.md §5). */
export interface Session {
  readonly userId: string;
  readonly sessionId: string;
  readonly expires: number;
  /** A plain object the method may change; `saveState()` persists it. */
  state: Record<string, unknown>;
  /**
   * Persists `state`. When another request saved this session's state since this one read it, it
   * throws Conflict and leaves the stored state as the other request wrote it; `ctx.session.state`
   * is then refreshed to the stored value so the method can re-apply its change and save again.
   */
  saveState(): Promise<void>;
}

export interface MethodContext {
  /** The verified session, or null for a request without `x-session-id`. */
  readonly session: Session | null;
  /** The MongoDB database for methods' own collections; null on the other stores. */
  readonly db: Db | null;
  /** The MySQL/MariaDB pool (mysql2/promise) for methods' own tables; null on the other stores. */
  readonly sql: Pool | null;
  readonly requestId: string;
  /**
   * The request's W3C trace id (32 hex digits): the caller's `traceparent` trace, or a new one.
   * A background job has the trace of the request that started it.
   */
  readonly traceId: string;
  /** A child logger that carries the request id, the trace id and the method name. */
  readonly log: Logger;
  /** Fires when the client disconnects (or the method's time runs out). */
  readonly signal: AbortSignal;
  /** The client address (from X-Forwarded-For only with --trust-proxy). */
  readonly ip: string;
  /**
   * The HTTP request and response, for the rare method that must write its answer itself
   * (`raw = true`); null in background jobs. Everything else should return a value or a stream.
   */
  readonly http: NativeHttp | null;
  /** Account and session operations, used by the `account.*` methods. */
  readonly accounts: Accounts;
  /** The method's own name, e.g. `math.sum`. */
  readonly method: string;
  /** Background methods only: reports how far the job is (0 to 1) and what it is doing. */
  progress?(fraction: number, note?: string): void;
}

export interface MethodModule<P = any, R = unknown> {
  description?: string;
  auth?: Auth;
  params?: Record<string, unknown> | boolean;
  result?: Record<string, unknown> | boolean;
  /** Answer 202 with a job id at once and run on the job runner. */
  background?: boolean;
  /**
   * `invoke` returns an async iterable (or a web ReadableStream) of events, sent as server-sent
   * events, or NDJSON when the request accepts `application/x-ndjson`.
   */
  stream?: boolean;
  /** Streaming methods: the server-sent event name of every event (`event: <name>`). */
  event?: string;
  /** Write the response through `ctx.http` (files, protocols of its own); rarely needed. */
  raw?: boolean;
  /** Background methods: seconds the job may run; jobs.timeout still caps it. */
  timeout?: number;
  /**
   * This method's own rate limit, on top of the caller's general one: `points` calls per
   * `duration` seconds per caller (the user when signed, else the client address), or per client
   * address with `per: 'address'`. Past it the call gets TooManyRequests with Retry-After.
   */
  rateLimit?: { points: number; duration: number; per?: 'caller' | 'address' };
  invoke: (ctx: MethodContext, params: P) => R | Promise<R>;
}

type Schema = Readonly<Record<string, unknown>>;
type Primitive<T> = T extends 'string' ? string : T extends 'number' | 'integer' ? number : T extends 'boolean' ? boolean : T extends 'null' ? null : T extends 'array' ? unknown[] : T extends 'object' ? Record<string, unknown> : unknown;
type Props<S> = S extends { properties: infer P } ? P : {};
type Req<S> = S extends { required: readonly (infer K)[] } ? K : never;
type ObjectOf<S> = { [K in keyof Props<S> as K extends Req<S> ? K : never]: Infer<Props<S>[K]> } & { [K in keyof Props<S> as K extends Req<S> ? never : K]?: Infer<Props<S>[K]> };

/**
 * The TypeScript type of a JSON Schema written `as const`, for the common keywords: `type`,
 * `properties` with `required`, `items`, `prefixItems`, `enum` and `const`; anything else is
 * `unknown`. (json-schema-to-ts covers more, but its inference through a callback's parameter
 * exceeds the compiler's depth limit.)
 */
export type Infer<S> = S extends { const: infer C }
  ? C
  : S extends { enum: readonly (infer E)[] }
    ? E
    : S extends { type: 'object' }
      ? ObjectOf<S>
      : S extends { type: 'array'; prefixItems: infer P extends readonly unknown[] }
        ? { [I in keyof P]: Infer<P[I]> }
        : S extends { type: 'array'; items: infer I }
          ? Infer<I>[]
          : S extends { type: infer T }
            ? T extends readonly (infer U)[]
              ? Primitive<U>
              : Primitive<T>
            : unknown;

/**
 * Types a method from its schemas: `params` in `invoke` is inferred from the `params` schema.
 * Write schemas `as const` so their literal types survive.
 *
 * @example
 * // methods/math/total.ts: a default export is discovered like named ones
 * export default defineMethod({
 *   auth: 'public',
 *   params: { type: 'array', items: { type: 'number' } } as const,
 *   invoke: (ctx, numbers) => numbers.reduce((a, b) => a + b, 0), // numbers: number[]
 * });
 */
export function defineMethod<const S extends Schema, R>(method: {
  description?: string;
  auth?: Auth;
  params: S;
  result?: Schema;
  invoke: (ctx: MethodContext, params: Infer<S>) => R | Promise<R>;
}): MethodModule<Infer<S>, R>;
export function defineMethod<R>(method: { description?: string; auth?: Auth; result?: Schema; invoke: (ctx: MethodContext, params: unknown) => R | Promise<R> }): MethodModule<unknown, R>;
export function defineMethod(method: unknown): unknown {
  return method;
}
