export const auth = 'public';
export const invoke = (_ctx: unknown, params: unknown) => params;
