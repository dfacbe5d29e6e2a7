import { ApiError, type MethodContext } from '../../src/index.ts';
import { notes } from './_notes.ts';

export const description = "Removes one of the caller's notes; NotFound when it has no such note (needs a database)";
export const params = {
  type: 'object',
  properties: { id: { type: 'string', minLength: 1, maxLength: 100 } },
  required: ['id'],
  additionalProperties: false,
} as const;
export const result = { type: 'object', properties: { ok: { const: true } }, required: ['ok'] } as const;

export async function invoke(ctx: MethodContext, p: { id: string }) {
  if (!(await notes(ctx).remove(p.id))) throw new ApiError('NotFound', 'No note with that id');
  return { ok: true };
}
