/** Types of serve-args.mjs, for the TypeScript benches that import it. */
export const NO_RATE_LIMIT: string[];
export function startFlags(root: string): string[];
