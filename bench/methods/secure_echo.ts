// The same echo behind a session: every call is verified (v2), looked up, nonce-checked and signed.
export const auth = 'session';
export const invoke = (_ctx: unknown, params: unknown) => params;
