import TOML from '@iarna/toml';
import { InputError } from '../../../src/util/errors.js';
import { defaultSpec } from '../../../src/spec/defaults.js';
import {
  lineOfKey,
  parseSpecFields,
  specFromToml,
  specToToml,
  TOML_KEYS,
  tomlString,
} from '../../../src/spec/toml.js';
import type { VmSpec } from '../../../src/spec/types.js';
import { expectGolden } from '../../support/golden.js';

const FIREFOX: VmSpec = defaultSpec('firefox-vm', {
  systemPackages: ['@base-x', 'htop', 'kernel-6.*'],
  flatpakPackages: ['org.mozilla.firefox'],
  autoLaunchApps: ['flatpak run org.mozilla.firefox'],
  firewallRules: ['OUTPUT -p udp --dport 53 -j ACCEPT', 'OUTPUT -p tcp --dport 443 -j ACCEPT'],
});

/** The predecessor's documented file, minus its plaintext password line. */
const PREDECESSOR = `# ~/.config/vm-provisioner/firefox-vm.toml
name = "firefox-vm"
memory_mb = 4096
vcpus = 2
disk_size_gb = 20
vm_dir = "/var/lib/libvirt/images"

# Package installation
system_packages = ["@base-x", "gdm", "xorg-x11-server-Xorg", "wmctrl", "xwininfo", "pipewire", "wl-clipboard", "kitty"]
flatpak_packages = ["org.mozilla.firefox"]
auto_launch_apps = ["flatpak run org.mozilla.firefox"]

# Graphics and features
graphics_backend = "VirtioGpu"
enable_clipboard = true
enable_audio = true
enable_usb_passthrough = false
enable_auto_login = true

# Security
network_mode = "Nat"
firewall_rules = ["OUTPUT -p udp --dport 53 -j ACCEPT", "OUTPUT -p tcp --dport 443 -j ACCEPT"]
`;

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    const message = (err as Error).message;
    expect(message).not.toContain('\n');
    return message;
  }
  throw new Error('expected an InputError');
}

describe('specToToml', () => {
  test('writes every key in a fixed order (golden)', () => {
    expectGolden('spec/firefox-vm.toml', specToToml(FIREFOX));
  });

  test('round-trips through the TOML library and back to the same spec', () => {
    const text = specToToml(FIREFOX);
    expect(specFromToml(text, 'x.toml')).toEqual(FIREFOX);
    const doc = TOML.parse(text);
    // `template`, `on_stop`, `label` and `display` are optional: written only when set.
    const optional = ['template', 'on_stop', 'label', 'display'];
    expect(Object.keys(doc)).toEqual(Object.keys(TOML_KEYS).filter((k) => !optional.includes(k)));
    const saving = specToToml({ ...FIREFOX, onStop: 'save' });
    expect(TOML.parse(saving).on_stop).toBe('save');
    expect(specFromToml(saving, 'x.toml').onStop).toBe('save');
    const labelled = specToToml({ ...FIREFOX, label: 'red', display: 'seamless' });
    expect(TOML.parse(labelled)).toMatchObject({ label: 'red', display: 'seamless' });
    expect(specFromToml(labelled, 'x.toml')).toMatchObject({ label: 'red', display: 'seamless' });
    expect(() => specFromToml(`${text}label = "pink"\n`, 'x.toml')).toThrow(
      /x.toml:21: label: invalid label "pink": must be one of red, orange, yellow, green, blue, purple, gray, black/,
    );
    expect(() => specFromToml(`${text}on_stop = "hibernate"\n`, 'x.toml')).toThrow(
      /x.toml:21: on_stop: invalid on_stop "hibernate": must be one of save, shutdown/,
    );
    const onTemplate = specToToml({ ...FIREFOX, template: 'fedora-base' });
    expect(TOML.parse(onTemplate).template).toBe('fedora-base');
    expect(specFromToml(onTemplate, 'x.toml').template).toBe('fedora-base');
    expect(doc.memory_mb).toBe(4096);
    expect(doc.graphics_backend).toBe('virtio');
  });

  test('never writes a password or an invalid spec', () => {
    expect(specToToml(FIREFOX)).not.toMatch(/password\s*=/);
    expect(() => specToToml({ ...FIREFOX, systemPackages: ['git\n%post'] })).toThrow(InputError);
  });

  test('long lists are written one entry per line and still parse', () => {
    const many = { ...FIREFOX, systemPackages: Array.from({ length: 30 }, (_, i) => `pkg${i}`) };
    const text = specToToml(many);
    expect(text).toContain('system_packages = [\n  "pkg0",\n');
    expect(specFromToml(text, 'x.toml').systemPackages).toHaveLength(30);
  });

  test('tomlString escapes what TOML requires', () => {
    const s = 'a"b\\c\n\t\u0001\u007f';
    expect(tomlString(s)).toBe('"a\\"b\\\\c\\n\\t\\u0001\\u007f"');
    expect(TOML.parse(`x = ${tomlString(s)}`).x).toBe(s);
  });
});

describe('specFromToml', () => {
  test("reads the predecessor's file, mapping VirtioGpu and Nat", () => {
    const spec = specFromToml(PREDECESSOR, 'firefox-vm.toml');
    expect(spec.graphicsBackend).toBe('virtio');
    expect(spec.networkMode).toBe('default');
    expect(spec.systemPackages).toContain('xorg-x11-server-Xorg');
    // Keys the predecessor did not have take their defaults.
    expect(spec.fedoraRelease).toBe(43);
    expect(spec.arch).toBe('x86_64');
    expect(spec.virtType).toBe('kvm');
  });

  test("refuses the predecessor's plaintext password, naming file and line", () => {
    const text = `${PREDECESSOR}user_password = "vm-abc123def456"\n`;
    expect(refusal(() => specFromToml(text, 'firefox-vm.toml'))).toBe(
      'firefox-vm.toml:23: key "user_password" holds a password; remove it (passwords live only in the OS keyring)',
    );
  });

  test('requires a name', () => {
    expect(refusal(() => specFromToml('vcpus = 2\n', 'a.toml'))).toBe('a.toml: the key "name" is missing');
  });
});

describe('parseSpecFields errors name file, line and rule', () => {
  test('unknown key', () => {
    expect(refusal(() => parseSpecFields('name = "a"\n\nmemroy_mb = 4096\n', 'vm.toml'))).toBe(
      'vm.toml:3: unknown key "memroy_mb" (see docs/spec.md for the keys)',
    );
  });

  test('unknown table', () => {
    expect(refusal(() => parseSpecFields('name = "a"\n[extra]\nx = 1\n', 'vm.toml'))).toMatch(
      /^vm\.toml:2: unknown key "extra"/,
    );
  });

  test('syntax error with line and column', () => {
    expect(refusal(() => parseSpecFields('name = "a"\nvcpus = \n', 'vm.toml'))).toMatch(
      /^vm\.toml:2:\d+: not valid TOML: /,
    );
    expect(refusal(() => parseSpecFields('name = "a\n', 'vm.toml'))).toMatch(
      /^vm\.toml:1:\d+: not valid TOML: Unterminated string$/,
    );
  });

  test('duplicate key', () => {
    expect(refusal(() => parseSpecFields('vcpus = 2\nvcpus = 3\n', 'vm.toml'))).toMatch(
      /^vm\.toml:2:\d+: not valid TOML: Can't redefine existing key$/,
    );
  });

  test.each([
    ['memory_mb = "4096"', 'vm.toml:1: memory_mb must be an integer, not a string "4096"'],
    ['memory_mb = 4096.5', 'vm.toml:1: memory_mb: invalid memory 4096.5: must be a whole number of MiB'],
    ['memory_mb = 99999999999999999999', /^vm\.toml:1: /],
    [
      'memory_mb = 512',
      'vm.toml:1: memory_mb: invalid memory 512 MiB: must be at least 2048 MiB (the Fedora installer needs it; an imported VM or one on a template may have less)',
    ],
    ['vcpus = -2', 'vm.toml:1: vcpus: invalid vCPU count -2: must be at least 1 (a VM needs a CPU)'],
    ['enable_audio = "yes"', 'vm.toml:1: enable_audio must be a boolean, not a string "yes"'],
    ['system_packages = "git"', 'vm.toml:1: system_packages must be a list, not a string "git"'],
    ['system_packages = ["git", "$(id)"]', /^vm\.toml:1: system_packages: invalid package spec "\$\(id\)": /],
    [
      'flatpak_packages = ["org.mozillа.firefox"]',
      /^vm\.toml:1: flatpak_packages: invalid Flatpak ID "org\.mozill\\u0430\.firefox"/,
    ],
    ['auto_launch_apps = ["firefox; reboot"]', /^vm\.toml:1: auto_launch_apps: invalid auto-launch command/],
    ['firewall_rules = ["OUTPUT -j LOG"]', /^vm\.toml:1: firewall_rules: invalid firewall rule/],
    [
      'graphics_backend = "vga"',
      'vm.toml:1: graphics_backend: invalid graphics backend "vga": must be one of virtio, qxl',
    ],
    [
      'network_mode = "Bridge"',
      'vm.toml:1: network_mode: invalid network mode "Bridge": must be one of default, user, none',
    ],
    ['vm_dir = "images"', /^vm\.toml:1: vm_dir: invalid VM directory "images": must be an absolute path/],
    ['name = "../etc"', /^vm\.toml:1: name: invalid VM name/],
    [
      'fedora_release = 39',
      'vm.toml:1: fedora_release: invalid Fedora release 39: supported releases are 41, 42, 43',
    ],
    ['arch = "i686"', 'vm.toml:1: arch: invalid architecture "i686": must be one of x86_64, aarch64'],
    ['virt_type = 1', 'vm.toml:1: virt_type must be a string, not a number 1'],
    ['name = 1979-05-27', 'vm.toml:1: name must be a string, not a date'],
    ['name = { a = 1 }', 'vm.toml:1: name must be a string, not a table'],
  ])('%s', (line, expected) => {
    const message = refusal(() => parseSpecFields(`${line}\n`, 'vm.toml'));
    if (typeof expected === 'string') expect(message).toBe(expected);
    else expect(message).toMatch(expected);
  });

  test('host limits apply to a config file when given', () => {
    expect(refusal(() => parseSpecFields('vcpus = 8\n', 'c.toml', { hostCpus: 2 }))).toBe(
      "c.toml:1: vcpus: invalid vCPU count 8: more than this host's 2 CPUs; use --force to allow it",
    );
    expect(parseSpecFields('vcpus = 8\n', 'c.toml', { hostCpus: 2, force: true })).toEqual({ vcpus: 8 });
  });

  test('a hostile file name is shown escaped', () => {
    expect(refusal(() => parseSpecFields('x = 1\n', 'evil\nname.toml'))).toBe(
      '"evil\\nname.toml":1: unknown key "x" (see docs/spec.md for the keys)',
    );
  });

  test('lineOfKey finds bare, quoted and table keys', () => {
    const text = 'a = 1\n  "b" = 2\n[c]\n[[d]]\nee = 3\n';
    expect(lineOfKey(text, 'a')).toBe(1);
    expect(lineOfKey(text, 'b')).toBe(2);
    expect(lineOfKey(text, 'c')).toBe(3);
    expect(lineOfKey(text, 'd')).toBe(4);
    expect(lineOfKey(text, 'e')).toBeUndefined();
  });
});
