import { randomUUID } from 'node:crypto';
import type { MethodContext } from '../../src/index.ts';
import { note, notes } from './_collection.ts';

export const description = "Adds a note to the caller's notes (needs a database)";
export const params = {
  type: 'object',
  properties: { text: { type: 'string', minLength: 1, maxLength: 10000 } },
  required: ['text'],
  additionalProperties: false,
} as const;
export const result = note;

export async function invoke(ctx: MethodContext, p: { text: string }) {
  const doc = { _id: randomUUID(), owner: ctx.session!.userId, text: p.text, created: Math.floor(Date.now() / 1000) };
  await notes(ctx).insertOne(doc);
  return { id: doc._id, text: doc.text, created: doc.created };
}
