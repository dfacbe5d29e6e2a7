import type { MethodContext } from '../../src/index.ts';
import { note, notes } from './_notes.ts';

export const description = "Adds a note to the caller's notes (needs a database)";
export const params = {
  type: 'object',
  properties: { text: { type: 'string', minLength: 1, maxLength: 10000 } },
  required: ['text'],
  additionalProperties: false,
} as const;
export const result = note;

export function invoke(ctx: MethodContext, p: { text: string }) {
  return notes(ctx).add(p.text);
}
