import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildConfigDisk, findMkfsExt4 } from '../../../src/configdisk/image.js';
import { configDiskFiles, type ConfigDiskFile } from '../../../src/configdisk/layout.js';
import { AlreadyExistsError, VmpError } from '../../../src/util/errors.js';
import { FAKE_HASH, FAKE_SECRET, GOLDEN_SPECS } from '../../support/render-fixtures.js';
import { describeWith, type Probe } from '../../support/services.js';
import { allOf, probeCommand } from '../../support/tools.js';

/**
 * A real config disk built with mkfs.ext4, read back with debugfs (no mount
 * needed), and the guest loader run on it against a scratch root directory:
 * the same script, mount and install calls as in a VM, with VMP_ROOT.
 */

const LOADER = path.resolve('guest-agent/config-disk/vmp-apply-config');
const UNIT = path.resolve('systemd/vm-provisioner-config.service');
const SBIN_PATH = `${process.env.PATH ?? ''}:/usr/sbin:/sbin`;

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, PATH: SBIN_PATH, ...env },
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, out: `${r.stdout}${r.stderr}` };
}

const debugfs = (image: string, request: string) => run('debugfs', ['-R', request, image]);

function probeE2fsprogs(): Probe {
  const p = probeCommand('debugfs', ['-V']);
  if (!p.available) return probeCommand('/usr/sbin/debugfs', ['-V']);
  return p;
}

/** Loop-mounting the image and usermod --root need root; a VM's loader runs as root too. */
function probeRoot(): Probe {
  return process.getuid?.() === 0
    ? { available: true, reason: '' }
    : { available: false, reason: 'not root: the loader mounts the disk and runs usermod' };
}

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-cfgdisk-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const spec = GOLDEN_SPECS['office-vm']!;
const files = (): ConfigDiskFile[] =>
  configDiskFiles({
    spec,
    credentials: { passwordHash: FAKE_HASH, agentSecret: FAKE_SECRET },
    proxyHost: '10.0.2.2',
    proxyPort: 9999,
  });

describeWith(probeE2fsprogs(), 'config disk image (e2fsprogs)')('config disk image', () => {
  test('holds every file with its mode, label VMPCONFIG, no journal; host file 0600; staging removed', async () => {
    const staging = fs.mkdtempSync(path.join(tmp, 'staging-'));
    const image = path.join(tmp, 'office-vm-config.img');
    await buildConfigDisk(files(), image, { stagingParent: staging });
    expect(fs.statSync(image).mode & 0o777).toBe(0o600);
    expect(fs.statSync(image).size).toBe(4 * 1024 * 1024);
    expect(fs.readdirSync(staging)).toEqual([]);
    for (const file of files()) {
      const cat = debugfs(image, `cat /${file.path}`);
      expect(cat.stdout).toBe(file.content);
      const stat = debugfs(image, `stat /${file.path}`);
      expect(stat.stdout).toMatch(new RegExp(`Mode: +0${file.mode.toString(8)}\\b`));
    }
    const header = run('dumpe2fs', ['-h', image]);
    expect(header.stdout).toMatch(/^Filesystem volume name: +VMPCONFIG$/m);
    expect(header.stdout).not.toMatch(/has_journal/);
    expect(run('blkid', ['-o', 'value', '-s', 'LABEL', image]).stdout.trim()).toBe('VMPCONFIG');
  });

  test('never overwrites an existing file', async () => {
    const image = path.join(tmp, 'exists.img');
    fs.writeFileSync(image, 'keep me');
    await expect(buildConfigDisk(files(), image)).rejects.toThrow(AlreadyExistsError);
    expect(fs.readFileSync(image, 'utf8')).toBe('keep me');
  });

  test('a failing mkfs.ext4 leaves neither the image nor the staging directory', async () => {
    const staging = fs.mkdtempSync(path.join(tmp, 'staging-'));
    const image = path.join(tmp, 'too-small.img');
    // mke2fs refuses a zero size: a real mkfs.ext4 failure.
    const promise = buildConfigDisk(files(), image, { sizeMiB: 0, stagingParent: staging });
    await expect(promise).rejects.toThrow(VmpError);
    await expect(promise).rejects.toThrow(/^building the config disk failed: mkfs\.ext4: /);
    expect(fs.existsSync(image)).toBe(false);
    expect(fs.readdirSync(staging)).toEqual([]);
  });

  test('a file name with .. or a bad mode is refused before anything is made', async () => {
    const image = path.join(tmp, 'bad-names.img');
    const bad = [{ path: 'units/../../etc/passwd', mode: 0o644, content: 'x' }];
    await expect(buildConfigDisk(bad, image)).rejects.toThrow(/config disk file name .* is invalid/);
    await expect(buildConfigDisk([{ path: 'a', mode: 0o755, content: '' }], image)).rejects.toThrow(
      /mode 755 is invalid/,
    );
    expect(fs.existsSync(image)).toBe(false);
  });

  test('mkfs.ext4 is found even on a PATH without the sbin directories', async () => {
    expect(await findMkfsExt4({ PATH: '/usr/bin:/bin' })).toMatch(/^\/(usr\/)?sbin\/mkfs\.ext4$/);
  });
});

/** A scratch guest root: user `user` (uid 1000) in passwd/shadow/group, and an /etc/hosts. */
function fakeRoot(dir: string): string {
  fs.mkdirSync(path.join(dir, 'etc'), { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/bash\nuser:x:1000:1000::/home/user:/bin/bash\n',
  );
  fs.writeFileSync(path.join(dir, 'etc/shadow'), 'root:*:19000:0:99999:7:::\nuser:!:19000:0:99999:7:::\n', {
    mode: 0o640,
  });
  fs.writeFileSync(path.join(dir, 'etc/group'), 'root:x:0:\nuser:x:1000:\n');
  fs.writeFileSync(path.join(dir, 'etc/hosts'), '127.0.0.1\tlocalhost\n127.0.1.1\tdebian\n');
  fs.writeFileSync(path.join(dir, 'etc/hostname'), 'debian\n');
  return dir;
}

function applyConfig(root: string, image: string) {
  return run('bash', [LOADER], {
    VMP_ROOT: root,
    VMP_CONFIG_DEVICE: image,
    VMP_CONFIG_MOUNT: path.join(root, 'run/vm-provisioner/config'),
  });
}

/**
 * The loader finding its disk the way it does at boot: by serial, under a fake
 * /sys/block (`devices`: name -> [serial, backing file]) whose device nodes are
 * links to the backing files in a fake /dev.
 */
function applyConfigBySerial(root: string, devices: Record<string, [string, string]>, wait = '0') {
  const sys = fs.mkdtempSync(path.join(tmp, 'sys-block-'));
  const dev = fs.mkdtempSync(path.join(tmp, 'dev-'));
  for (const [name, [serial, file]] of Object.entries(devices)) {
    fs.mkdirSync(path.join(sys, name));
    fs.writeFileSync(path.join(sys, name, 'serial'), `${serial}\n`);
    fs.symlinkSync(file, path.join(dev, name));
  }
  fs.mkdirSync(path.join(sys, 'loop0')); // a device without a serial file
  const result = run('bash', [LOADER], {
    VMP_ROOT: root,
    VMP_SYS_BLOCK: sys,
    VMP_DEV_DIR: dev,
    VMP_CONFIG_WAIT: wait,
    VMP_CONFIG_MOUNT: path.join(root, 'run/vm-provisioner/config'),
  });
  return { ...result, sysBlock: sys };
}

describeWith(allOf(probeE2fsprogs(), probeRoot()), 'config disk loader on a scratch root')(
  'guest loader vmp-apply-config',
  () => {
    test('installs every file with its owner and mode, enables the app units, sets password and hostname', async () => {
      const image = path.join(tmp, 'loader.img');
      await buildConfigDisk(files(), image);
      const root = fakeRoot(path.join(tmp, 'root-ok'));
      // A unit of an earlier config: removed, with its enablement link.
      const userUnits = path.join(root, 'etc/systemd/user');
      const wants = path.join(userUnits, 'graphical-session.target.wants');
      fs.mkdirSync(wants, { recursive: true });
      fs.writeFileSync(path.join(userUnits, 'vm-app-old.service'), '[Service]\nExecStart=/bin/true\n');
      fs.symlinkSync('/etc/systemd/user/vm-app-old.service', path.join(wants, 'vm-app-old.service'));
      fs.writeFileSync(path.join(userUnits, 'vm-guest-agent.service'), 'image-owned\n');

      const r = applyConfig(root, image);
      expect(r.out).toBe("vmp-apply-config: applied the config of VM 'office-vm' (2 app unit(s))\n");
      expect(r.status).toBe(0);

      const byPath = new Map(files().map((f) => [f.path, f.content]));
      const expectFile = (guestPath: string, content: string, mode: number, uid: number): void => {
        const file = path.join(root, guestPath);
        expect(fs.readFileSync(file, 'utf8')).toBe(content);
        const stat = fs.lstatSync(file);
        expect([stat.mode & 0o7777, stat.uid, stat.gid]).toEqual([mode, uid, uid]);
      };
      expectFile('etc/vm-provisioner/agent.conf', byPath.get('agent.conf')!, 0o644, 0);
      expectFile('etc/vm-provisioner/agent.secret', FAKE_SECRET, 0o600, 1000);
      expectFile('etc/i3/config', byPath.get('i3/config')!, 0o644, 0);
      expectFile(
        'etc/lightdm/lightdm.conf.d/50-vm-provisioner.conf',
        byPath.get('lightdm/50-vm-provisioner.conf')!,
        0o644,
        0,
      );
      for (const unit of ['vm-app-xterm.service', 'vm-app-xterm-2.service']) {
        expectFile(`etc/systemd/user/${unit}`, byPath.get(`units/${unit}`)!, 0o644, 0);
        expect(fs.readlinkSync(path.join(wants, unit))).toBe(`/etc/systemd/user/${unit}`);
      }
      expect(fs.readdirSync(wants).sort()).toEqual(['vm-app-xterm-2.service', 'vm-app-xterm.service']);
      expect(fs.existsSync(path.join(userUnits, 'vm-app-old.service'))).toBe(false);
      expect(fs.readFileSync(path.join(userUnits, 'vm-guest-agent.service'), 'utf8')).toBe('image-owned\n');
      const shadow = fs.readFileSync(path.join(root, 'etc/shadow'), 'utf8');
      expect(shadow).toContain(`\nuser:${FAKE_HASH}:`);
      expect(shadow).toMatch(/^root:\*:/);
      expect(fs.readFileSync(path.join(root, 'etc/hostname'), 'utf8')).toBe('office-vm\n');
      expect(fs.readFileSync(path.join(root, 'etc/hosts'), 'utf8')).toBe(
        '127.0.0.1\tlocalhost\n127.0.1.1\toffice-vm\n',
      );
      // Unmounted again, so the disk's secrets are not left readable.
      expect(fs.readdirSync(path.join(root, 'run/vm-provisioner/config'))).toEqual([]);
      expect(fs.statSync(path.join(root, 'run/vm-provisioner')).mode & 0o777).toBe(0o700);

      // Applying again (every boot does) gives the same result.
      expect(applyConfig(root, image).status).toBe(0);
      expect(fs.readdirSync(wants).sort()).toEqual(['vm-app-xterm-2.service', 'vm-app-xterm.service']);
      expect(fs.readFileSync(path.join(root, 'etc/hosts'), 'utf8')).toBe(
        '127.0.0.1\tlocalhost\n127.0.1.1\toffice-vm\n',
      );
    });

    test('lists the pending Flatpaks for the first-boot installer, and removes a stale list', async () => {
      const image = path.join(tmp, 'flatpaks.img');
      const pending = ['org.mozilla.firefox', 'org.gnome.Calculator'];
      await buildConfigDisk(
        configDiskFiles({
          spec,
          credentials: { passwordHash: FAKE_HASH, agentSecret: FAKE_SECRET },
          proxyHost: '10.0.2.2',
          proxyPort: 9999,
          pendingFlatpaks: pending,
        }),
        image,
      );
      const root = fakeRoot(path.join(tmp, 'root-flatpaks'));
      expect(applyConfig(root, image).status).toBe(0);
      const list = path.join(root, 'etc/vm-provisioner/flatpaks');
      expect(fs.readFileSync(list, 'utf8')).toBe('org.mozilla.firefox\norg.gnome.Calculator\n');
      expect(fs.statSync(list).mode & 0o777).toBe(0o644);
      // A later config without Flatpaks leaves no list behind.
      const plain = path.join(tmp, 'no-flatpaks.img');
      await buildConfigDisk(files(), plain);
      expect(applyConfig(root, plain).status).toBe(0);
      expect(fs.existsSync(list)).toBe(false);
    });

    test('formats a blank private volume once, seeded from the image /home, and mounts it at /home', async () => {
      const image = path.join(tmp, 'private-cfg.img');
      await buildConfigDisk(files(), image);
      const root = fakeRoot(path.join(tmp, 'root-private'));
      const home = path.join(root, 'home');
      fs.mkdirSync(path.join(home, 'user'), { recursive: true });
      fs.writeFileSync(path.join(home, 'user', '.bashrc'), 'from the template\n');
      fs.chownSync(path.join(home, 'user'), 1000, 1000);
      const volume = path.join(tmp, 'private.raw');
      fs.writeFileSync(volume, '');
      fs.truncateSync(volume, 64 * 1024 * 1024);
      const apply = () =>
        run('bash', [LOADER], {
          VMP_ROOT: root,
          VMP_CONFIG_DEVICE: image,
          VMP_CONFIG_MOUNT: path.join(root, 'run/vm-provisioner/config'),
          VMP_PRIVATE_DEVICE: volume,
        });
      try {
        const first = apply();
        expect(first.stderr).toBe('');
        expect(first.status).toBe(0);
        expect(first.stdout).toContain('formatted the private volume');
        expect(run('findmnt', ['-n', '-o', 'FSTYPE', home]).stdout.trim()).toBe('ext4');
        expect(fs.readFileSync(path.join(home, 'user', '.bashrc'), 'utf8')).toBe('from the template\n');
        expect(fs.statSync(path.join(home, 'user')).uid).toBe(1000);
        fs.writeFileSync(path.join(home, 'user', 'kept'), 'mine\n');
        expect(run('umount', [home]).status).toBe(0);
        // The next boot mounts what is there: no second format.
        const second = apply();
        expect(second.status).toBe(0);
        expect(second.stdout).not.toContain('formatted');
        expect(fs.readFileSync(path.join(home, 'user', 'kept'), 'utf8')).toBe('mine\n');
      } finally {
        run('umount', [home]);
      }
    });

    test('finds the disk by its virtio serial among other block devices', async () => {
      const image = path.join(tmp, 'by-serial.img');
      await buildConfigDisk(files(), image);
      const other = path.join(tmp, 'not-config.img');
      fs.writeFileSync(other, 'not a file system');
      const root = fakeRoot(path.join(tmp, 'root-serial'));
      // vda is not a file system: picking it instead of vdb would fail the mount.
      const r = applyConfigBySerial(root, { vda: ['root-disk', other], vdb: ['vmp-config', image] });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(fs.readFileSync(path.join(root, 'etc/hostname'), 'utf8')).toBe('office-vm\n');
    });

    test('without a disk of that serial it fails at once, naming the serial, and changes nothing', () => {
      const root = fakeRoot(path.join(tmp, 'root-no-disk'));
      const before = fs.readdirSync(path.join(root, 'etc')).sort();
      const started = Date.now();
      const r = applyConfigBySerial(root, { vda: ['root-disk', path.join(tmp, 'absent.img')] });
      expect(r.status).toBe(1);
      expect(r.stderr).toBe(
        `vmp-apply-config: no config disk: no block device in ${r.sysBlock} has the serial 'vmp-config'\n`,
      );
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(fs.readdirSync(path.join(root, 'etc')).sort()).toEqual(before);
      expect(fs.existsSync(path.join(root, 'run/vm-provisioner'))).toBe(false);
    });

    test.each([
      [
        'a wrong format marker',
        { format: 'vmp-config 2\n' },
        /unsupported config disk format 'vmp-config 2'/,
      ],
      [
        'a unit not named vm-app-*',
        { 'units/display-manager.service': '[Unit]\n' },
        /unit name .* is not allowed/,
      ],
      ['a bad hostname', { hostname: 'Bad_Name\n' }, /not a valid hostname label/],
      ['a plaintext password', { 'password.sha512': 'hunter2\n' }, /not a SHA-512 crypt hash/],
      ['an agent.conf with a shell line', { 'agent.conf': 'VMP_VM_NAME=$(reboot)\n' }, /malformed line/],
    ] as Array<[string, Record<string, string>, RegExp]>)(
      'a disk with %s is refused and the root is left unchanged',
      async (what, changes, message) => {
        const list = files().filter((f) => !(f.path in changes));
        for (const [p, content] of Object.entries(changes)) list.push({ path: p, mode: 0o644, content });
        const image = path.join(tmp, `bad-${what.replace(/\W+/g, '-')}.img`);
        await buildConfigDisk(list, image);
        const root = fakeRoot(path.join(tmp, `root-${what.replace(/\W+/g, '-')}`));
        const before = fs.readdirSync(path.join(root, 'etc')).sort();
        const r = applyConfig(root, image);
        expect(r.status).toBe(1);
        expect(r.stderr).toMatch(message);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(fs.readdirSync(path.join(root, 'etc')).sort()).toEqual(before);
        expect(fs.readFileSync(path.join(root, 'etc/shadow'), 'utf8')).toContain('\nuser:!:');
        expect(fs.readdirSync(path.join(root, 'run/vm-provisioner/config'))).toEqual([]);
      },
    );
  },
);

describeWith(probeCommand('shellcheck', ['--version']), 'shellcheck on the loader')('loader script', () => {
  test('passes shellcheck and bash -n', () => {
    const sc = run('shellcheck', ['--shell=bash', '--severity=style', LOADER]);
    expect(sc.out).toBe('');
    expect(sc.status).toBe(0);
    expect(run('bash', ['-n', LOADER]).status).toBe(0);
    expect(fs.statSync(LOADER).mode & 0o777).toBe(0o755);
  });
});

/**
 * `systemd-analyze verify` on the system unit. It checks that ExecStart
 * exists, so the verified copy points at the loader in this tree; the real
 * path is asserted separately. Any output counts as a failure.
 */
describeWith(probeCommand('systemd-analyze', ['--version']), 'systemd-analyze verify on the config unit')(
  'vm-provisioner-config.service',
  () => {
    function verify(content: string): { ok: boolean; out: string } {
      const dir = fs.mkdtempSync(path.join(tmp, 'unit-'));
      const file = path.join(dir, 'vm-provisioner-config.service');
      fs.writeFileSync(file, content);
      const r = run('systemd-analyze', ['--man=no', 'verify', file]);
      return { ok: r.status === 0 && r.out.trim() === '', out: r.out };
    }
    const unit = (): string => fs.readFileSync(UNIT, 'utf8');
    const local = (text: string): string => text.replace(/^ExecStart=.*$/m, `ExecStart=${LOADER}`);

    test('verifies cleanly, runs the installed loader once, early, before the display manager', () => {
      expect(unit()).toMatch(/^ExecStart=\/usr\/local\/lib\/vm-provisioner\/vmp-apply-config$/m);
      expect(unit()).toMatch(/^Type=oneshot$/m);
      expect(unit()).toMatch(/^RemainAfterExit=yes$/m);
      expect(unit()).toMatch(
        /^Before=display-manager\.service systemd-user-sessions\.service shutdown\.target$/m,
      );
      // Early boot: only the local file systems, no wait for udev or basic.target.
      expect(unit()).toMatch(/^DefaultDependencies=no$/m);
      expect(unit()).toMatch(/^After=local-fs\.target$/m);
      expect(unit()).not.toMatch(/^(Requires|After)=.*\.device/m);
      expect(unit()).toMatch(/^WantedBy=multi-user\.target$/m);
      const r = verify(local(unit()));
      expect(r.out).toBe('');
      expect(r.ok).toBe(true);
    });

    test('a broken copy fails the same check', () => {
      expect(verify(local(unit()).replace('Type=oneshot', 'Type=sometimes')).ok).toBe(false);
    });
  },
);
