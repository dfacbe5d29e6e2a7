import type { MethodContext } from '../../src/index.ts';

export const description = 'Returns the preferences kept in the session state';
export const params = { type: 'object', additionalProperties: false } as const;

export function invoke(ctx: MethodContext) {
  return ctx.session!.state;
}
