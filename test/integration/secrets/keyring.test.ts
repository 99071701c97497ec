import { randomBytes } from 'node:crypto';
import { KeyringSecretStore } from '../../../src/secrets/keyring.js';
import { ServiceUnavailableError, TimeoutError } from '../../../src/util/errors.js';
import {
  isLoginCollectionLocked,
  lockLoginCollection,
  probeDisposableSecretService,
  secretServicePid,
  secretToolLookup,
  unlockLoginKeyring,
} from '../../support/keyring-control.js';
import { describeWith, probeSecretService } from '../../support/services.js';

const PREFIX = 'vmp-t-sec-';
const uniq = (): string => `${PREFIX}${randomBytes(4).toString('hex')}`;

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

describeWith(probeDisposableSecretService(), 'locked/frozen keyring')(
  'KeyringSecretStore when the keyring is locked or stuck',
  () => {
    const savedDisplay = { DISPLAY: process.env.DISPLAY, WAYLAND_DISPLAY: process.env.WAYLAND_DISPLAY };
    beforeAll(() => {
      // No display: gnome-keyring cannot show an unlock prompt that someone could answer.
      delete process.env.DISPLAY;
      delete process.env.WAYLAND_DISPLAY;
    });
    afterAll(() => {
      for (const [k, v] of Object.entries(savedDisplay)) if (v !== undefined) process.env[k] = v;
    });

    test('a locked collection gives a one-line ServiceUnavailableError that says to unlock it', async () => {
      const service = uniq();
      const store = new KeyringSecretStore(service, { timeoutMs: 10_000 });
      await store.set(`${PREFIX}locked`, 'stored-before-locking');
      lockLoginCollection();
      try {
        expect(isLoginCollectionLocked()).toBe(true);
        const calls = [
          () => store.get(`${PREFIX}locked`),
          () => store.set(`${PREFIX}locked2`, 'x'.repeat(20)),
          () => store.delete(`${PREFIX}locked`),
          () => store.list(),
        ];
        for (const call of calls) {
          const err = await call().then(
            () => null,
            (e: unknown) => e,
          );
          expect(err).toBeInstanceOf(ServiceUnavailableError);
          const message = (err as Error).message;
          expect(message).toMatch(/^the keyring is locked \(/);
          expect(message).toMatch(/unlock it .* and try again$/);
          expect(message).not.toContain('\n');
        }
      } finally {
        await unlockLoginKeyring();
      }
      expect(isLoginCollectionLocked()).toBe(false);
      // Unlocked again: the secret is intact and later tests can use the keyring.
      expect(await store.get(`${PREFIX}locked`)).toBe('stored-before-locking');
      expect(await store.delete(`${PREFIX}locked`)).toBe(true);
    });

    test('a Secret Service that stops answering gives a TimeoutError at the deadline and leaves nothing running', async () => {
      const store = new KeyringSecretStore(uniq(), { timeoutMs: 1500 });
      const ours = (): string[] =>
        process.getActiveResourcesInfo().filter((r) => r === 'ProcessWrap' || r === 'PipeWrap');
      // The previous test's last worker may still be closing (libuv closes a handle one
      // loop turn after its 'close' event): count from a settled state, not a moving one.
      let baseline = ours();
      for (let i = 0; i < 50; i++) {
        await new Promise((r) => setTimeout(r, 20));
        const now = ours();
        if (now.length === baseline.length) break;
        baseline = now;
      }
      const pid = secretServicePid();
      process.kill(pid, 'SIGSTOP');
      let err: unknown;
      let elapsed: number;
      let leftover: string[];
      try {
        const started = Date.now();
        err = await store.get(`${PREFIX}hang`).then(
          () => null,
          (e: unknown) => e,
        );
        elapsed = Date.now() - started;
        // Still frozen: the worker was killed and reaped, not merely abandoned (an abandoned
        // worker would stay blocked on the frozen daemon and keep its process and pipes open,
        // so this process could not exit). libuv closes a handle one loop turn after its
        // 'close' event, hence a few turns of grace.
        for (let i = 0; i < 20 && ours().length > baseline.length; i++) {
          await new Promise((r) => setTimeout(r, 10));
        }
        leftover = ours();
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      expect(err).toBeInstanceOf(TimeoutError);
      expect((err as Error).message).toMatch(
        /^the keyring did not answer within 1500 ms \(get vmp-t-sec-[0-9a-f]+\/vmp-t-sec-hang\); .* raise VMP_KEYRING_TIMEOUT_MS$/,
      );
      // The deadline was honoured: not early, and not waiting for the frozen daemon (the
      // margin covers process start-up on a loaded machine, not a timing goal).
      expect(elapsed).toBeGreaterThanOrEqual(1500);
      expect(elapsed).toBeLessThan(1500 + 5000);
      expect(leftover).toEqual(baseline);
      // The daemon answers again once resumed.
      expect(await store.get(`${PREFIX}hang`)).toBeNull();
    });
  },
);

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
