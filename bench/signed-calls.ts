// What the round-trip benches share (bench/mysql-round-trips.ts, bench/mongo-round-trips.ts): an
// in-process server on a given store, a session on it, and v2-signed calls of secure_echo one at
// a time; the outcomes the store keeps for retries are counted, since they are written after the
// answer and the benches count them apart.
import { resolve } from 'node:path';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { startServer } from '../src/server.ts';
import type { Store } from '../src/store/types.ts';
import { createSession, signV2 } from './sign-v2.mjs';

export interface SignedCalls {
  /** One signed call, answered 200 (else it throws). */
  call(): Promise<void>;
  /** Outcomes kept so far. */
  outcomeWrites(): number;
  close(): Promise<void>;
}

/** `user`: the account the calls are signed as, made here. @example const calls = await signedCalls(store); await calls.call(); await calls.close() */
export async function signedCalls(store: Store, user = `rt-${process.pid}`): Promise<SignedCalls> {
  let outcomeWrites = 0;
  const keepOutcome = store.keepOutcome.bind(store);
  store.keepOutcome = (...args) => {
    outcomeWrites++;
    return keepOutcome(...args);
  };
  const log = createLogger({ level: 'silent' });
  const config = loadConfig({ argvOptions: { port: 0, methodsDir: resolve(import.meta.dirname, 'methods'), logLevel: 'silent' }, cwd: resolve(import.meta.dirname, '..'), env: {} });
  const server = await startServer({ config, store, log });
  const post = (body: string, headers: Record<string, string> = {}) => fetch(server.url!, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const grant = await createSession(server.url!, user);
  const key = Buffer.from(grant.session_key, 'base64url');
  const body = JSON.stringify({ method: 'secure_echo', parameters: { n: 1 } });
  const call = async () => {
    const { timestamp, nonce, mac } = signV2(key, body);
    const res = await post(body, { 'x-session-id': grant.session_id, 'x-timestamp': timestamp, 'x-nonce': nonce, 'x-hmac': mac });
    if (res.status !== 200) throw new Error(`secure_echo: ${res.status} ${await res.text()}`);
    await res.arrayBuffer();
  };
  await call(); // the first may touch the session's expiry
  await new Promise((r) => setTimeout(r, 100));
  return { call, outcomeWrites: () => outcomeWrites, close: () => server.close() };
}
