import { randomBytes, randomInt } from 'node:crypto';
import { InputError } from '../util/errors.js';

/**
 * Generated VM credentials. The login password is typed by hand on the VM's
 * console now and then, so its alphabet has no symbols (keyboard layouts, shell
 * quoting, kickstart quoting) and none of the look-alikes 0/O, 1/l/I.
 */
export const PASSWORD_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
export const MIN_PASSWORD_LENGTH = 20;
/** 24 characters of a 57-symbol alphabet: about 140 bits. */
export const DEFAULT_PASSWORD_LENGTH = 24;
/** Every password we generate matches this; callers that embed one check it first. */
export const PASSWORD_PATTERN = /^[ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789]{20,128}$/;

const MAX_PASSWORD_LENGTH = 128;

/**
 * A crypto-random password of `length` characters drawn uniformly from
 * PASSWORD_ALPHABET, holding at least one upper-case letter, one lower-case
 * letter and one digit (so it passes common password policies).
 */
export function generatePassword(length: number = DEFAULT_PASSWORD_LENGTH): string {
  if (!Number.isInteger(length) || length < MIN_PASSWORD_LENGTH || length > MAX_PASSWORD_LENGTH) {
    throw new InputError(
      `password length ${String(length)} is invalid: it must be a whole number from ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH}`,
    );
  }
  for (;;) {
    let out = '';
    // randomInt rejects biased draws internally, so each symbol is uniform.
    for (let i = 0; i < length; i++) out += PASSWORD_ALPHABET[randomInt(PASSWORD_ALPHABET.length)];
    // Redrawing the whole password (not patching one character) keeps it uniform over the accepted set.
    if (/[A-Z]/.test(out) && /[a-z]/.test(out) && /[0-9]/.test(out)) return out;
  }
}

/** The guest agent's proxy secret: 32 random bytes. */
export const AGENT_SECRET_BYTES = 32;
/** Lower-case hex: safe unquoted in files, kickstarts, command lines and URLs. */
export const AGENT_SECRET_PATTERN = /^[0-9a-f]{64}$/;

export function generateAgentSecret(): string {
  return randomBytes(AGENT_SECRET_BYTES).toString('hex');
}

export function isValidAgentSecret(value: string): boolean {
  return AGENT_SECRET_PATTERN.test(value);
}

/** The 32 raw bytes of an agent secret (e.g. for an HMAC key). Throws InputError when malformed. */
export function agentSecretBytes(secret: string): Buffer {
  if (!isValidAgentSecret(secret)) {
    throw new InputError('agent secret is malformed: it must be 64 lower-case hex digits');
  }
  return Buffer.from(secret, 'hex');
}
