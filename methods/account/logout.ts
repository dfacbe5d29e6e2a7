import type { MethodContext } from '../../src/index.ts';
import { ok } from './_schemas.ts';

export const description = 'Ends the calling session on every instance';
export const auth = 'session';
export const params = { type: 'object', additionalProperties: false } as const;
export const result = ok;

export async function invoke(ctx: MethodContext) {
  await ctx.accounts.logout();
  return { ok: true };
}
