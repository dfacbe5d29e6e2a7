import type { MethodContext } from '../../src/index.ts';

export const description = 'Sets one preference in the session state; concurrent changes are retried, never lost';
export const params = {
  type: 'object',
  properties: { key: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' }, value: {} },
  required: ['key', 'value'],
  additionalProperties: false,
} as const;

export async function invoke(ctx: MethodContext, p: { key: string; value: unknown }) {
  const session = ctx.session!;
  // saveState throws Conflict when another request saved first, and refreshes state: re-apply.
  for (let attempt = 0; ; attempt++) {
    session.state[p.key] = p.value;
    try {
      await session.saveState();
      return session.state;
    } catch (err) {
      if ((err as { code?: string }).code !== 'Conflict' || attempt >= 5) throw err;
    }
  }
}
