import { renderDomainXml } from '../../../src/render/domain-xml.js';
import { describeDomain } from '../../../src/libvirt/inspect.js';
import {
  checkChangeAllowed,
  definitionSettings,
  disagreements,
  parsePrefWords,
  patchDefinition,
  withPrefs,
} from '../../../src/service/prefs.js';
import { parseApplyFile } from '../../../src/spec/apply-file.js';
import { InputError } from '../../../src/util/errors.js';
import { testSpec } from '../../support/spec-fixture.js';

/** The pure parts of get/set and apply: value parsing, the definition patch, the change rules, the apply file. */

const spec = testSpec({
  name: 'web',
  memoryMb: 1024,
  vcpus: 2,
  networkMode: 'user',
  autoLaunchApps: ['xterm'],
});
/** As libvirt hands a definition back: memory in KiB, a MAC and a PCI address added. */
const libvirtXml = renderDomainXml(spec, {
  diskPath: '/vms/web.qcow2',
  configDiskPath: '/vms/web-config.img',
  version: '0.1.0',
})
  .replace(/<memory unit="MiB">1024<\/memory>/, "<memory unit='KiB'>1048576</memory>")
  .replace(
    '<interface type="user">',
    '<interface type="user"><mac address="52:54:00:12:34:56"/><address type="pci" bus="0x01"/>',
  );

describe('parsePrefWords: command-line words through the create validators', () => {
  test('numbers, names and lists', () => {
    expect(parsePrefWords('memory_mb', ['2048'])).toBe(2048);
    expect(parsePrefWords('label', ['red'])).toBe('red');
    expect(parsePrefWords('auto_launch_apps', ['xterm -fa Mono', 'xclock'])).toEqual([
      'xterm -fa Mono',
      'xclock',
    ]);
    expect(parsePrefWords('auto_launch_apps', [''])).toEqual([]);
  });
  test.each([
    ['memory_mb', ['4g'], 'invalid memory "4g": must be a whole number of MiB'],
    ['memory_mb', ['128'], 'invalid memory 128 MiB: must be at least 256 MiB'],
    ['vcpus', ['1', '2'], 'vcpus takes exactly one value, not 2 ("1" "2")'],
    ['network_mode', ['bridge'], 'invalid network mode "bridge"'],
    ['auto_launch_apps', [], "give the entries of auto_launch_apps, one argument each ('' for none)"],
    ['auto_launch_apps', ['rm -rf / ; x'], 'invalid auto-launch command'],
    ['disk_size_gb', ['30'], 'unknown key "disk_size_gb": use one of memory_mb'],
  ])('%s %j is refused', (key, words, message) => {
    expect(() => parsePrefWords(key, words)).toThrow(InputError);
    expect(() => parsePrefWords(key, words)).toThrow(message);
  });
  test('the host limit applies unless forced', () => {
    expect(() => parsePrefWords('vcpus', ['8'], { hostCpus: 4 })).toThrow("more than this host's 4 CPUs");
    expect(parsePrefWords('vcpus', ['8'], { hostCpus: 4, force: true })).toBe(8);
  });
});

describe('patchDefinition keeps what libvirt added and changes only our keys', () => {
  test('memory, vCPUs and apps', () => {
    const after = withPrefs(spec, {
      memory_mb: 512,
      vcpus: 1,
      auto_launch_apps: ['xclock', 'xterm -fa Mono'],
    });
    const xml = patchDefinition(libvirtXml, after);
    expect(definitionSettings(xml)).toEqual({
      memoryMb: 512,
      vcpus: 1,
      networkMode: 'user',
      apps: ['org.mozilla.firefox', 'xclock', 'xterm -fa Mono'],
    });
    expect(xml).toContain('52:54:00:12:34:56');
    expect(xml).toContain('<address type="pci" bus="0x01"/>');
    expect(describeDomain(xml).disks).toEqual(describeDomain(libvirtXml).disks);
    expect(disagreements(after, xml)).toEqual([]);
    expect(disagreements(spec, xml)).toEqual([
      'memory_mb: config 1024, libvirt definition 512',
      'vcpus: config 2, libvirt definition 1',
      'apps: config ["org.mozilla.firefox","xterm"], libvirt definition ["org.mozilla.firefox","xclock","xterm -fa Mono"]',
    ]);
  });
  test('network: the NIC is replaced with the MAC address kept; none removes it', () => {
    const onDefault = patchDefinition(libvirtXml, withPrefs(spec, { network_mode: 'default' }));
    expect(definitionSettings(onDefault).networkMode).toBe('default');
    expect(onDefault).toMatch(
      /<interface type="network"><mac address="52:54:00:12:34:56"\/><source network="default"\/>/,
    );
    const none = patchDefinition(libvirtXml, withPrefs(spec, { network_mode: 'none' }));
    expect(definitionSettings(none).networkMode).toBe('none');
    expect(none).not.toContain('<interface');
  });
  test('a definition that agrees is left as it was in every value', () => {
    expect(disagreements(spec, libvirtXml)).toEqual([]);
    expect(definitionSettings(patchDefinition(libvirtXml, spec))).toEqual(definitionSettings(libvirtXml));
  });
});

describe('checkChangeAllowed', () => {
  const off = { state: 'shut off', saved: false };
  test('a shut-off VM takes everything at once', () => {
    expect(
      checkChangeAllowed('web', 'vm', off, true, ['memory_mb', 'network_mode', 'auto_launch_apps']),
    ).toEqual([]);
  });
  test('network needs a shut-off VM without saved memory', () => {
    expect(() =>
      checkChangeAllowed('web', 'vm', { state: 'running', saved: false }, true, ['network_mode']),
    ).toThrow(
      "set: network_mode of 'web' can change only while it is shut off (it is running); stop it first",
    );
    expect(() =>
      checkChangeAllowed('web', 'vm', { state: 'shut off', saved: true }, true, ['network_mode']),
    ).toThrow('it has saved memory');
  });
  test('memory on a running VM is for its next cold boot, and says so', () => {
    expect(checkChangeAllowed('web', 'vm', { state: 'running', saved: false }, true, ['memory_mb'])).toEqual([
      "memory_mb takes effect at the next cold boot of 'web' (it is running; the persistent definition changed, as virsh --config does)",
    ]);
  });
  test('without a config disk the network moves only to or from none', () => {
    const move = (from: 'default' | 'user' | 'none', to: 'default' | 'user' | 'none'): string[] =>
      checkChangeAllowed('inst', 'vm', off, false, ['network_mode'], { from, to });
    expect(() => move('default', 'user')).toThrow(
      "set: network_mode of 'inst' cannot change from default to user: its guest agent reaches the proxy at 192.168.122.1",
    );
    expect(move('default', 'none')).toEqual([]);
    expect(move('none', 'user')).toEqual([]);
    expect(
      checkChangeAllowed('web', 'vm', off, true, ['network_mode'], { from: 'default', to: 'user' }),
    ).toEqual([]);
  });
  test('apps need a config disk; a template takes only its resources and network', () => {
    expect(() => checkChangeAllowed('web', 'vm', off, false, ['auto_launch_apps'])).toThrow(
      'it has no config disk',
    );
    expect(
      checkChangeAllowed('base', 'template', off, false, ['memory_mb', 'vcpus', 'network_mode']),
    ).toEqual([]);
    expect(() => checkChangeAllowed('base', 'template', off, false, ['label'])).toThrow(
      "set: label does not apply to template 'base'",
    );
  });
});

describe('parseApplyFile', () => {
  const text = [
    '[[template]]',
    'name = "base"',
    'import = "images/base.qcow2"',
    '',
    '[[vm]]',
    'name = "chromium"',
    'template = "base"',
    'memory_mb = 3072',
    'vcpus = 4',
    'flatpak_packages = ["org.chromium.Chromium"]',
  ].join('\n');
  test('entries with their lines; relative paths from the file directory', () => {
    const file = parseApplyFile(text, 'vms.toml', '/home/u');
    expect(file.templates).toEqual([
      expect.objectContaining({
        name: 'base',
        line: 1,
        settings: { name: 'base', import: '/home/u/images/base.qcow2' },
      }),
    ]);
    expect(file.vms[0]).toMatchObject({ name: 'chromium', line: 5, settings: { memory_mb: 3072, vcpus: 4 } });
  });
  test.each([
    [text.replace('memory_mb = 3072', 'memory_mb = "lots"'), 'vms.toml:8: memory_mb: invalid memory "lots"'],
    [text.replace('vcpus = 4', 'cores = 4'), 'vms.toml:9: unknown key "cores" in a vm'],
    [text.replace('template = "base"', ''), "vms.toml:5: vm 'chromium' names no template"],
    [
      text.replace('name = "chromium"', 'name = "base"'),
      "vms.toml:5: the name 'base' is already used by the template at line 1",
    ],
    [
      `${text}\n[[vm]]\nname = "x"\ntemplate = "chromium"`,
      "vms.toml:13: vm 'x': 'chromium' is a vm in this file, not a template",
    ],
    [`top = 1\n${text}`, 'vms.toml:1: unknown key or table "top"'],
    [
      text.replace('import = "images/base.qcow2"', 'kernel = "/k"'),
      "template 'base': kernel and initrd go together",
    ],
  ])('a bad entry names its file and line (%#)', (bad, message) => {
    expect(() => parseApplyFile(bad, 'vms.toml', '/home/u')).toThrow(message);
  });
});
