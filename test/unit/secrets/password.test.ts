import {
  AGENT_SECRET_PATTERN,
  agentSecretBytes,
  DEFAULT_PASSWORD_LENGTH,
  generateAgentSecret,
  generatePassword,
  isValidAgentSecret,
  MIN_PASSWORD_LENGTH,
  PASSWORD_ALPHABET,
  PASSWORD_PATTERN,
} from '../../../src/secrets/password.js';
import { InputError } from '../../../src/util/errors.js';

describe('generatePassword', () => {
  test('default passwords are long, from the safe alphabet, with each character class', () => {
    for (let i = 0; i < 200; i++) {
      const pw = generatePassword();
      expect(pw).toHaveLength(DEFAULT_PASSWORD_LENGTH);
      expect(pw).toMatch(PASSWORD_PATTERN);
      expect(pw).toMatch(/[A-Z]/);
      expect(pw).toMatch(/[a-z]/);
      expect(pw).toMatch(/[0-9]/);
    }
    expect(DEFAULT_PASSWORD_LENGTH).toBeGreaterThanOrEqual(MIN_PASSWORD_LENGTH);
  });

  test('the alphabet is shell- and kickstart-safe and has no look-alikes', () => {
    expect(PASSWORD_ALPHABET).toMatch(/^[A-Za-z0-9]+$/);
    for (const c of '0O1lI') expect(PASSWORD_ALPHABET).not.toContain(c);
    expect(new Set(PASSWORD_ALPHABET).size).toBe(PASSWORD_ALPHABET.length);
  });

  test('every alphabet symbol occurs and none dominates (crypto-random, uniform)', () => {
    const counts = new Map<string, number>();
    const n = 2000;
    for (let i = 0; i < n; i++) for (const c of generatePassword(20)) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).toBe(PASSWORD_ALPHABET.length);
    const expected = (n * 20) / PASSWORD_ALPHABET.length;
    for (const count of counts.values()) {
      expect(count).toBeGreaterThan(expected * 0.75);
      expect(count).toBeLessThan(expected * 1.25);
    }
    const seen = new Set(Array.from({ length: 1000 }, () => generatePassword()));
    expect(seen.size).toBe(1000);
  });

  test('lengths below 20 are refused', () => {
    expect(generatePassword(20)).toHaveLength(20);
    expect(() => generatePassword(19)).toThrow(InputError);
    expect(() => generatePassword(19)).toThrow(
      'password length 19 is invalid: it must be a whole number from 20 to 128',
    );
  });
});

describe('agent secret', () => {
  test('is 32 random bytes as 64 lower-case hex digits', () => {
    const a = generateAgentSecret();
    expect(a).toMatch(AGENT_SECRET_PATTERN);
    expect(isValidAgentSecret(a)).toBe(true);
    expect(agentSecretBytes(a)).toHaveLength(32);
    expect(generateAgentSecret()).not.toBe(a);
  });

  test('malformed secrets are refused', () => {
    expect(isValidAgentSecret('ABCD')).toBe(false);
    expect(isValidAgentSecret(`${'a'.repeat(63)}\n`)).toBe(false);
    expect(() => agentSecretBytes('zz')).toThrow(InputError);
  });
});
