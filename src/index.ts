/** The public API of simpleapi. The client is a separate entry: `simpleapi/client`. */
export { ApiError, ERRORS, isApiError, type ErrorCode } from './core/errors.ts';
export { defineMethod, type Auth, type Infer, type MethodContext, type MethodModule, type NativeHttp, type Session } from './core/method.ts';
export { loadConfig, type Config } from './config.ts';
export { createKoaMiddleware, startServer, type RunningServer } from './server.ts';
export { MemoryStore } from './store/memory.ts';
export { openStore } from './store/index.ts';
export type { Store } from './store/types.ts';
export { createLogger } from './log.ts';
export { signV1, signV2Request, signV2Response, signV2Retry } from './core/signing.ts';
