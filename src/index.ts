/** The public API of simpleapi. The client is a separate entry: `simpleapi/client`. */
export { ApiError, ERRORS, isApiError, type ErrorCode } from './errors.ts';
export { defineMethod, type Auth, type Infer, type MethodContext, type MethodModule, type Session } from './method.ts';
export { loadConfig, type Config } from './config.ts';
export { buildApp, startServer, type RunningServer } from './server.ts';
export { MemoryStore } from './store/memory.ts';
export { openStore } from './store/index.ts';
export type { Store } from './store/types.ts';
export { createLogger } from './log.ts';
export { signV1, signV2Request, signV2Response, signV2Retry } from './signing.ts';
