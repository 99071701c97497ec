import os from 'node:os';
import { installKernelCmdline, validateTreeUrl } from '../../../src/install/cmdline.js';
import { installLogPath } from '../../../src/install/logs.js';
import { defaultTreeUrl } from '../../../src/install/media.js';
import { InputError } from '../../../src/util/errors.js';

describe('install kernel command line', () => {
  test('carries the kickstart, the tree, text mode and the serial console', () => {
    expect(
      installKernelCmdline({
        treeUrl: 'https://download.fedoraproject.org/pub/fedora/linux/releases/41/Everything/x86_64/os/',
      }),
    ).toBe(
      'inst.ks=file:/ks.cfg inst.repo=https://download.fedoraproject.org/pub/fedora/linux/releases/41/Everything/x86_64/os/ inst.text console=ttyS0',
    );
  });

  test('normalises the tree URL to end in a slash and appends checked extra arguments', () => {
    expect(
      installKernelCmdline({ treeUrl: 'http://127.0.0.1:8080/tree', extraArgs: ['quiet', 'inst.sshd=0'] }),
    ).toBe(
      'inst.ks=file:/ks.cfg inst.repo=http://127.0.0.1:8080/tree/ inst.text console=ttyS0 quiet inst.sshd=0',
    );
  });

  test('the default tree is the Fedora Everything tree for the release and arch', () => {
    expect(defaultTreeUrl(42, 'aarch64')).toBe(
      'https://download.fedoraproject.org/pub/fedora/linux/releases/42/Everything/aarch64/os/',
    );
    expect(() => defaultTreeUrl(12, 'x86_64')).toThrow(
      /Fedora release 12 is not one of the supported releases/,
    );
  });

  test.each([
    'ftp://mirror/os/',
    'file:///srv/tree/',
    'https://user:pw@mirror/os/',
    'https://mirror/os/?x=1',
    'https://mirror/os/#frag',
    'https://mirror/os/ inst.sshd',
    'https://mirror/os/"',
    "https://mirror/o's/",
    'https://mirror/../etc/',
    'https://-bad-.example/os/',
    'https://mirror:99999/os/',
    'https://mirror/os/\ninit=/bin/sh',
    'mirror/os/',
    '',
  ])('refuses tree URL %j with a one-line error naming it', (url) => {
    let err: unknown;
    try {
      validateTreeUrl(url);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toContain(JSON.stringify(url));
    expect((err as Error).message).not.toContain('\n');
  });

  test('accepts hosts by name, IPv4 and bracketed IPv6, with a port', () => {
    expect(validateTreeUrl('http://[::1]:8000/os')).toBe('http://[::1]:8000/os/');
    expect(validateTreeUrl('https://mirror.example.org/fedora/41/x86_64/os/')).toBe(
      'https://mirror.example.org/fedora/41/x86_64/os/',
    );
    expect(validateTreeUrl('http://10.0.2.2')).toBe('http://10.0.2.2/');
  });

  test('refuses extra arguments and consoles outside the grammar', () => {
    expect(() => installKernelCmdline({ treeUrl: 'http://h/', extraArgs: ['a b'] })).toThrow(
      /kernel argument "a b" must be/,
    );
    expect(() => installKernelCmdline({ treeUrl: 'http://h/', extraArgs: ['x"y'] })).toThrow(InputError);
    expect(() => installKernelCmdline({ treeUrl: 'http://h/', console: 'ttyS0 init=/bin/sh' })).toThrow(
      /console/,
    );
    expect(installKernelCmdline({ treeUrl: 'http://h/', console: 'ttyS0,115200n8' })).toContain(
      'console=ttyS0,115200n8',
    );
  });
});

describe('install log path', () => {
  const saved = process.env.XDG_STATE_HOME;
  afterEach(() => {
    if (saved === undefined) delete process.env.XDG_STATE_HOME;
    else process.env.XDG_STATE_HOME = saved;
  });

  test('lives under $XDG_STATE_HOME/vm-provisioner/logs and refuses names that could escape it', () => {
    process.env.XDG_STATE_HOME = '/srv/state';
    expect(installLogPath('firefox-vm')).toBe('/srv/state/vm-provisioner/logs/firefox-vm-install.log');
    process.env.XDG_STATE_HOME = 'relative/ignored';
    expect(installLogPath('a')).toBe(`${os.homedir()}/.local/state/vm-provisioner/logs/a-install.log`);
    expect(() => installLogPath('../x')).toThrow(/VM name "..\/x" must be 1-63 characters/);
    expect(() => installLogPath('')).toThrow(InputError);
  });
});
