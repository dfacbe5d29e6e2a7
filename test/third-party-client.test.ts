/** Clients the project did not write: jayson's and json-rpc-2.0's, over real HTTP. */
import jayson from 'jayson/promise/index.js';
import { JSONRPCClient } from 'json-rpc-2.0';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './helpers/server.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.close());

describe('the jayson client', () => {
  it('calls with positional and named params, and gets errors as JSON-RPC errors', async () => {
    const url = new URL(server.url);
    const client = jayson.client.http({ host: url.hostname, port: Number(url.port), path: '/' });
    expect(await client.request('sum', [1, 2, 3])).toMatchObject({ jsonrpc: '2.0', result: 6 });
    expect(await client.request('subtract', { minuend: 10, subtrahend: 4 })).toMatchObject({ result: 6 });
    expect(await client.request('no.such', [])).toMatchObject({ error: { code: -32601 } });
  });

  it('sends a batch with a notification', async () => {
    const url = new URL(server.url);
    const client = jayson.client.http({ host: url.hostname, port: Number(url.port), path: '/' });
    const batch = [client.request('sum', [1, 1], undefined, false), client.request('subtract', [5, 3], undefined, false), client.request('update', [9], null as never, false)];
    const answers = (await client.request(batch as never)) as { id: unknown; result: unknown }[];
    expect(answers.map((a) => a.result).sort()).toEqual([2, 2]);
    expect(answers).toHaveLength(2);
  });
});

describe('the json-rpc-2.0 client', () => {
  it('calls, notifies and batches', async () => {
    const client = new JSONRPCClient(async (request) => {
      const res = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request) });
      if (res.status === 200) client.receive(await res.json());
      else if (res.status !== 204) throw new Error(`HTTP ${res.status}`);
    });
    expect(await client.request('sum', [4, 5])).toBe(9);
    expect(await client.request('get_data', undefined)).toEqual(['hello', 5]);
    await expect(client.request('fail.code', { code: 'Forbidden' })).rejects.toMatchObject({ code: -32003, message: 'thrown on purpose: Forbidden' });
    client.notify('update', ['from json-rpc-2.0']);
    const answers = await client.requestAdvanced([
      { jsonrpc: '2.0', method: 'sum', params: [1, 2], id: 10 },
      { jsonrpc: '2.0', method: 'echo', params: { a: 1 }, id: 11 },
    ]);
    expect(answers.map((a) => a.result).sort()).toEqual([3, { a: 1 }].sort());
  });
});
