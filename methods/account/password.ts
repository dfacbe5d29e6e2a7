import type { MethodContext } from '../../src/index.ts';
import { ok, password } from './_schemas.ts';

export const description = "Changes the password and ends the user's other sessions; Forbidden when old_password is wrong";
export const auth = 'session';
export const params = {
  type: 'object',
  properties: { old_password: password, new_password: password },
  required: ['old_password', 'new_password'],
  additionalProperties: false,
} as const;
export const result = ok;

export async function invoke(ctx: MethodContext, p: { old_password: string; new_password: string }) {
  await ctx.accounts.changePassword(p.old_password, p.new_password);
  return { ok: true };
}
