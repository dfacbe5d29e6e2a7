import type { MethodContext } from '../../src/index.ts';
import { note, notes } from './_collection.ts';

export const description = "Lists the caller's notes, oldest first (needs a database)";
export const params = { type: 'object', additionalProperties: false } as const;
export const result = { type: 'array', items: note } as const;

export async function invoke(ctx: MethodContext) {
  const docs = await notes(ctx).find({ owner: ctx.session!.userId }).sort({ created: 1, _id: 1 }).limit(1000).toArray();
  return docs.map((d) => ({ id: d._id, text: d.text, created: d.created }));
}
