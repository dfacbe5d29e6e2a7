/** Requests signed by hand from docs/protocol.md §6, independent of the project's client. */
import { createHmac, randomBytes } from 'node:crypto';
import { post, type HttpAnswer } from './server.ts';

export interface Grant {
  user_id: string;
  session_id: string;
  session_key: string;
  expires: number;
}

export const nowSeconds = () => Math.floor(Date.now() / 1000);
export const freshNonce = () => randomBytes(16).toString('base64url');

export interface SignOptions {
  timestamp?: string;
  nonce?: string;
  /** Sign this body but send `body`. */
  signedBody?: string;
  /** Replace the computed MAC. */
  hmac?: string;
  omit?: ('x-hmac' | 'x-timestamp' | 'x-nonce')[];
  sessionId?: string;
}

export function v2Headers(grant: Grant, body: string, o: SignOptions = {}): Record<string, string> {
  const timestamp = o.timestamp ?? String(nowSeconds());
  const nonce = o.nonce ?? freshNonce();
  const mac = createHmac('sha256', Buffer.from(grant.session_key, 'base64url'))
    .update(`simpleapi-v2\n${timestamp}\n${nonce}\n`)
    .update(o.signedBody ?? body, 'utf8')
    .digest('hex');
  const headers: Record<string, string> = { 'x-session-id': o.sessionId ?? grant.session_id, 'x-timestamp': timestamp, 'x-nonce': nonce, 'x-hmac': o.hmac ?? mac };
  for (const name of o.omit ?? []) delete headers[name];
  return headers;
}

/** POSTs `body` signed with v2; returns the answer and whether its x-hmac verifies. */
export async function postV2(url: string, grant: Grant, body: string, o: SignOptions = {}): Promise<HttpAnswer & { nonce: string; responseSigned: boolean }> {
  const headers = v2Headers(grant, body, o);
  const answer = await post(url, body, headers);
  const expected = createHmac('sha256', Buffer.from(grant.session_key, 'base64url')).update(`simpleapi-v2-response\n${headers['x-nonce'] ?? ''}\n`).update(answer.text, 'utf8').digest('hex');
  return { ...answer, nonce: headers['x-nonce'] ?? '', responseSigned: answer.headers.get('x-hmac') === expected };
}

export async function postV1(url: string, userId: string, sessionId: string, body: string, o: { hmac?: string } = {}): Promise<HttpAnswer & { responseSigned: boolean }> {
  const mac = o.hmac ?? createHmac('sha1', Buffer.from(userId, 'utf8')).update(body, 'utf8').digest('hex');
  const answer = await post(url, body, { 'x-session-id': sessionId, 'x-hmac': mac });
  const expected = createHmac('sha1', Buffer.from(userId, 'utf8')).update(answer.text, 'utf8').digest('hex');
  return { ...answer, responseSigned: answer.headers.get('x-hmac') === expected };
}

export async function createAccount(url: string, userId: string, password = 'password-one'): Promise<Grant> {
  const a = await post(url, JSON.stringify({ method: 'account.create', parameters: { user_id: userId, password } }));
  if (a.status !== 200) throw new Error(`account.create ${userId}: ${a.text}`);
  return a.json as Grant;
}

/**
 * GET `target` (a path such as `/jobs/<id>`) from the server at `base`, signed over the request
 * target as §6 says for non-POST requests when a grant is given; `signTarget` signs another target
 * than the one sent (to show a signature does not carry over). Says whether the answer is signed.
 */
export async function getV2(base: string, target: string, grant?: Grant, o: { signTarget?: string } = {}): Promise<{ status: number; json: Record<string, unknown>; signed: boolean; headers: Headers }> {
  const headers: Record<string, string> = {};
  let nonce = '';
  if (grant !== undefined) {
    const timestamp = String(nowSeconds());
    nonce = freshNonce();
    headers['x-session-id'] = grant.session_id;
    headers['x-timestamp'] = timestamp;
    headers['x-nonce'] = nonce;
    headers['x-hmac'] = createHmac('sha256', Buffer.from(grant.session_key, 'base64url')).update(`simpleapi-v2\n${timestamp}\n${nonce}\n${o.signTarget ?? target}`).digest('hex');
  }
  const res = await fetch(new URL(target, base), { headers });
  const text = await res.text();
  const signed = grant !== undefined && res.headers.get('x-hmac') === createHmac('sha256', Buffer.from(grant.session_key, 'base64url')).update(`simpleapi-v2-response\n${nonce}\n${text}`).digest('hex');
  return { status: res.status, json: JSON.parse(text) as Record<string, unknown>, signed, headers: res.headers };
}
