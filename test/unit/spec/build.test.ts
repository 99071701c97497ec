import { InputError } from '../../../src/util/errors.js';
import { buildCreateOptions, buildSpec, buildSpecWithMeta } from '../../../src/spec/build.js';
import { defaultSpec } from '../../../src/spec/defaults.js';
import { formatPlan } from '../../../src/spec/plan.js';
import { expectGolden } from '../../support/golden.js';

const HOST = { memoryMb: 16384, cpus: 8 };
const NOW = new Date('2026-11-23T12:00:00Z');
const opts = { host: HOST, now: NOW, configFile: 'my.toml' };

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

describe('buildSpec', () => {
  test('no flags: every default and an app-vm-<timestamp> name', () => {
    const built = buildSpecWithMeta({}, undefined, opts);
    expect(built.nameGenerated).toBe(true);
    expect(built.spec).toEqual(defaultSpec('app-vm-1795435200'));
  });

  test('the seed example: multi-valued and repeated flags', () => {
    const spec = buildSpec(
      { system: ['git', 'gcc'], flatpak: ['a.b.C', 'd.e.F'], memory: '8192', vcpus: '4', disk: '40' },
      undefined,
      opts,
    );
    expect(spec.name).toBe('a-b-c-vm');
    expect(spec.systemPackages).toEqual(['git', 'gcc']);
    expect(spec.flatpakPackages).toEqual(['a.b.C', 'd.e.F']);
    expect(spec.autoLaunchApps).toEqual(['flatpak run a.b.C', 'flatpak run d.e.F']);
    expect([spec.memoryMb, spec.vcpus, spec.diskSizeGb]).toEqual([8192, 4, 40]);
  });

  test('system packages are installed, not launched; duplicates collapse', () => {
    const spec = buildSpec({ system: ['git', 'git', 'htop'] }, undefined, opts);
    expect(spec.name).toBe('git-vm');
    expect(spec.systemPackages).toEqual(['git', 'htop']);
    expect(spec.autoLaunchApps).toEqual([]);
  });

  test('--autostart-app replaces the derived flatpak run commands', () => {
    const spec = buildSpec(
      {
        flatpak: ['org.mozilla.firefox'],
        autostartApp: ['flatpak run org.mozilla.firefox --private-window', 'kitty'],
      },
      undefined,
      opts,
    );
    expect(spec.autoLaunchApps).toEqual(['flatpak run org.mozilla.firefox --private-window', 'kitty']);
    expect(buildSpec({ autostartApp: 'kitty' }, undefined, opts).autoLaunchApps).toEqual(['kitty']);
  });

  test('defaults < config file < flags', () => {
    const file = [
      'name = "from-file"',
      'memory_mb = 6144',
      'vcpus = 3',
      'system_packages = ["vim"]',
      'flatpak_packages = ["org.gimp.GIMP"]',
      'network_mode = "user"',
      'enable_audio = false',
    ].join('\n');
    const fromFile = buildSpecWithMeta({}, file, opts);
    expect(fromFile.nameGenerated).toBe(false);
    expect(fromFile.spec).toMatchObject({
      name: 'from-file',
      memoryMb: 6144,
      vcpus: 3,
      systemPackages: ['vim'],
      flatpakPackages: ['org.gimp.GIMP'],
      autoLaunchApps: ['flatpak run org.gimp.GIMP'],
      networkMode: 'user',
      enableAudio: false,
      diskSizeGb: 20,
    });
    const flagged = buildSpec(
      { name: 'from-flag', memory: '4096', system: ['git'], network: 'none' },
      file,
      opts,
    );
    expect(flagged).toMatchObject({
      name: 'from-flag',
      memoryMb: 4096,
      vcpus: 3,
      systemPackages: ['git'],
      networkMode: 'none',
      enableAudio: false,
    });
  });

  test('enum and release flags', () => {
    const spec = buildSpec(
      {
        name: 'x',
        fedoraRelease: '42',
        arch: 'aarch64',
        virtType: 'qemu',
        graphics: 'qxl',
        network: 'user',
        vmDir: '/srv/vms/',
      },
      undefined,
      opts,
    );
    expect(spec).toMatchObject({
      fedoraRelease: 42,
      arch: 'aarch64',
      virtType: 'qemu',
      graphicsBackend: 'qxl',
      networkMode: 'user',
      vmDir: '/srv/vms',
    });
  });

  test('qemu:///session defaults the disk directory to the user pool', () => {
    const home = process.env.HOME;
    process.env.HOME = '/home/tester';
    try {
      expect(buildSpec({ connect: 'qemu:///session' }, undefined, opts).vmDir).toBe(
        '/home/tester/.local/share/libvirt/images',
      );
    } finally {
      process.env.HOME = home;
    }
  });

  test('host maximums apply to flags and the file; --force lifts them', () => {
    expect(refusal(() => buildSpec({ memory: '32768' }, undefined, opts))).toBe(
      "invalid memory 32768 MiB: more than this host's 16384 MiB of RAM; use --force to allow it",
    );
    expect(buildSpec({ memory: '32768', force: true }, undefined, opts).memoryMb).toBe(32768);
    expect(refusal(() => buildSpec({}, 'vcpus = 16\n', opts))).toBe(
      "my.toml:1: vcpus: invalid vCPU count 16: more than this host's 8 CPUs; use --force to allow it",
    );
    expect(buildSpec({ force: true }, 'vcpus = 16\n', opts).vcpus).toBe(16);
  });

  test.each([
    [{ name: 'Bad_Name' }, /^invalid VM name "Bad_Name"/],
    [{ name: ['a', 'b'] }, /^option --name was given 2 times; give it once$/],
    [{ system: ['git', 'rm -rf /'] }, /^invalid package spec "rm -rf \/"/],
    [{ flatpak: ['firefox'] }, /^invalid Flatpak ID "firefox": needs at least 3/],
    [{ memory: '-1' }, /^invalid memory "-1": must be a whole number of MiB$/],
    [{ vcpus: '2.5' }, /^invalid vCPU count "2.5"/],
    [{ disk: '1e3' }, /^invalid disk size "1e3"/],
    [{ fedoraRelease: '40' }, /^invalid Fedora release "40"/],
    [{ arch: 'riscv64' }, /^invalid architecture "riscv64"/],
    [{ virtType: 'xen' }, /^invalid virtualisation type "xen"/],
    [{ network: 'bridge' }, /^invalid network mode "bridge"/],
    [{ graphics: 'vga' }, /^invalid graphics backend "vga"/],
    [{ autostartApp: 'firefox; reboot' }, /^invalid auto-launch command "firefox; reboot"/],
    [{ vmDir: '/my vms' }, /^invalid --vm-dir directory "\/my vms"/],
    [{ connect: 'not a uri' }, /^invalid libvirt URI "not a uri"/],
  ])('refuses %p', (flags, expected) => {
    expect(refusal(() => buildSpec(flags, undefined, opts))).toMatch(expected);
  });

  test('the 2048 MiB floor holds where an installer runs; --import and --template go down to 256', () => {
    expect(refusal(() => buildSpec({ memory: '512' }, undefined, opts))).toContain(
      'must be at least 2048 MiB (the Fedora installer needs it',
    );
    expect(buildSpec({ memory: '512', import: '/i.qcow2' }, undefined, opts).memoryMb).toBe(512);
    expect(buildSpec({ memory: '384', template: 'base' }, undefined, opts)).toMatchObject({
      memoryMb: 384,
      template: 'base',
    });
    // A --config file naming the template counts too; its memory is checked once the whole spec is known.
    expect(buildSpec({}, 'template = "base"\nmemory_mb = 300\n', opts).memoryMb).toBe(300);
    expect(refusal(() => buildSpec({}, 'memory_mb = 300\n', opts))).toContain('at least 2048 MiB');
    expect(refusal(() => buildSpec({ memory: '255', template: 'base' }, undefined, opts))).toContain(
      'must be at least 256 MiB (the smallest guest that boots)',
    );
    expect(refusal(() => buildSpec({ template: 'bad name' }, undefined, opts))).toContain(
      'invalid VM name "bad name"',
    );
  });

  test("settings a base gives (an app VM takes its template's) stand in for the defaults; flags still win", () => {
    const base = { memoryMb: 1024, networkMode: 'user' as const, virtType: 'qemu' as const, vmDir: '/t' };
    const spec = buildSpec({ template: 'base', vcpus: '1' }, undefined, { ...opts, base });
    expect(spec).toMatchObject({
      memoryMb: 1024,
      networkMode: 'user',
      virtType: 'qemu',
      vmDir: '/t',
      vcpus: 1,
    });
    expect(buildSpec({ template: 'base', memory: '2048' }, undefined, { ...opts, base }).memoryMb).toBe(2048);
  });

  test('a hostile config file is refused with its line', () => {
    const text = 'name = "ok"\nsystem_packages = ["git", "x\\n%post"]\n';
    expect(refusal(() => buildSpec({}, text, opts))).toBe(
      'my.toml:2: system_packages: invalid package spec "x\\n%post": ' +
        "use a dnf package name or version glob (A-Z a-z 0-9 and _ . + : ~ ^ - * ?, not starting with '-'), " +
        '@group-id or @^environment-id; no spaces, quotes or shell/kickstart characters',
    );
  });
});

describe('buildCreateOptions', () => {
  test('defaults', () => {
    expect(buildCreateOptions({})).toEqual({
      connectUri: 'qemu:///system',
      force: false,
      yes: false,
      dryRun: false,
      verbose: false,
    });
  });

  test('paths resolve against the working directory; URLs are checked', () => {
    const o = buildCreateOptions(
      { import: 'disks/base.qcow2', connect: 'qemu:///session', yes: true, dryRun: true, verbose: true },
      '/srv',
    );
    expect(o).toMatchObject({
      importDisk: '/srv/disks/base.qcow2',
      connectUri: 'qemu:///session',
      yes: true,
    });
    expect(buildCreateOptions({ location: 'https://mirror.example/os/' }).location).toBe(
      'https://mirror.example/os/',
    );
  });

  test('--import and --location exclude each other', () => {
    expect(refusal(() => buildCreateOptions({ import: '/a.qcow2', location: 'https://m.example/' }))).toMatch(
      /--import and --location exclude each other/,
    );
  });

  test.each([
    [{ location: 'file:///etc' }, /install location/],
    [{ import: '/tmp/a b.qcow2' }, /--import disk/],
    [{ config: '' }, /--config needs a file name/],
  ])('refuses %p', (flags, expected) => {
    expect(refusal(() => buildCreateOptions(flags))).toMatch(expected);
  });
});

describe('formatPlan', () => {
  test('summarises name, resources, packages, apps, disk and release (golden)', () => {
    const spec = buildSpec(
      { flatpak: ['org.mozilla.firefox'], system: ['htop'], memory: '8192', vcpus: '4' },
      undefined,
      opts,
    );
    const text = formatPlan(spec, buildCreateOptions({ dryRun: true }), '~/.config/vm-provisioner/x.toml');
    expectGolden('spec/plan-firefox.txt', text);
    expect(text).toContain('/var/lib/libvirt/images/org-mozilla-firefox-vm.qcow2');
  });
});
