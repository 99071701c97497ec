import { InputError } from '../../../src/util/errors.js';
import { buildSpec } from '../../../src/spec/build.js';
import { autoName } from '../../../src/spec/naming.js';
import { parseSpecFields, specFromToml } from '../../../src/spec/toml.js';
import {
  validateAutostartCommand,
  validateFirewallRule,
  validateVmName,
} from '../../../src/spec/validate.js';

/** Issue 20, items 11-13: the reserved name, path segments, values shown as written. */

const HOST = { memoryMb: 16384, cpus: 8 };

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).exitCode).toBe(2);
    expect((err as Error).message).not.toContain('\n');
    return (err as Error).message;
  }
  throw new Error('expected an InputError');
}

describe('the name vm-passwords is reserved (the predecessor password file)', () => {
  test('refused as a name from a flag, a config file and a stored file, naming the rule', () => {
    const rule =
      /^invalid VM name "vm-passwords": is reserved: vm-passwords\.toml is the predecessor's password file, not a VM; choose another name$/;
    expect(refusal(() => validateVmName('vm-passwords'))).toMatch(rule);
    expect(refusal(() => buildSpec({ name: 'vm-passwords' }, undefined, { host: HOST }))).toMatch(rule);
    expect(
      refusal(() => buildSpec({}, 'name = "vm-passwords"\n', { host: HOST, configFile: 'my.toml' })),
    ).toMatch(/^my\.toml:1: name: invalid VM name "vm-passwords": is reserved/);
    expect(refusal(() => specFromToml('name = "vm-passwords"\n', 'vm-passwords.toml'))).toMatch(
      /^vm-passwords\.toml:1: name: invalid VM name "vm-passwords": is reserved/,
    );
  });

  test('near names stay valid, and no generated name is the reserved one', () => {
    expect(validateVmName('vm-passwords-2')).toBe('vm-passwords-2');
    expect(validateVmName('my-vm-passwords')).toBe('my-vm-passwords');
    expect(autoName({ flatpakPackages: [], systemPackages: ['vm-passwords'] })).toBe('vm-passwords-vm');
  });
});

describe('auto-launch programs: absolute path segments follow the program-name rule', () => {
  test.each([
    '/bin/../bin/sh',
    '/usr/./bin/foo',
    '/..',
    '/.',
    '/usr/bin/..',
    '/-x/sh',
    '/usr/.hidden/app',
    '/usr//bin/sh',
  ])('%s is refused', (cmd) => {
    expect(refusal(() => validateAutostartCommand(cmd))).toMatch(
      /^invalid auto-launch command ".*": use a program name or an absolute path whose segments are such names \(no \. or \.\./,
    );
  });

  test.each(['/usr/bin/sh', '/opt/app-1.2/bin/run.sh', 'flatpak run org.mozilla.firefox', '/bin/sh ../x'])(
    '%s is accepted',
    (cmd) => {
      expect(validateAutostartCommand(cmd)).toBe(cmd);
    },
  );

  test('the same rule for auto_launch_apps in a file and for --autostart-app', () => {
    expect(
      refusal(() =>
        buildSpec({}, 'name = "a"\nauto_launch_apps = ["/bin/../bin/sh"]\n', {
          host: HOST,
          configFile: 'f.toml',
        }),
      ),
    ).toMatch(/^f\.toml:2: auto_launch_apps: invalid auto-launch command "\/bin\/\.\.\/bin\/sh": /);
    expect(
      refusal(() => buildSpec({ name: 'a', autostartApp: ['/bin/../bin/sh'] }, undefined, { host: HOST })),
    ).toMatch(/^invalid auto-launch command "\/bin\/\.\.\/bin\/sh": /);
  });
});

describe('messages show a number as it is written in the file', () => {
  test.each([
    [
      'memory_mb = 99999999999999999999',
      'memory_mb: invalid memory 99999999999999999999: is far too large (in MiB)',
    ],
    [
      'memory_mb = 18446744073709555712',
      'memory_mb: invalid memory 18446744073709555712: is far too large (in MiB)',
    ],
    [
      'memory_mb = -99999999999999999999',
      'memory_mb: invalid memory -99999999999999999999: is far too large (in MiB)',
    ],
    [
      'memory_mb = 9007199254740993 # a comment',
      'memory_mb: invalid memory 9007199254740993: is far too large (in MiB)',
    ],
    ['vcpus = 18446744073709551617', 'vcpus: invalid vCPU count 18446744073709551617: is far too large'],
    ['disk_size_gb = 1e400', 'disk_size_gb: invalid disk size 1e400: must be a whole number of GB'],
    ['disk_size_gb = 4.5', 'disk_size_gb: invalid disk size 4.5: must be a whole number of GB'],
    [
      'memory_mb = 0x400',
      'memory_mb: invalid memory 0x400 MiB: must be at least 2048 MiB (the Fedora installer needs it; an imported VM or one on a template may have less)',
    ],
    [
      'memory_mb = 32_768',
      "memory_mb: invalid memory 32_768 MiB: more than this host's 16384 MiB of RAM; use --force to allow it",
    ],
    [
      'fedora_release = 18446744073709551657',
      'fedora_release: invalid Fedora release 18446744073709551657: is far too large',
    ],
    [
      'fedora_release = 0x28',
      'fedora_release: invalid Fedora release 0x28: supported releases are 41, 42, 43',
    ],
    ['arch = 99999999999999999999', 'arch must be a string, not a number 99999999999999999999'],
  ])('%s', (line, message) => {
    expect(refusal(() => parseSpecFields(`name = "a"\n${line}\n`, 'f.toml', { hostMb: 16384 }))).toBe(
      `f.toml:2: ${message}`,
    );
  });

  test('a leading byte-order mark is dropped; one elsewhere is shown as a character with its line', () => {
    expect(parseSpecFields('\ufeffname = "a"\nvcpus = 2\n', 'f.toml')).toEqual({ name: 'a', vcpus: 2 });
    expect(refusal(() => parseSpecFields('\ufeffname = "a"\nvcpus = 99999999999999999999\n', 'f.toml'))).toBe(
      'f.toml:2: vcpus: invalid vCPU count 99999999999999999999: is far too large',
    );
    expect(refusal(() => parseSpecFields('name = "a"\n\ufeffvcpus = 2\n', 'f.toml'))).toBe(
      'f.toml:2:1: not valid TOML: unexpected character "\\ufeff"',
    );
  });
});

describe('firewall rules: one address family per rule, checked by the spec grammar', () => {
  test.each([
    ['OUTPUT -s 10.0.0.1 -d ::1 -j ACCEPT', 'must not mix IPv4 and IPv6 addresses'],
    ['INPUT -s fe80::/10 -d 10.0.0.1 -j DROP', 'must not mix IPv4 and IPv6 addresses'],
    ['OUTPUT -p icmp -d ::1 -j ACCEPT', '-p icmp matches IPv4 only; it cannot take an IPv6 address'],
  ])('%s', (rule, why) => {
    expect(refusal(() => validateFirewallRule(rule))).toContain(
      `invalid firewall rule "${rule}": ${why}; use "INPUT|OUTPUT`,
    );
  });

  test('same-family rules still pass', () => {
    expect(validateFirewallRule('OUTPUT -s 10.0.0.1 -d 10.0.0.0/8 -j ACCEPT')).toBeDefined();
    expect(validateFirewallRule('OUTPUT -s ::1 -d fe80::/10 -p tcp --dport 22 -j ACCEPT')).toBeDefined();
    expect(validateFirewallRule('OUTPUT -p icmp -d 10.0.0.1 -j ACCEPT')).toBeDefined();
  });

  test('in a config file the error carries file:line', () => {
    const text =
      'name = "a"\n\nfirewall_rules = ["OUTPUT -p tcp --dport 443 -j ACCEPT", "OUTPUT -s 10.0.0.1 -d ::1 -j ACCEPT"]\n';
    expect(refusal(() => buildSpec({}, text, { host: HOST, configFile: 'fw.toml' }))).toMatch(
      /^fw\.toml:3: firewall_rules: invalid firewall rule "OUTPUT -s 10\.0\.0\.1 -d ::1 -j ACCEPT": must not mix IPv4 and IPv6 addresses; /,
    );
  });
});
