/** Types of sign-v2.mjs, for the TypeScript benches that import it. */
export function signV2(key: Buffer, body: string | Buffer): { timestamp: string; nonce: string; mac: string };
