import { formatPasswordTable } from '../../../src/cli/commands/passwords.js';
import {
  DEFAULT_KEYRING_TIMEOUT_MS,
  KeyringSecretStore,
  keyringTimeoutFromEnv,
} from '../../../src/secrets/keyring.js';
import { InputError } from '../../../src/util/errors.js';

describe('keyring timeout configuration', () => {
  test('defaults to 5 s and reads VMP_KEYRING_TIMEOUT_MS', () => {
    expect(DEFAULT_KEYRING_TIMEOUT_MS).toBe(5000);
    expect(keyringTimeoutFromEnv({})).toBe(5000);
    expect(keyringTimeoutFromEnv({ VMP_KEYRING_TIMEOUT_MS: '250' })).toBe(250);
  });

  test.each(['0', '-5', '1.5', '5s', ' 100', '99999999'])(
    'refuses VMP_KEYRING_TIMEOUT_MS=%j in one line',
    (raw) => {
      expect(() => keyringTimeoutFromEnv({ VMP_KEYRING_TIMEOUT_MS: raw })).toThrow(InputError);
      expect(() => keyringTimeoutFromEnv({ VMP_KEYRING_TIMEOUT_MS: raw })).toThrow(
        `VMP_KEYRING_TIMEOUT_MS=${JSON.stringify(raw)} is invalid: it must be a whole number of milliseconds from 1 to 9999999`,
      );
    },
  );

  test('the constructor option wins and is checked', () => {
    expect(new KeyringSecretStore('svc', { timeoutMs: 42 }).timeoutMs).toBe(42);
    expect(() => new KeyringSecretStore('svc', { timeoutMs: 0 })).toThrow(InputError);
    expect(() => new KeyringSecretStore('', { timeoutMs: 10 })).toThrow(InputError);
  });

  test('accounts with control characters are refused before any keyring call', async () => {
    const store = new KeyringSecretStore('svc', { timeoutMs: 10 });
    await expect(store.get('a\nb')).rejects.toThrow('keyring account "a\\nb" is invalid');
    await expect(store.set('', 'x')).rejects.toThrow(InputError);
  });
});

describe('formatPasswordTable', () => {
  test('aligns names', () => {
    expect(
      formatPasswordTable([
        { name: 'firefox-vm', password: 'Kx7hT2mPq9RwZ4vN8cYb3sLd' },
        { name: 'a', password: 'p2' },
      ]),
    ).toBe('NAME        PASSWORD\nfirefox-vm  Kx7hT2mPq9RwZ4vN8cYb3sLd\na           p2\n');
  });
});
