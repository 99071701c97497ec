import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { KeyringSecretStore } from '../../../src/secrets/keyring.js';
import { ServiceUnavailableError } from '../../../src/util/errors.js';
import { describeWith, probeSecretService } from '../../support/services.js';

const PREFIX = 'vmp-t-sec-';
const uniq = (): string => `${PREFIX}${randomBytes(4).toString('hex')}`;

/** secret-tool talks D-Bus itself: proves the secret sits in the Secret Service, not a fallback store. */
function secretToolLookup(service: string, account: string): string | null {
  try {
    return execFileSync('secret-tool', ['lookup', 'service', service, 'username', account], {
      encoding: 'utf8',
      timeout: 10_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  } catch {
    return null;
  }
}

describeWith(probeSecretService(), 'keyring store')('KeyringSecretStore against the Secret Service', () => {
  test('store, read, list and remove', async () => {
    const service = uniq();
    const store = new KeyringSecretStore(service);
    const a = `${PREFIX}a`;
    const b = `${PREFIX}b`;
    const secretA = randomBytes(16).toString('base64url');
    const secretB = randomBytes(16).toString('base64url');
    try {
      expect(await store.get(a)).toBeNull();
      await store.set(b, secretB);
      await store.set(a, secretA);
      expect(await store.get(a)).toBe(secretA);
      expect(secretToolLookup(service, a)).toBe(secretA);
      expect(await store.list()).toEqual([
        { account: a, secret: secretA },
        { account: b, secret: secretB },
      ]);
      // Another service's entries are not listed.
      expect(await new KeyringSecretStore(`${service}-other`).list()).toEqual([]);
      await store.set(a, 'replaced-secret-value');
      expect(await store.get(a)).toBe('replaced-secret-value');
      expect(await store.delete(a)).toBe(true);
      expect(await store.delete(a)).toBe(false);
      expect(await store.get(a)).toBeNull();
      expect(secretToolLookup(service, a)).toBeNull();
      expect(await store.list()).toEqual([{ account: b, secret: secretB }]);
    } finally {
      await store.delete(a);
      await store.delete(b);
    }
  });
});

describe('KeyringSecretStore without a Secret Service', () => {
  const saved = process.env.DBUS_SESSION_BUS_ADDRESS;
  afterEach(() => {
    if (saved === undefined) delete process.env.DBUS_SESSION_BUS_ADDRESS;
    else process.env.DBUS_SESSION_BUS_ADDRESS = saved;
  });

  test.each([
    ['a dead bus socket', 'unix:path=/nonexistent/vmp-t-sec-dead-bus'],
    ['no session bus at all', undefined],
  ])('%s gives a one-line ServiceUnavailableError saying what to do', async (_label, address) => {
    if (address === undefined) delete process.env.DBUS_SESSION_BUS_ADDRESS;
    else process.env.DBUS_SESSION_BUS_ADDRESS = address;
    const store = new KeyringSecretStore(uniq(), { timeoutMs: 10_000 });
    for (const call of [() => store.set('vm', 'x'.repeat(20)), () => store.get('vm'), () => store.list()]) {
      const err = await call().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ServiceUnavailableError);
      const message = (err as Error).message;
      expect(message).toMatch(/^no usable Secret Service \(/);
      expect(message).toMatch(/run gnome-keyring or KWallet/);
      expect(message).not.toContain('\n');
    }
  });
});
