/** Types of sign-v2.mjs, for the TypeScript benches that import it. */
export const PAYLOAD: { message: string; n: number; list: number[]; nested: { a: boolean; b: null; c: string } };
export const SIGNED_BODY: string;
export function createSession(url: string, userId: string): Promise<{ session_id: string; session_key: string }>;
export function signV2(key: Buffer, body: string | Buffer): { timestamp: string; nonce: string; mac: string };
