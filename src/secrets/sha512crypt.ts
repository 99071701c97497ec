import { createHash, randomInt, timingSafeEqual } from 'node:crypto';
import { InputError } from '../util/errors.js';

/**
 * SHA-512 crypt (`$6$`), Ulrich Drepper's "Unix crypt using SHA-256 and
 * SHA-512" (https://www.akkadia.org/drepper/SHA-crypt.txt), the format
 * Anaconda's `user --iscrypted` and /etc/shadow expect. Pure TypeScript over
 * node:crypto so no native module is needed.
 */

/** The crypt "base64" alphabet (not RFC 4648: different order, no padding). */
const CRYPT_ALPHABET = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

export const ROUNDS_MIN = 1000;
export const ROUNDS_MAX = 999_999_999;
/** The spec's implicit default; hashes with exactly these rounds and no `rounds=` use it. */
export const ROUNDS_SPEC_DEFAULT = 5000;
/** Our default: well above the spec's 5000, still about a tenth of a second in Node. */
export const DEFAULT_ROUNDS = 65_536;
export const SALT_MAX_LENGTH = 16;
export const SALT_PATTERN = /^[./0-9A-Za-z]+$/;
/** A complete `$6$` hash as this module writes it; use it to check a hash before embedding it. */
export const SHA512_CRYPT_PATTERN =
  /^\$6\$(rounds=[1-9][0-9]{0,8}\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}$/;

export interface Sha512CryptOptions {
  /** Up to 16 characters of `./0-9A-Za-z`; longer salts are cut to 16 as the spec says. Default: 16 random characters. */
  salt?: string;
  /** Clamped to [1000, 999999999] as the spec says. Default DEFAULT_ROUNDS. */
  rounds?: number;
}

/** A fresh 16-character salt from the crypt alphabet. */
export function generateSalt(): string {
  let salt = '';
  for (let i = 0; i < SALT_MAX_LENGTH; i++) salt += CRYPT_ALPHABET[randomInt(CRYPT_ALPHABET.length)];
  return salt;
}

/**
 * Hashes `password` (UTF-8) to `$6$rounds=N$salt$hash`. The `rounds=` field is
 * always written, so the hash never depends on a reader's implicit default.
 */
export function sha512Crypt(password: string, options: Sha512CryptOptions = {}): string {
  const rounds = options.rounds ?? DEFAULT_ROUNDS;
  if (!Number.isInteger(rounds) || rounds < 1) {
    throw new InputError(`rounds ${String(rounds)} is invalid: it must be a positive whole number`);
  }
  const salt = options.salt ?? generateSalt();
  if (!SALT_PATTERN.test(salt)) {
    throw new InputError(
      `salt ${JSON.stringify(salt)} is invalid: it must be 1-16 characters of ./0-9A-Za-z`,
    );
  }
  return cryptWithSetting(Buffer.from(password, 'utf8'), salt, rounds, true);
}

/**
 * Computes the crypt string for a full setting such as `$6$salt` or
 * `$6$rounds=10000$salt` (the form crypt(3) takes). Used for the spec's test
 * vectors and by verifySha512Crypt.
 */
export function sha512CryptWithSetting(password: string, setting: string): string {
  const parsed = parseSetting(setting);
  return cryptWithSetting(Buffer.from(password, 'utf8'), parsed.salt, parsed.rounds, parsed.explicitRounds);
}

/** True if `password` produces `hash`; compares in constant time. Malformed hashes are false. */
export function verifySha512Crypt(password: string, hash: string): boolean {
  let expected: string;
  try {
    expected = sha512CryptWithSetting(password, hash);
  } catch {
    return false;
  }
  const a = Buffer.from(expected);
  const b = Buffer.from(hash);
  return a.length === b.length && timingSafeEqual(a, b);
}

function parseSetting(setting: string): { salt: string; rounds: number; explicitRounds: boolean } {
  const m = /^\$6\$(?:rounds=([0-9]+)\$)?([^$]*)(?:\$.*)?$/s.exec(setting);
  if (!m) throw new InputError(`setting ${JSON.stringify(setting)} is invalid: it must start with $6$`);
  const salt = m[2] ?? '';
  if (salt.length > 0 && !SALT_PATTERN.test(salt)) {
    throw new InputError(`salt ${JSON.stringify(salt)} is invalid: it must be characters of ./0-9A-Za-z`);
  }
  if (m[1] === undefined) return { salt, rounds: ROUNDS_SPEC_DEFAULT, explicitRounds: false };
  const rounds = Number(m[1]);
  if (!Number.isSafeInteger(rounds) || rounds < 1) {
    throw new InputError(`rounds ${m[1]} is invalid: it must be a positive whole number`);
  }
  return { salt, rounds, explicitRounds: true };
}

function sha512(...parts: Buffer[]): Buffer {
  const h = createHash('sha512');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** `n` bytes made of repeated copies of `block` (the spec's P and S sequences). */
function repeatTo(block: Buffer, n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let off = 0; off < n; off += block.length) block.copy(out, off, 0, Math.min(block.length, n - off));
  return out;
}

function cryptWithSetting(key: Buffer, rawSalt: string, rawRounds: number, explicitRounds: boolean): string {
  const rounds = Math.min(ROUNDS_MAX, Math.max(ROUNDS_MIN, rawRounds));
  const saltText = rawSalt.slice(0, SALT_MAX_LENGTH);
  const salt = Buffer.from(saltText, 'latin1');

  // Steps 4-8: digest B = key, salt, key.
  const b = sha512(key, salt, key);

  // Steps 1-3, 9-12: digest A.
  const a = createHash('sha512');
  a.update(key);
  a.update(salt);
  a.update(repeatTo(b, key.length));
  for (let n = key.length; n > 0; n >>= 1) a.update((n & 1) !== 0 ? b : key);
  const aDigest = a.digest();

  // Steps 13-16: P from digest DP (key repeated key.length times).
  const dpHash = createHash('sha512');
  for (let i = 0; i < key.length; i++) dpHash.update(key);
  const p = repeatTo(dpHash.digest(), key.length);

  // Steps 17-20: S from digest DS (salt repeated 16 + A[0] times).
  const dsHash = createHash('sha512');
  const dsCount = 16 + (aDigest[0] as number);
  for (let i = 0; i < dsCount; i++) dsHash.update(salt);
  const s = repeatTo(dsHash.digest(), salt.length);

  // Step 21: the rounds.
  let c = aDigest;
  for (let i = 0; i < rounds; i++) {
    const h = createHash('sha512');
    h.update((i & 1) !== 0 ? p : c);
    if (i % 3 !== 0) h.update(s);
    if (i % 7 !== 0) h.update(p);
    h.update((i & 1) !== 0 ? c : p);
    c = h.digest();
  }

  const prefix = explicitRounds ? `$6$rounds=${rounds}$` : '$6$';
  return `${prefix}${saltText}$${encodeDigest(c)}`;
}

/** Step 22e: the spec's byte permutation, 3 bytes to 4 characters, least significant first. */
const PERMUTATION: ReadonlyArray<readonly [number, number, number]> = [
  [0, 21, 42],
  [22, 43, 1],
  [44, 2, 23],
  [3, 24, 45],
  [25, 46, 4],
  [47, 5, 26],
  [6, 27, 48],
  [28, 49, 7],
  [50, 8, 29],
  [9, 30, 51],
  [31, 52, 10],
  [53, 11, 32],
  [12, 33, 54],
  [34, 55, 13],
  [56, 14, 35],
  [15, 36, 57],
  [37, 58, 16],
  [59, 17, 38],
  [18, 39, 60],
  [40, 61, 19],
  [62, 20, 41],
];

function encodeDigest(d: Buffer): string {
  const byte = (i: number): number => d[i] as number;
  let out = '';
  const b64 = (b2: number, b1: number, b0: number, n: number): void => {
    let w = (b2 << 16) | (b1 << 8) | b0;
    for (let i = 0; i < n; i++) {
      out += CRYPT_ALPHABET[w & 0x3f];
      w >>= 6;
    }
  };
  for (const [x, y, z] of PERMUTATION) b64(byte(x), byte(y), byte(z), 4);
  b64(0, 0, byte(63), 2);
  return out;
}
