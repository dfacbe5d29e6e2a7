/** `rpc.discover`: an OpenRPC 1.x document of every method, checked against the OpenRPC meta-schema. */
import * as metaSchemaModule from '@open-rpc/meta-schema';
import * as jsonSchemaMetaModule from '@json-schema-tools/meta-schema';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, startTestServer, type TestServer } from './helpers/server.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.close());

const metaSchema = metaSchemaModule as unknown as { openrpcDocument?: Record<string, unknown>; default?: { openrpcDocument: Record<string, unknown> } };
const openrpcDocument = (metaSchema.openrpcDocument ?? metaSchema.default?.openrpcDocument)!;
const jsonSchemaMeta = jsonSchemaMetaModule as unknown as { jsonSchema?: Record<string, unknown>; default?: { jsonSchema: Record<string, unknown> } };
/** The meta-schema OpenRPC's refers to for the schemas inside a document. */
const jsonSchemaSchema = (jsonSchemaMeta.jsonSchema ?? jsonSchemaMeta.default?.jsonSchema)!;

describe('rpc.discover', () => {
  it('returns a document the OpenRPC meta-schema accepts', async () => {
    const a = await post(server.url, '{"jsonrpc":"2.0","method":"rpc.discover","id":1}');
    const doc = (a.json as { result: Record<string, unknown> }).result;
    // The meta-schema names a $schema URI Ajv does not know; its content is draft-07.
    const { $schema: _a, ...schema } = openrpcDocument;
    const { $schema: _b, $id: _c, ...referenced } = jsonSchemaSchema;
    const ajv = new Ajv({ strict: false, validateFormats: false });
    // It is referred to with and without the trailing slash.
    ajv.addSchema({ ...referenced, $id: 'https://meta.json-schema.tools/' });
    ajv.addSchema({ ...referenced, $id: 'https://meta.json-schema.tools' });
    const validate = ajv.compile(schema);
    const valid = validate(doc);
    expect(validate.errors ?? []).toEqual([]);
    expect(valid).toBe(true);
    expect(doc.openrpc).toBe('1.2.6');
    // The validator does judge: a document with a method lacking its name is refused.
    const broken = structuredClone(doc) as { methods: Record<string, unknown>[] };
    delete broken.methods[0]!.name;
    expect(validate(broken)).toBe(false);
  });

  it('describes each method: name, description, params, result and x-auth', async () => {
    const a = await post(server.url, '{"method":"rpc.discover"}');
    const methods = (a.json as { methods: Record<string, unknown>[] }).methods;
    const names = methods.map((m) => m.name);
    expect(names).toEqual([...names].sort());
    expect(names).toContain('rpc.discover');
    expect(names).toContain('account.create');
    expect(methods.find((m) => m.name === 'account.create')).toEqual({
      name: 'account.create',
      description: 'Creates an account and signs it in; Conflict when the user_id is taken',
      params: [
        { name: 'user_id', schema: { type: 'string', minLength: 1, maxLength: 254 }, required: true },
        { name: 'password', schema: { type: 'string', minLength: 8, maxLength: 1024 }, required: true },
      ],
      paramStructure: 'by-name',
      result: { name: 'result', schema: expect.objectContaining({ required: ['user_id', 'session_id', 'session_key', 'expires'] }) },
      'x-auth': 'public',
      'x-params-schema': expect.objectContaining({ required: ['user_id', 'password'] }),
    });
    expect(methods.find((m) => m.name === 'whoami')).toMatchObject({ 'x-auth': 'session', params: [] });
    expect(methods.find((m) => m.name === 'sum')).toMatchObject({ paramStructure: 'by-position', params: [{ name: 'params', schema: { type: 'array' } }] });
  });
});
