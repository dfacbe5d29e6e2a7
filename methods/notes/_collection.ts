import type { Collection } from 'mongodb';
import { ApiError, type MethodContext } from '../../src/index.ts';

export interface NoteDoc {
  _id: string;
  owner: string;
  text: string;
  created: number;
}

/** The caller's notes live in the `notes` collection of ctx.db; the embedded store has none. */
export function notes(ctx: MethodContext): Collection<NoteDoc> {
  if (ctx.db === null) throw new ApiError('DatabaseRequired');
  return ctx.db.collection<NoteDoc>('notes');
}

export const note = {
  type: 'object',
  properties: { id: { type: 'string' }, text: { type: 'string' }, created: { type: 'integer' } },
  required: ['id', 'text', 'created'],
} as const;
