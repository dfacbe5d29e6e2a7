import type { MethodContext } from '../../src/index.ts';

export const description = 'Describes the calling session: who it is and when it expires';
export const auth = 'session';
export const params = { type: 'object', additionalProperties: false } as const;
export const result = {
  type: 'object',
  properties: { user_id: { type: 'string' }, session_id: { type: 'string' }, expires: { type: 'integer' } },
  required: ['user_id', 'session_id', 'expires'],
} as const;

export function invoke(ctx: MethodContext) {
  const s = ctx.session!;
  return { user_id: s.userId, session_id: s.sessionId, expires: s.expires };
}
