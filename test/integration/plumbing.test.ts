import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Entry } from '@napi-rs/keyring';
import { describeWith, LIBVIRT_TEST_URI, probeLibvirt, probeSecretService } from '../support/services.js';

const virsh = (...args: string[]): string =>
  execFileSync('virsh', ['-c', LIBVIRT_TEST_URI, ...args], { encoding: 'utf8', timeout: 60_000 });

describeWith(probeLibvirt(), 'libvirt plumbing')('libvirtd plumbing', () => {
  test('the daemon answers with its own version and a QEMU driver', () => {
    const out = virsh('version', '--daemon');
    expect(out).toMatch(/Running against daemon: \d+\.\d+\.\d+/);
    expect(out).toMatch(/Running hypervisor: QEMU \d+\.\d+/);
  });

  test('capabilities offer the software-emulated qemu domain type our tests use', () => {
    const caps = virsh('capabilities');
    expect(caps).toContain("<domain type='qemu'");
    expect(caps).toMatch(/<arch name='x86_64'>/);
    // libvirtd probes QEMU on first use: seconds on an idle machine, more on a busy CI runner.
  }, 90_000);
});

describeWith(probeSecretService(), 'Secret Service plumbing')('Secret Service plumbing', () => {
  const service = `vm-provisioner-plumbing-${randomBytes(4).toString('hex')}`;

  test('a stored secret is readable by another Secret Service client, then deleted', () => {
    // Pinned to the Secret Service: unpinned, the library may fall back to the kernel keyring.
    const entry = new Entry(service, 'plumbing', { linux: { store: 'secret-service' } });
    const value = randomBytes(12).toString('base64url');
    entry.setPassword(value);
    try {
      expect(entry.getPassword()).toBe(value);
      // secret-tool talks D-Bus directly: proves the secret is in the daemon, not a fallback store.
      const viaDbus = execFileSync('secret-tool', ['lookup', 'service', service, 'username', 'plumbing'], {
        encoding: 'utf8',
        timeout: 10_000,
      });
      expect(viaDbus).toBe(value);
    } finally {
      expect(entry.deletePassword()).toBe(true);
    }
    expect(entry.getPassword()).toBeNull();
  });
});
