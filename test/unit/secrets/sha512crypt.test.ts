import { execFileSync } from 'node:child_process';
import {
  DEFAULT_ROUNDS,
  generateSalt,
  SHA512_CRYPT_PATTERN,
  sha512Crypt,
  sha512CryptWithSetting,
  verifySha512Crypt,
} from '../../../src/secrets/sha512crypt.js';
import { InputError } from '../../../src/util/errors.js';

// The SHA-512 test vectors from Drepper's specification (SHA-crypt.txt).
const DREPPER_VECTORS: Array<[setting: string, key: string, expected: string]> = [
  [
    '$6$saltstring',
    'Hello world!',
    '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1',
  ],
  [
    '$6$rounds=10000$saltstringsaltstring',
    'Hello world!',
    '$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.',
  ],
  [
    '$6$rounds=5000$toolongsaltstring',
    'This is just a test',
    '$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0',
  ],
  [
    '$6$rounds=1400$anotherlongsaltstring',
    'a very much longer text to encrypt.  This one even stretches over morethan one line.',
    '$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1',
  ],
  [
    '$6$rounds=77777$short',
    'we have a short salt string but not a short password',
    '$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0',
  ],
  [
    '$6$rounds=123456$asaltof16chars..',
    'a short string',
    '$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULevoBK25fs2xXgMNrCzIMVcgEJAstJeonj1',
  ],
  [
    '$6$rounds=10$roundstoolow',
    'the minimum number is still observed',
    '$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX.',
  ],
];

/** OpenSSL's own SHA-512 crypt; the password goes on stdin, never argv. */
function opensslCrypt(password: string, salt: string): string {
  return execFileSync('openssl', ['passwd', '-6', '-salt', salt, '-stdin'], {
    input: `${password}\n`,
    encoding: 'utf8',
    timeout: 30_000,
  }).trim();
}

describe('sha512Crypt', () => {
  test.each(DREPPER_VECTORS)('Drepper vector %s', (setting, key, expected) => {
    expect(sha512CryptWithSetting(key, setting)).toBe(expected);
    expect(verifySha512Crypt(key, expected)).toBe(true);
  });

  test.each([
    ['Hello world!', 'saltstring'],
    ['pässwörd ✓ unicode', 'Zz./09'],
    ['x'.repeat(64), 'exactly16chars..'],
    ['y'.repeat(65), 'a'],
    ['long '.repeat(40), 'ABCDEFGHabcdefgh'],
  ])('matches openssl passwd -6 for %j with salt %s (implicit 5000 rounds)', (password, salt) => {
    expect(sha512CryptWithSetting(password, `$6$${salt}`)).toBe(opensslCrypt(password, salt));
  });

  test('the empty password hashes as glibc crypt(3) does (openssl passwd cannot read an empty one)', () => {
    // python3 -c 'import crypt; print(crypt.crypt("", "$6$abc"))' on Debian 12 (glibc/libxcrypt).
    expect(sha512CryptWithSetting('', '$6$abc')).toBe(
      '$6$abc$mJP3a6FyA8uCnzRtlnNypPwjnvpi5TP9qOrInzrfDmwxUQG38PkpCPdqfTb8JQfAngapMxeim4AZ..hSdRRzD.',
    );
  });

  test('a generated hash with explicit rounds matches openssl for the same salt and rounds', () => {
    const password = 'Kx7hT2mPq9RwZ4vN8cYb3sLd';
    const hash = sha512Crypt(password, { rounds: 7000 });
    const salt = hash.split('$')[3] ?? '';
    expect(opensslCrypt(password, `rounds=7000$${salt}`)).toBe(hash);
  });

  test('default: explicit rounds=, random 16-character salt, well-formed, verifiable', () => {
    const a = sha512Crypt('secret password');
    const b = sha512Crypt('secret password');
    expect(DEFAULT_ROUNDS).toBeGreaterThanOrEqual(5000);
    expect(a.startsWith(`$6$rounds=${DEFAULT_ROUNDS}$`)).toBe(true);
    expect(a).toMatch(SHA512_CRYPT_PATTERN);
    expect(a.split('$')[3]).toHaveLength(16);
    expect(a).not.toBe(b);
    expect(verifySha512Crypt('secret password', a)).toBe(true);
    expect(verifySha512Crypt('secret passwore', a)).toBe(false);
  });

  test('generateSalt uses the crypt alphabet', () => {
    const salts = new Set(Array.from({ length: 50 }, () => generateSalt()));
    expect(salts.size).toBe(50);
    for (const s of salts) expect(s).toMatch(/^[./0-9A-Za-z]{16}$/);
  });

  test('a salt outside the crypt alphabet is refused with a one-line error', () => {
    expect(() => sha512Crypt('pw', { salt: 'bad$salt' })).toThrow(InputError);
    expect(() => sha512Crypt('pw', { salt: 'bad$salt' })).toThrow(/salt "bad\$salt" is invalid/);
    expect(() => sha512Crypt('pw', { rounds: 0 })).toThrow(/rounds 0 is invalid/);
  });

  test('malformed hashes do not verify', () => {
    expect(verifySha512Crypt('pw', '$1$abc$def')).toBe(false);
    expect(verifySha512Crypt('pw', '')).toBe(false);
  });
});
