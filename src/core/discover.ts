/**
 * `rpc.discover`: an OpenRPC 1.x document of every method (docs/protocol.md §3), built once at start-up.
 * OpenRPC describes params as a list of named values; a schema that is not an object of
 * properties or a tuple is given as one descriptor named `params`, and the whole schema is kept
 * in `x-params-schema` for clients that want it as written.
 */
import type { MethodRecord, MethodTable } from './registry.ts';

type Schema = Record<string, unknown>;

interface ContentDescriptor {
  name: string;
  schema: unknown;
  required?: boolean;
}

function describeParams(schema: unknown): { params: ContentDescriptor[]; paramStructure: 'by-name' | 'by-position' | 'either' } {
  if (schema === undefined) return { params: [], paramStructure: 'either' };
  const s = schema as Schema;
  if (s.type === 'object' && s.properties !== null && typeof s.properties === 'object') {
    const required = new Set(Array.isArray(s.required) ? (s.required as string[]) : []);
    const params = Object.entries(s.properties as Record<string, unknown>).map(([name, sub]) => ({
      name,
      schema: sub,
      required: required.has(name),
    }));
    return { params, paramStructure: 'by-name' };
  }
  if (s.type === 'array' && Array.isArray(s.prefixItems)) {
    const min = typeof s.minItems === 'number' ? s.minItems : 0;
    const params = (s.prefixItems as unknown[]).map((sub, i) => ({ name: `arg${i}`, schema: sub, required: i < min }));
    return { params, paramStructure: 'by-position' };
  }
  return {
    params: [{ name: 'params', schema, required: true }],
    paramStructure: s.type === 'array' ? 'by-position' : s.type === 'object' ? 'by-name' : 'either',
  };
}

function describeMethod(m: MethodRecord): Record<string, unknown> {
  const { params, paramStructure } = describeParams(m.paramsSchema);
  const method: Record<string, unknown> = {
    name: m.name,
    params,
    paramStructure,
    result: { name: 'result', schema: m.resultSchema ?? {} },
    'x-auth': m.auth,
  };
  if (m.description !== '') method.description = m.description;
  if (m.paramsSchema !== undefined) method['x-params-schema'] = m.paramsSchema;
  return method;
}

/** @example buildOpenRpc(table, { title: 'simpleapi', version: '0.1.0' }).methods[0].name */
export function buildOpenRpc(methods: MethodTable, info: { title: string; version: string }): Record<string, unknown> {
  return {
    openrpc: '1.2.6',
    info,
    methods: Object.keys(methods)
      .sort()
      .map((name) => describeMethod(methods[name]!)),
  };
}

/** The built-in record for `rpc.discover`; its document includes itself. */
export function discoverRecord(getDocument: () => unknown): MethodRecord {
  return {
    name: 'rpc.discover',
    file: '(built-in)',
    auth: 'public',
    description: 'Returns the OpenRPC document of every method of this server',
    paramsSchema: undefined,
    resultSchema: { type: 'object', description: 'An OpenRPC 1.x document' },
    validate: undefined,
    invoke: getDocument,
  };
}
