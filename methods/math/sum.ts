export const description = 'Adds numbers';
export const auth = 'public';
export const params = { type: 'array', items: { type: 'number' } };
export const result = { type: 'number' };

export function invoke(_ctx: unknown, numbers: number[]): number {
  return numbers.reduce((a, b) => a + b, 0);
}
