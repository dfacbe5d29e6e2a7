import type { MethodContext } from '../../src/index.ts';
import { note, notes } from './_notes.ts';

export const description = "Lists the caller's notes, oldest first (needs a database)";
export const params = { type: 'object', additionalProperties: false } as const;
export const result = { type: 'array', items: note } as const;

export function invoke(ctx: MethodContext) {
  return notes(ctx).list();
}
