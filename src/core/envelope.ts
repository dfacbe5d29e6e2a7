/**
 * The two request envelopes of docs/protocol.md §2, turned into calls, and the responses built back.
 * Pure functions over parsed JSON: no I/O, so the property tests can drive them directly.
 */
import { decodeUtf8 } from './body.ts';
import { ApiError, rpcErrorObject, simpleErrorBody } from './errors.ts';

export type RpcId = string | number | null;

/** One method call to run, whichever envelope it came in. */
export interface Call {
  method: string;
  params: unknown;
  /** JSON-RPC only: the id to echo; undefined for a notification. */
  id?: RpcId;
}

/** A JSON-RPC entry that cannot be run: answered with this error and this id. */
export interface RejectedEntry {
  error: ApiError;
  id: RpcId;
}

/** Which of §2's two forms a request is answered in: decided once, here, and carried along. */
export type Form = 'simple' | 'rpc';

export type Envelope =
  | { kind: 'simple'; form: 'simple'; call: Call }
  | { kind: 'rpc'; form: 'rpc'; entry: Call | RejectedEntry }
  | { kind: 'batch'; form: 'rpc'; entries: (Call | RejectedEntry)[] }
  /** Answered as one error without running anything, in the form named. */
  | { kind: 'error'; form: Form; error: ApiError };

export function isRejected(entry: Call | RejectedEntry): entry is RejectedEntry {
  return 'error' in entry;
}

/** True when the envelope holds a call the dispatcher will run (and count), as Dispatcher.reply reads it. */
export function runsACall(envelope: Envelope): boolean {
  switch (envelope.kind) {
    case 'simple':
      return true;
    case 'rpc':
      return !isRejected(envelope.entry);
    case 'batch':
      return envelope.entries.some((entry) => !isRejected(entry));
    case 'error':
      return false;
  }
}

const hasOwn = (o: object, key: string) => Object.prototype.hasOwnProperty.call(o, key);

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function isValidId(value: unknown): value is RpcId {
  return value === null || typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value));
}

/**
 * Which form a body that is not valid JSON meant (§2): JSON-RPC when its text holds `"jsonrpc"` or
 * starts with `[`, simple otherwise.
 */
export function unparsableForm(body: Buffer): Form {
  let i = 0;
  while (i < body.length && (body[i] === 0x20 || body[i] === 0x0a || body[i] === 0x0d || body[i] === 0x09)) i++;
  if (body[i] === 0x5b) return 'rpc';
  return body.includes('"jsonrpc"') ? 'rpc' : 'simple';
}

/**
 * The form of a body the server will not parse as a request (a wrong Content-Type): by its
 * structure when it is JSON after all, else by the rule for unparsable bodies.
 */
export function formOfBody(body: Buffer): Form {
  const text = decodeUtf8(body);
  if (text === null) return unparsableForm(body);
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) || (isPlainObject(value) && hasOwn(value, 'jsonrpc')) ? 'rpc' : 'simple';
  } catch {
    return unparsableForm(body);
  }
}

function rejectEntry(message: string, id: RpcId): RejectedEntry {
  return { error: new ApiError('InvalidRequest', message), id };
}

function parseRpcEntry(entry: unknown): Call | RejectedEntry {
  if (!isPlainObject(entry)) return { error: new ApiError('InvalidRequest', 'A JSON-RPC request must be an object'), id: null };
  const idPresent = hasOwn(entry, 'id');
  const id = idPresent && isValidId(entry.id) ? entry.id : null;
  if (idPresent && !isValidId(entry.id)) return rejectEntry('id must be a string, a number or null', id);
  if (entry.jsonrpc !== '2.0') return rejectEntry('jsonrpc must be exactly "2.0"', id);
  if (typeof entry.method !== 'string') return rejectEntry('method must be a string', id);
  let params: unknown = {};
  if (hasOwn(entry, 'params')) {
    if (entry.params === null || typeof entry.params !== 'object') return rejectEntry('params must be an object or an array', id);
    params = entry.params;
  }
  const call: Call = { method: entry.method, params };
  if (idPresent) call.id = id;
  return call;
}

/**
 * Classifies a parsed body into an envelope (§2).
 *
 * @example parseEnvelope({ method: 'math.sum', parameters: [1, 2] }, 100) // { kind: 'simple', ... }
 */
export function parseEnvelope(body: unknown, batchLimit: number): Envelope {
  if (Array.isArray(body)) {
    if (body.length === 0) return { kind: 'error', form: 'rpc', error: new ApiError('InvalidRequest', 'A batch must not be empty') };
    if (body.length > batchLimit) {
      return {
        kind: 'error',
        form: 'rpc',
        error: new ApiError('InvalidRequest', `A batch holds at most ${batchLimit} entries; this one has ${body.length}`),
      };
    }
    return { kind: 'batch', form: 'rpc', entries: body.map(parseRpcEntry) };
  }
  if (isPlainObject(body)) {
    if (hasOwn(body, 'jsonrpc')) return { kind: 'rpc', form: 'rpc', entry: parseRpcEntry(body) };
    if (hasOwn(body, 'method')) {
      if (typeof body.method !== 'string') {
        return { kind: 'error', form: 'simple', error: new ApiError('InvalidRequest', 'method must be a string') };
      }
      return { kind: 'simple', form: 'simple', call: { method: body.method, params: hasOwn(body, 'parameters') ? body.parameters : {} } };
    }
  }
  return {
    kind: 'error',
    form: 'simple',
    error: new ApiError('InvalidRequest', 'The body must be {"method": ..., "parameters": ...} or a JSON-RPC 2.0 request'),
  };
}

/** A JSON-RPC response object. */
export type RpcResponse =
  | { jsonrpc: '2.0'; result: unknown; id: RpcId }
  | { jsonrpc: '2.0'; error: ReturnType<typeof rpcErrorObject>; id: RpcId };

export function rpcResult(result: unknown, id: RpcId): RpcResponse {
  // JSON has no undefined: a method that returns nothing answers null.
  return { jsonrpc: '2.0', result: result === undefined ? null : result, id };
}

export function rpcError(error: ApiError, id: RpcId): RpcResponse {
  return { jsonrpc: '2.0', error: rpcErrorObject(error), id };
}

export { simpleErrorBody };
