/** docs/protocol.md §3: names are looked up, never turned into paths; each of these is Method Not Found. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isValidMethodName } from '../src/core/registry.ts';
import { post, startTestServer, type TestServer } from './helpers/server.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.close());

const NOT_FOUND = [
  '../x', '..', 'a..b', '.a', 'a.', 'a/b', 'a\\b', '__proto__', 'constructor', 'toString', 'hasOwnProperty', '__proto__.x',
  '', ' ', 'echo ', 'Echo', 'ECHO', 'fail/internal', 'fail..internal', '1abc', 'a-b', 'ünï', 'echo\u0000', '%2e%2e', 'x'.repeat(257),
  'sum.ts', 'rpc.nope', 'rpc', 'fail', 'state',
];

describe('method names that must be Method Not Found', () => {
  for (const name of NOT_FOUND) {
    it(`${JSON.stringify(name.length > 40 ? `${name.slice(0, 10)}…(${name.length})` : name)}`, async () => {
      const a = await post(server.url, JSON.stringify({ method: name, parameters: {} }));
      expect(a.status).toBe(404);
      expect(a.json).toMatchObject({ error: { code: 'MethodNotFound', type: 'notFound' } });
      const b = await post(server.url, JSON.stringify({ jsonrpc: '2.0', method: name, id: 1 }));
      expect(b.json).toMatchObject({ error: { code: -32601 }, id: 1 });
    });
  }

  it('the same names exist in other case or spelling only where a file defines them', async () => {
    expect((await post(server.url, JSON.stringify({ method: 'echo', parameters: 1 }))).json).toBe(1);
    expect((await post(server.url, JSON.stringify({ method: 'fail.code', parameters: {} }))).status).toBe(400);
  });

  it('isValidMethodName accepts segments of [A-Za-z_][A-Za-z0-9_]* only', () => {
    expect(['a', 'a.b.c', '_x', 'A1_b.c2', 'x'.repeat(256)].every(isValidMethodName)).toBe(true);
    expect(['', 'a.', '.a', 'a..b', '1a', 'a-b', 'a b', 'x'.repeat(257)].some(isValidMethodName)).toBe(false);
  });
});
