/**
 * Hostile input: properties (fast-check) over the envelope parser and the dispatcher, and a
 * bounded fuzz run of random and mutated requests against a real listening server. Nothing may
 * answer 5xx (no shipped method throws on purpose), every answer must be JSON of the documented
 * shape, and Object.prototype must stay clean.
 */
import { request } from 'node:http';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccountService } from '../src/core/accounts.ts';
import { Dispatcher } from '../src/core/dispatch.ts';
import { parseEnvelope } from '../src/core/envelope.ts';
import { createLogger } from '../src/log.ts';
import { createAjv, discoverMethods, type MethodTable } from '../src/core/registry.ts';
import { MethodHolder } from '../src/core/methods.ts';
import { MemoryStore } from '../src/store/memory.ts';
import { SHIPPED_METHODS, startTestServer, type TestServer } from './helpers/server.ts';

const PROTO_KEYS = Object.getOwnPropertyNames(Object.prototype).sort();
const protoClean = () => {
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(PROTO_KEYS);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
};

const hostileKey = fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'method', 'jsonrpc', 'params', 'parameters', 'id', 'polluted');
const hostileJson: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.jsonValue({ maxDepth: 3 }),
    fc.constantFrom(1e308, -1e308, 2 ** 53 + 1, 0, -0, '', 'x'.repeat(5000), null, true),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.oneof(hostileKey, fc.string()), tie('value'), { maxKeys: 5 }),
  ),
})).value;

const methodName = fc.oneof(
  fc.constantFrom('echo', 'math.sum', 'account.login', 'account.create', 'account.session', 'prefs.get', 'rpc.discover', 'notes.add', '__proto__', 'constructor', '../etc/passwd', 'a..b', ''),
  fc.string({ maxLength: 30 }),
);
const rpcEntry = fc.record(
  { jsonrpc: fc.oneof(fc.constant('2.0'), hostileJson), method: fc.oneof(methodName, hostileJson), params: hostileJson, id: fc.oneof(fc.string(), fc.integer(), fc.constant(null), hostileJson) },
  { requiredKeys: [] },
);
const simpleEnvelope = fc.record({ method: fc.oneof(methodName, hostileJson), parameters: hostileJson }, { requiredKeys: [] });
const anyBody = fc.oneof(simpleEnvelope, rpcEntry, fc.array(fc.oneof(rpcEntry, hostileJson), { maxLength: 12 }), hostileJson);

/** Which form a body asks for (§2), as the server must judge it. */
function formOf(raw: Buffer): 'simple' | 'rpc' {
  try {
    const value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw));
    return Array.isArray(value) || (value !== null && typeof value === 'object' && Object.prototype.hasOwnProperty.call(value, 'jsonrpc')) ? 'rpc' : 'simple';
  } catch {
    const text = raw.toString('latin1');
    // JSON's whitespace only (RFC 8259: space, tab, LF, CR): trimStart() would also drop a 0xA0
    // byte (U+00A0 in latin1), which is no whitespace to a JSON parser, nor to the server.
    return text.replace(/^[ \t\n\r]+/, '').startsWith('[') || text.includes('"jsonrpc"') ? 'rpc' : 'simple';
  }
}

/** The documented shapes (docs/protocol.md §2): a simple success is any JSON; errors and JSON-RPC have theirs. */
function checkShape(form: 'simple' | 'rpc', status: number, body: unknown): void {
  if (status === 204) {
    expect(form).toBe('rpc');
    expect(body).toBeUndefined();
    return;
  }
  if (form === 'simple') {
    if (status >= 400) {
      const e = (body as { error: Record<string, unknown> }).error;
      expect(typeof e.code).toBe('string');
      expect(typeof e.message).toBe('string');
      expect(typeof e.type).toBe('string');
    } else {
      expect(status).toBe(200);
    }
    return;
  }
  const isRpcResponse = (r: unknown) => {
    const o = r as Record<string, unknown>;
    expect(o.jsonrpc).toBe('2.0');
    expect('id' in o).toBe(true);
    expect('result' in o !== 'error' in o).toBe(true);
    if ('error' in o) {
      const e = o.error as Record<string, unknown>;
      expect(Number.isInteger(e.code)).toBe(true);
      expect(typeof e.message).toBe('string');
      expect(typeof (e.data as Record<string, unknown>).code).toBe('string');
    }
  };
  if (Array.isArray(body)) {
    expect(body.length).toBeGreaterThan(0);
    body.forEach(isRpcResponse);
  } else {
    isRpcResponse(body);
  }
}

describe('parseEnvelope (property)', () => {
  it('never throws and classifies every JSON value', () => {
    fc.assert(
      fc.property(anyBody, fc.integer({ min: 1, max: 20 }), (body, limit) => {
        const envelope = parseEnvelope(body, limit);
        expect(['simple', 'rpc', 'batch', 'error']).toContain(envelope.kind);
        if (envelope.kind === 'batch') {
          expect(Array.isArray(body)).toBe(true);
          expect(envelope.entries.length).toBe((body as unknown[]).length);
          expect(envelope.entries.length).toBeLessThanOrEqual(limit);
        }
        if (envelope.kind === 'simple') expect(typeof envelope.call.method).toBe('string');
      }),
      { numRuns: 2000 },
    );
    protoClean();
  });

  it('round-trips a JSON-RPC id exactly', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constant(null)), (id) => {
        const envelope = parseEnvelope(JSON.parse(JSON.stringify({ jsonrpc: '2.0', method: 'x', id })), 10);
        expect(envelope.kind === 'rpc' && 'method' in envelope.entry && envelope.entry.id).toEqual(JSON.parse(JSON.stringify(id)));
      }),
    );
  });
});

describe('Dispatcher (property)', () => {
  let methods: MethodTable;
  let dispatcher: Dispatcher;
  beforeAll(async () => {
    methods = await discoverMethods(SHIPPED_METHODS, createAjv());
    const store = new MemoryStore();
    dispatcher = new Dispatcher(new MethodHolder(methods, { title: 'prop', version: '0' }), { store, log: createLogger({ level: 'silent' }), accounts: new AccountService(store, { sessionTtl: 60, maxFailures: 5, maxFailuresPerIp: 50, maxFailuresPerUser: 100, window: 60, scrypt: { N: 1024, r: 8, p: 1 } }) }, { batchConcurrency: 4, methodTimeout: 5 });
  });

  it('answers every envelope with a documented shape and never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(anyBody, async (body) => {
        const text = JSON.stringify(body) ?? 'null';
        const parsed = JSON.parse(text);
        const scope = { requestId: 'prop', traceId: '4bf92f3577b34da6a3ce929d0e0e4736', ip: '127.0.0.1', session: null, signal: new AbortController().signal, http: null };
        const reply = await dispatcher.reply(parseEnvelope(parsed, 10), scope);
        expect(reply.status).toBeLessThan(500);
        if (reply.stream !== undefined) {
          // A streaming method (clock.ticks) answers with events, not a JSON body: close it.
          await reply.stream.events[Symbol.asyncIterator]().return?.();
          return;
        }
        checkShape(formOf(Buffer.from(text)), reply.status, reply.body);
        expect(() => JSON.stringify(reply.body)).not.toThrow();
      }),
      { numRuns: 400 },
    );
    protoClean();
  });
});

interface Raw {
  status: number;
  text: string;
}

function send(url: string, body: Buffer, headers: Record<string, string | string[]>): Promise<Raw> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: '/', method: 'POST', headers: { 'content-length': String(body.length), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function mutate(text: string, rng: fc.Arbitrary<number>): fc.Arbitrary<Buffer> {
  return fc.tuple(rng, rng, fc.constantFrom('flip', 'truncate', 'insert', 'delete', 'invalid-utf8', 'duplicate-key')).map(([a, b, how]) => {
    const bytes = Buffer.from(text);
    const at = bytes.length === 0 ? 0 : a % bytes.length;
    switch (how) {
      case 'flip':
        if (bytes.length > 0) bytes[at] = b % 256;
        return bytes;
      case 'truncate':
        return bytes.subarray(0, at);
      case 'insert':
        return Buffer.concat([bytes.subarray(0, at), Buffer.from('{["\\",:}]'.charAt(b % 9)), bytes.subarray(at)]);
      case 'delete':
        return Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1)]);
      case 'invalid-utf8':
        return Buffer.concat([bytes.subarray(0, at), Buffer.from([0xc3, 0x28, 0xff]), bytes.subarray(at)]);
      default:
        return Buffer.from(text.replace(/^\{/, '{"method":"echo","method":"account.session",'));
    }
  });
}

describe('HTTP fuzz against a real server (bounded)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ methodsDir: SHIPPED_METHODS, batchLimit: 20, bodyLimit: 64 * 1024 });
  });
  afterAll(() => server.close());

  it('answers random and mutated requests with valid JSON, no 5xx, and stays up', async () => {
    const nat = fc.nat({ max: 10_000 });
    const bodies = fc.oneof(
      anyBody.map((b) => Buffer.from(JSON.stringify(b) ?? '')),
      anyBody.chain((b) => mutate(JSON.stringify(b) ?? '', nat)),
      fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
      fc.constantFrom(Buffer.alloc(0), Buffer.from(' '), Buffer.from('['.repeat(5000)), Buffer.from(`[${'{"jsonrpc":"2.0","method":"echo","id":1},'.repeat(50)}1]`), Buffer.from('9'.repeat(400)), Buffer.from(`"${'x'.repeat(60_000)}"`), Buffer.from('x'.repeat(70_000))),
    );
    const headerSets = fc.record(
      {
        'content-type': fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/json; charset=latin1', ''),
        'x-session-id': fc.oneof(fc.uuid(), fc.string({ maxLength: 40 }), fc.array(fc.uuid(), { minLength: 2, maxLength: 2 })),
        'x-hmac': fc.oneof(fc.stringMatching(/^[0-9a-f]{64}$/), fc.string({ maxLength: 70 })),
        'x-timestamp': fc.oneof(fc.integer().map(String), fc.string({ maxLength: 12 })),
        'x-nonce': fc.string({ maxLength: 70 }),
        'x-request-id': fc.string({ maxLength: 200 }),
      },
      { requiredKeys: [] },
    );
    const safe = (v: string | string[]) => (Array.isArray(v) ? v : [v]).every((x) => /^[\x20-\x7e]*$/.test(x));
    await fc.assert(
      fc.asyncProperty(bodies, headerSets, async (body, headers) => {
        const clean = Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== '' && safe(v as string)));
        const answer = await send(server.url, body, clean as Record<string, string>);
        expect(answer.status, `${answer.status} ${answer.text.slice(0, 200)}`).toBeLessThan(500);
        if (answer.status === 204) return;
        const parsed = JSON.parse(answer.text);
        checkShape(formOf(body), answer.status, parsed);
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 600) },
    );
    protoClean();
    expect((await fetch(new URL('/health', server.url))).status).toBe(200);
  });
});
