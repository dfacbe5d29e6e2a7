export const description = 'Returns its parameters unchanged';
export const auth = 'public';

export function invoke(_ctx: unknown, params: unknown): unknown {
  return params;
}
