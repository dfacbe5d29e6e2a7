import type { MethodContext } from '../../src/index.ts';
import { credentials, grant } from './_schemas.ts';

export const description = 'Creates an account and signs it in; Conflict when the user_id is taken';
export const auth = 'public';
export const params = credentials;
export const result = grant;
// Each create costs a scrypt hash: a client address gets 30 in ten minutes.
export const rateLimit = { points: 30, duration: 600, per: 'address' } as const;

export function invoke(ctx: MethodContext, p: { user_id: string; password: string }) {
  return ctx.accounts.create(p.user_id, p.password);
}
