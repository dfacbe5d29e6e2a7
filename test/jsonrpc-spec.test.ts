/**
 * Every example of the JSON-RPC 2.0 specification (jsonrpc.org, §7), sent as raw text to a real
 * listening server. Batch answers may come in any order, so they are compared sorted by id.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, startTestServer, type TestServer } from './helpers/server.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.close());

const byId = (a: { id: unknown }, b: { id: unknown }) => String(a.id).localeCompare(String(b.id));

describe('jsonrpc.org §7 examples', () => {
  it('rpc call with positional parameters', async () => {
    const a = await post(server.url, '{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}');
    expect(a.status).toBe(200);
    expect(a.json).toEqual({ jsonrpc: '2.0', result: 19, id: 1 });
    const b = await post(server.url, '{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}');
    expect(b.json).toEqual({ jsonrpc: '2.0', result: -19, id: 2 });
  });

  it('rpc call with named parameters', async () => {
    const a = await post(server.url, '{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}');
    expect(a.json).toEqual({ jsonrpc: '2.0', result: 19, id: 3 });
    const b = await post(server.url, '{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}');
    expect(b.json).toEqual({ jsonrpc: '2.0', result: 19, id: 4 });
  });

  it('a notification is run and not answered (204, no body)', async () => {
    const { calls } = (await import('./fixtures/methods/update.ts')) as { calls: unknown[] };
    const before = calls.length;
    const a = await post(server.url, '{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}');
    expect(a.status).toBe(204);
    expect(a.text).toBe('');
    expect(calls.slice(before)).toEqual([[1, 2, 3, 4, 5]]);
    const b = await post(server.url, '{"jsonrpc": "2.0", "method": "foobar"}');
    expect(b.status).toBe(204);
    expect(b.text).toBe('');
  });

  it('rpc call of a non-existent method', async () => {
    const a = await post(server.url, '{"jsonrpc": "2.0", "method": "foobar", "id": "1"}');
    expect(a.status).toBe(200);
    expect(a.json).toEqual({
      jsonrpc: '2.0',
      error: { code: -32601, message: 'No method named "foobar"', data: { code: 'MethodNotFound', type: 'notFound' } },
      id: '1',
    });
  });

  it('rpc call with invalid JSON', async () => {
    const a = await post(server.url, '{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]');
    expect(a.status).toBe(400);
    expect(a.json).toMatchObject({ jsonrpc: '2.0', error: { code: -32700, data: { code: 'ParseError', type: 'invalidRequest' } }, id: null });
  });

  it('rpc call with invalid Request object', async () => {
    const a = await post(server.url, '{"jsonrpc": "2.0", "method": 1, "params": "bar"}');
    expect(a.status).toBe(200);
    expect(a.json).toEqual({
      jsonrpc: '2.0',
      error: { code: -32600, message: 'method must be a string', data: { code: 'InvalidRequest', type: 'invalidRequest' } },
      id: null,
    });
  });

  it('rpc call Batch, invalid JSON', async () => {
    const a = await post(server.url, `[
      {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
      {"jsonrpc": "2.0", "method"
    ]`);
    expect(a.status).toBe(400);
    expect(a.json).toMatchObject({ jsonrpc: '2.0', error: { code: -32700 }, id: null });
  });

  it('rpc call with an empty Array', async () => {
    const a = await post(server.url, '[]');
    expect(a.status).toBe(200);
    expect(a.json).toEqual({
      jsonrpc: '2.0',
      error: { code: -32600, message: 'A batch must not be empty', data: { code: 'InvalidRequest', type: 'invalidRequest' } },
      id: null,
    });
  });

  it('rpc call with an invalid Batch (but not empty)', async () => {
    const a = await post(server.url, '[1]');
    expect(a.status).toBe(200);
    expect(a.json).toEqual([
      { jsonrpc: '2.0', error: { code: -32600, message: 'A JSON-RPC request must be an object', data: { code: 'InvalidRequest', type: 'invalidRequest' } }, id: null },
    ]);
  });

  it('rpc call with invalid Batch', async () => {
    const a = await post(server.url, '[1,2,3]');
    expect(a.json).toHaveLength(3);
    for (const entry of a.json as unknown[]) expect(entry).toMatchObject({ jsonrpc: '2.0', error: { code: -32600 }, id: null });
  });

  it('rpc call Batch', async () => {
    const a = await post(server.url, `[
      {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
      {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
      {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
      {"foo": "boo"},
      {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
      {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
    ]`);
    expect(a.status).toBe(200);
    const answers = (a.json as { id: unknown }[]).slice().sort(byId);
    expect(answers).toEqual(
      [
        { jsonrpc: '2.0', result: 7, id: '1' },
        { jsonrpc: '2.0', result: 19, id: '2' },
        { jsonrpc: '2.0', error: { code: -32600, message: 'jsonrpc must be exactly "2.0"', data: { code: 'InvalidRequest', type: 'invalidRequest' } }, id: null },
        { jsonrpc: '2.0', error: { code: -32601, message: 'No method named "foo.get"', data: { code: 'MethodNotFound', type: 'notFound' } }, id: '5' },
        { jsonrpc: '2.0', result: ['hello', 5], id: '9' },
      ].sort(byId),
    );
  });

  it('rpc call Batch (all notifications)', async () => {
    const a = await post(server.url, `[
      {"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},
      {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}
    ]`);
    expect(a.status).toBe(204);
    expect(a.text).toBe('');
  });
});

describe('JSON-RPC details beyond the examples', () => {
  it('echoes ids exactly: strings, numbers, null', async () => {
    for (const id of ['abc', 'ünï', 0, -1.5, 12345678901, null]) {
      const a = await post(server.url, JSON.stringify({ jsonrpc: '2.0', method: 'echo', params: [1], id }));
      expect(a.json).toEqual({ jsonrpc: '2.0', result: [1], id });
    }
  });

  it('answers an id of the wrong type as Invalid Request with id null', async () => {
    for (const id of [true, { a: 1 }, [1]]) {
      const a = await post(server.url, JSON.stringify({ jsonrpc: '2.0', method: 'echo', id }));
      expect(a.json).toMatchObject({ error: { code: -32600 }, id: null });
    }
  });

  it('refuses jsonrpc other than "2.0" and params that are not structured', async () => {
    const wrongVersion = await post(server.url, '{"jsonrpc": "1.0", "method": "echo", "id": 7}');
    expect(wrongVersion.json).toMatchObject({ error: { code: -32600, message: 'jsonrpc must be exactly "2.0"' }, id: 7 });
    const scalar = await post(server.url, '{"jsonrpc": "2.0", "method": "echo", "params": 5, "id": 8}');
    expect(scalar.json).toMatchObject({ error: { code: -32600, message: 'params must be an object or an array' }, id: 8 });
  });

  it('passes absent params as {} and answers null for a method that returns nothing', async () => {
    expect((await post(server.url, '{"jsonrpc":"2.0","method":"echo","id":1}')).json).toEqual({ jsonrpc: '2.0', result: {}, id: 1 });
    expect((await post(server.url, '{"jsonrpc":"2.0","method":"nothing","id":1}')).json).toEqual({ jsonrpc: '2.0', result: null, id: 1 });
  });

  it('answers InvalidParams with one detail per invalid parameter', async () => {
    const a = await post(server.url, '{"jsonrpc":"2.0","method":"sum","params":[1,"x",true],"id":1}');
    expect(a.json).toEqual({
      jsonrpc: '2.0',
      error: {
        code: -32602,
        message: 'The parameters are not valid',
        data: { code: 'InvalidParams', type: 'invalidParams', details: [{ path: '/1', message: 'must be number' }, { path: '/2', message: 'must be number' }] },
      },
      id: 1,
    });
  });
});
