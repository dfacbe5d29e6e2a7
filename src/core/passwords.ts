/**
 * Password hashing with scrypt (node:crypto). The parameters are stored beside each hash, so they
 * can be raised later without invalidating old accounts.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Gate } from './concurrency.ts';
import { ApiError } from './errors.ts';
import type { PasswordHash } from '../store/types.ts';

/** OWASP's minimum for scrypt (N=2^17 is their first choice; 2^15 keeps logins near 50 ms here). */
export const SCRYPT_DEFAULTS = { N: 2 ** 15, r: 8, p: 1 } as const;
const KEY_LENGTH = 32;

/**
 * Hashes run one per core at most, the rest wait: scrypt takes libuv's thread pool (4 threads),
 * which file and DNS work share, and a flood of creates and logins would otherwise hold every
 * thread and every core. Waiting hashes take turns by client address, so a flood from one address
 * waits behind itself; past 16 waiting from one address or 512 in all, a hash is refused as
 * Unavailable with Retry-After.
 */
export const HASH_GATE = new Gate(Math.max(1, availableParallelism()), 512, () => new ApiError('Unavailable', 'The server is busy checking passwords; try again shortly', { retryAfter: 1 }), 16);

/** `turn`: whose turn the hash waits in (a client address): see Gate. */
function derive(password: string, salt: Buffer, params: { N: number; r: number; p: number }, turn = ''): Promise<Buffer> {
  const options: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r + 1024 * 1024 };
  return HASH_GATE.run(
    () =>
      new Promise((resolve, reject) => {
        scrypt(password.normalize('NFC'), salt, KEY_LENGTH, options, (err, key) => (err ? reject(err) : resolve(key)));
      }),
    turn,
  );
}

/** @example const stored = await hashPassword('correct horse battery staple') */
export async function hashPassword(password: string, params: { N: number; r: number; p: number } = SCRYPT_DEFAULTS, turn = ''): Promise<PasswordHash> {
  const salt = randomBytes(16);
  const hash = await derive(password, salt, params, turn);
  return { algo: 'scrypt', N: params.N, r: params.r, p: params.p, salt: salt.toString('base64'), hash: hash.toString('base64') };
}

/** Constant-time check of a password against a stored hash. */
export async function verifyPassword(password: string, stored: PasswordHash, turn = ''): Promise<boolean> {
  const expected = Buffer.from(stored.hash, 'base64');
  const actual = await derive(password, Buffer.from(stored.salt, 'base64'), stored, turn);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/**
 * A hash to check against when the user does not exist, so an unknown user_id costs the same
 * time as a wrong password and the answer's timing says nothing about which accounts exist.
 */
let dummy: Promise<PasswordHash> | undefined;
export function dummyHash(): Promise<PasswordHash> {
  dummy ??= hashPassword(randomBytes(18).toString('base64'));
  return dummy;
}
