import type { MethodContext } from '../../src/index.ts';

export const description = 'Sets one preference in the session state (any key of [A-Za-z0-9_-], __proto__ included); concurrent changes are retried, never lost';
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
    // Defined, not assigned: `state.__proto__ = v` would set the prototype and store nothing.
    Object.defineProperty(session.state, p.key, { value: p.value, enumerable: true, writable: true, configurable: true });
    try {
      await session.saveState();
      return session.state;
    } catch (err) {
      if ((err as { code?: string }).code !== 'Conflict' || attempt >= 8) throw err;
      // The winner may not have finished writing yet (on FerretDB a claim comes before the write):
      // wait a little, longer each time, with jitter so the losers do not collide again.
      await new Promise((r) => setTimeout(r, (5 << attempt) * (0.5 + Math.random())));
    }
  }
}
