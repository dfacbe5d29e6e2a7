import type { MethodContext } from '../../src/index.ts';
import { credentials, grant } from './_schemas.ts';

export const description = 'Signs in and starts a new session';
export const auth = 'public';
export const params = credentials;
export const result = grant;

export function invoke(ctx: MethodContext, p: { user_id: string; password: string }) {
  return ctx.accounts.login(p.user_id, p.password);
}
