import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildSpecWithMeta, prepareCreate } from '../../../src/spec/build.js';
import { loadUserDefaults, parseDefaults } from '../../../src/spec/defaults-file.js';
import { resolveConnection } from '../../../src/libvirt/index.js';
import { FileConfigStore } from '../../../src/spec/store.js';
import { validateVmName } from '../../../src/spec/validate.js';
import { InputError } from '../../../src/util/errors.js';

const HOST = { memoryMb: 16384, cpus: 8 };
const NOW = new Date('2026-11-23T12:00:00Z');
const file = (text: string): { text: string; source: string } => ({ text, source: '/home/u/defaults.toml' });

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).not.toContain('\n');
    return (err as Error).message;
  }
  throw new Error('expected an InputError');
}

describe('parseDefaults', () => {
  test('reads every key it allows, with the per-VM TOML spellings and validators', () => {
    const d = parseDefaults(
      file(
        [
          'memory_mb = 3072',
          'vcpus = 3',
          'template = "fedora-apps"',
          'network_mode = "user"',
          'vm_dir = "/srv/vms"',
          'connect = "qemu:///session"',
          'label = "red"',
          'display = "seamless"',
          'on_stop = "save"',
          'default_template = "debian-base"',
          'disposable_clones = false',
          'disposable_preload = 2',
        ].join('\n'),
      ),
    );
    expect(d.spec).toEqual({
      memoryMb: 3072,
      vcpus: 3,
      template: 'fedora-apps',
      networkMode: 'user',
      vmDir: '/srv/vms',
      label: 'red',
      display: 'seamless',
      onStop: 'save',
    });
    expect(d.connect).toBe('qemu:///session');
    expect(d.lines.connect).toBe(6);
    // Disposables' template: not a create setting, so not in the spec.
    expect(d.defaultTemplate).toBe('debian-base');
    expect(d.disposableClones).toBe(false);
    expect(d.disposablePreload).toBe(2);
  });

  test.each([
    ['memory = 2048\n', /^\/home\/u\/defaults\.toml:1: unknown key "memory" \(did you mean memory_mb\?/],
    ['\nname = "x"\n', /^\/home\/u\/defaults\.toml:2: unknown key "name"/],
    ['disk_size_gb = 30\n', /:1: unknown key "disk_size_gb"/],
    ['vcpus = "two"\n', /:1: vcpus must be an integer, not a string "two"/],
    ['label = "pink"\n', /:1: label: invalid label "pink"/],
    ['connect = "not a uri"\n', /:1: connect: invalid libvirt URI "not a uri"/],
    ['template = "Bad_Name"\n', /:1: template: invalid VM name "Bad_Name"/],
    ['default_template = "a b"\n', /:1: default_template: invalid VM name "a b"/],
    ['disposable_clones = "no"\n', /:1: disposable_clones must be a boolean, not a string "no"$/],
    [
      'disposable_preload = 5\n',
      /:1: disposable_preload: invalid disposable_preload 5: must be a whole number from 0 to 4$/,
    ],
    [
      'disposable_preload = -1\n',
      /:1: disposable_preload: invalid disposable_preload -1: must be a whole number from 0 to 4$/,
    ],
    ['disposable_preload = true\n', /:1: disposable_preload must be an integer, not a boolean/],
    ['vm_dir = "relative/dir"\n', /:1: vm_dir: /],
    ['memory_mb = 1\n', /:1: memory_mb: invalid memory 1 MiB/],
    ['password = "x"\n', /:1: key "password" holds a password/],
    ['memory_mb = [\n', /^\/home\/u\/defaults\.toml:\d+:\d+: not valid TOML/],
  ])('refuses %p with one line naming file:line', (text, expected) => {
    expect(refusal(() => parseDefaults(file(text), { minMemoryMb: 256 }))).toMatch(expected);
  });
});

describe('precedence: built-in < defaults.toml < --config < flags', () => {
  const defaults = file('memory_mb = 3072\nvcpus = 3\nlabel = "red"\non_stop = "save"\n');
  test('the defaults file stands in for the built-in defaults', () => {
    const { spec } = buildSpecWithMeta({ name: 'a' }, undefined, { host: HOST, now: NOW, defaults });
    expect([spec.memoryMb, spec.vcpus, spec.label, spec.onStop]).toEqual([3072, 3, 'red', 'save']);
  });

  test('a --config file beats it, and a flag beats both', () => {
    const { spec } = buildSpecWithMeta({ name: 'a', vcpus: '5' }, 'memory_mb = 5000\nvcpus = 4\n', {
      host: HOST,
      now: NOW,
      defaults,
      configFile: 'c.toml',
    });
    expect([spec.memoryMb, spec.vcpus, spec.label]).toEqual([5000, 5, 'red']);
  });

  test("an app VM's template settings beat the defaults file, flags beat them", () => {
    const { spec } = buildSpecWithMeta({ name: 'a', template: 't', vcpus: '1' }, undefined, {
      host: HOST,
      now: NOW,
      defaults,
      base: { memoryMb: 1024, vcpus: 2 },
    });
    expect([spec.memoryMb, spec.vcpus, spec.label]).toEqual([1024, 1, 'red']);
  });

  test("the installer's memory floor applies to the file's memory_mb, naming its line", () => {
    const low = file('vcpus = 2\nmemory_mb = 1024\n');
    expect(refusal(() => buildSpecWithMeta({ name: 'a' }, undefined, { host: HOST, defaults: low }))).toMatch(
      /^\/home\/u\/defaults\.toml:2: memory_mb: invalid memory 1024 MiB: must be at least 2048 MiB/,
    );
    // On a template no installer runs: the same file is fine.
    const { spec } = buildSpecWithMeta({ name: 'a', template: 't' }, undefined, {
      host: HOST,
      defaults: low,
    });
    expect(spec.memoryMb).toBe(1024);
  });

  test('its template makes a plain create an app VM, and says so', () => {
    const withTemplate = file('template = "fedora-apps"\n');
    const built = buildSpecWithMeta({ name: 'a' }, undefined, { host: HOST, defaults: withTemplate });
    expect(built.spec.template).toBe('fedora-apps');
    expect(built.templateFromDefaults).toBe('/home/u/defaults.toml');
    // Not for an import, an install from a tree, --no-template, or a template itself.
    for (const flags of [
      { name: 'a', import: '/tmp/x.qcow2' },
      { name: 'a', location: 'https://example.org/tree/' },
      { name: 'a', template: false as unknown as string },
    ]) {
      expect(
        buildSpecWithMeta(flags, undefined, { host: HOST, defaults: withTemplate }).spec.template,
      ).toBeUndefined();
    }
    const forTemplate = buildSpecWithMeta({ name: 'a' }, undefined, {
      host: HOST,
      defaults: withTemplate,
      templateFromDefaults: false,
    });
    expect(forTemplate.spec.template).toBeUndefined();
    // --template on the command line wins and is not reported as the file's.
    const flagged = buildSpecWithMeta({ name: 'a', template: 'other' }, undefined, {
      host: HOST,
      defaults: withTemplate,
    });
    expect([flagged.spec.template, flagged.templateFromDefaults]).toEqual(['other', undefined]);
  });
});

describe('the connection really used', () => {
  test('--connect, then LIBVIRT_DEFAULT_URI, then the defaults file, then qemu:///system', () => {
    const env = { LIBVIRT_DEFAULT_URI: 'qemu:///session' };
    expect(resolveConnection('test:///default', env, 'qemu+ssh://h/system')).toEqual({
      uri: 'test:///default',
      source: '--connect',
    });
    expect(resolveConnection(undefined, env, 'qemu+ssh://h/system')).toEqual({
      uri: 'qemu:///session',
      source: 'LIBVIRT_DEFAULT_URI',
    });
    expect(resolveConnection(undefined, {}, 'qemu+ssh://h/system')).toEqual({
      uri: 'qemu+ssh://h/system',
      source: 'defaults file',
    });
    expect(resolveConnection(undefined, {}, undefined)).toEqual({
      uri: 'qemu:///system',
      source: 'built-in default',
    });
  });
});

describe('the file beside the VM configs', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-defaults-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('"defaults" is not a usable VM name, and the store does not list the file as a VM', async () => {
    expect(refusal(() => validateVmName('defaults'))).toMatch(/"defaults": is reserved: defaults\.toml/);
    fs.writeFileSync(path.join(dir, 'defaults.toml'), 'vcpus = 2\n');
    expect(await new FileConfigStore(dir).list()).toEqual([]);
  });

  test('a missing file is no defaults; a directory or non-UTF-8 file in its place is refused', async () => {
    expect(await loadUserDefaults(path.join(dir, 'defaults.toml'))).toBeUndefined();
    fs.mkdirSync(path.join(dir, 'defaults.toml'));
    await expect(loadUserDefaults(path.join(dir, 'defaults.toml'))).rejects.toThrow(
      /defaults file .*defaults\.toml is not a regular file/,
    );
    fs.writeFileSync(path.join(dir, 'bin.toml'), Buffer.from([0x76, 0xff, 0xfe]));
    await expect(loadUserDefaults(path.join(dir, 'bin.toml'))).rejects.toThrow(/is not UTF-8 text/);
  });

  test('prepareCreate reads it and passes the resolved connection to the plan options', async () => {
    const prepared = await prepareCreate(
      { name: 'a' },
      {
        store: new FileConfigStore(dir),
        host: HOST,
        defaults: file('vcpus = 3\n'),
        connection: { uri: 'qemu:///session', shown: 'LIBVIRT_DEFAULT_URI' },
      },
    );
    expect(prepared.spec.vcpus).toBe(3);
    expect(prepared.options.connectUri).toBe('qemu:///session');
    expect(prepared.options.connectSource).toBe('LIBVIRT_DEFAULT_URI');
    // The session connection's own image directory, as for --connect qemu:///session.
    expect(prepared.spec.vmDir).toMatch(/\.local\/share\/libvirt\/images$/);
  });
});

describe("the plan of an app VM on the defaults file's template", () => {
  test('names the template, where it came from, and the connection with its source', async () => {
    const { formatTemplatePlan } = await import('../../../src/cli/create-on-template.js');
    const { defaultSpec } = await import('../../../src/spec/defaults.js');
    const spec = { ...defaultSpec('app'), template: 'fedora-apps' };
    const plan = {
      template: { name: 'fedora-apps', disk: '/vms/fedora-apps.qcow2' },
      paths: {
        root: '/vms/app-root.qcow2',
        private: '/vms/app-private.qcow2',
        configDisk: '/vms/app-config.img',
      },
      pendingFlatpaks: [],
    } as unknown as Parameters<typeof formatTemplatePlan>[1];
    const text = formatTemplatePlan(
      spec,
      plan,
      {
        connectUri: 'qemu:///session',
        connectSource: 'LIBVIRT_DEFAULT_URI',
        templateSource: '/home/u/.config/vm-provisioner/defaults.toml',
      },
      '~/.config/vm-provisioner/app.toml',
    );
    expect(text).toContain(
      '  connection:         qemu:///session (from LIBVIRT_DEFAULT_URI, domain type kvm)\n',
    );
    expect(text).toContain(
      '  template:           fedora-apps (/vms/fedora-apps.qcow2, sealed, read-only; from /home/u/.config/vm-provisioner/defaults.toml)\n',
    );
  });
});
