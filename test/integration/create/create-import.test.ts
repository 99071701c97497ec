import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openHypervisor } from '../../../src/libvirt/index.js';
import { describeDomain } from '../../../src/libvirt/inspect.js';
import { keyringCredentialStores } from '../../../src/secrets/credentials.js';
import { verifySha512Crypt } from '../../../src/secrets/sha512crypt.js';
import { createFromDisk } from '../../../src/service/lifecycle.js';
import type { Hypervisor } from '../../../src/service/ports.js';
import { AGENT_SECRET_SERVICE, PASSWORD_SERVICE } from '../../../src/service/ports.js';
import { FileConfigStore } from '../../../src/spec/store.js';
import { CancelledError, InputError } from '../../../src/util/errors.js';
import { runCli } from '../../support/cli.js';
import { secretToolLookup } from '../../support/keyring-control.js';
import { allDomainNames, qemuImgCreate, removeDomain, virsh } from '../../support/libvirt-fixture.js';
import { assertNoSecretsInTree } from '../../support/no-secrets.js';
import { describeWith, LIBVIRT_TEST_URI, probeLibvirt, probeSecretService } from '../../support/services.js';
import { testSpec } from '../../support/spec-fixture.js';
import { allOf } from '../../support/tools.js';

import { jest } from '@jest/globals';

jest.setTimeout(300_000);

/**
 * `create --import` with direct kernel boot, end to end on the host side: the
 * built CLI against the real libvirtd and the real Secret Service. The
 * domain is only defined, never started (a teammate's e2e test boots a real
 * guest); a few bytes stand in for the kernel and initrd.
 */

const SBIN_PATH = `${process.env.PATH ?? ''}:/usr/sbin:/sbin`;
const debugfsCat = (image: string, file: string): string =>
  execFileSync('debugfs', ['-R', `cat /${file}`, image], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
    env: { ...process.env, PATH: SBIN_PATH },
  });

describeWith(allOf(probeLibvirt(), probeSecretService()), 'libvirt and a Secret Service')(
  'create --import with a config disk and direct kernel boot',
  () => {
    let root: string;
    let env: NodeJS.ProcessEnv;
    const names: string[] = [];
    const stores = keyringCredentialStores();
    const dirs = {
      get vms(): string {
        return path.join(root, 'vms');
      },
      get config(): string {
        return path.join(root, 'config', 'vm-provisioner');
      },
      get src(): string {
        return path.join(root, 'src');
      },
    };

    beforeAll(() => {
      root = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-import-'));
      // QEMU runs as libvirt-qemu under qemu:///system: it must be able to traverse to the files.
      fs.chmodSync(root, 0o711);
      for (const dir of ['home', 'tmp', 'config', 'src']) fs.mkdirSync(path.join(root, dir), { mode: 0o700 });
      qemuImgCreate(path.join(dirs.src, 'guest.qcow2'));
      fs.writeFileSync(path.join(dirs.src, 'vmlinuz'), 'vmp-t-import stand-in kernel\n');
      fs.writeFileSync(path.join(dirs.src, 'initrd.img'), 'vmp-t-import stand-in initrd\n');
      env = {
        PATH: process.env.PATH,
        HOME: path.join(root, 'home'),
        XDG_CONFIG_HOME: path.join(root, 'config'),
        TMPDIR: path.join(root, 'tmp'),
        DBUS_SESSION_BUS_ADDRESS: process.env.DBUS_SESSION_BUS_ADDRESS,
        FORCE_COLOR: '0',
      };
    });

    afterAll(async () => {
      for (const name of names) {
        removeDomain(name);
        await stores.passwords.delete(name).catch(() => undefined);
        await stores.agentSecrets.delete(name).catch(() => undefined);
      }
      if (root) fs.rmSync(root, { recursive: true, force: true });
    });

    function newName(kind: string): string {
      const name = `vmp-t-import-${kind}-${randomBytes(3).toString('hex')}`;
      names.push(name);
      return name;
    }

    const importArgs = (name: string, extra: string[] = []): string[] => [
      'create',
      '--import',
      path.join(dirs.src, 'guest.qcow2'),
      '--kernel',
      path.join(dirs.src, 'vmlinuz'),
      '--initrd',
      path.join(dirs.src, 'initrd.img'),
      '--kernel-args',
      'root=/dev/vda rw console=ttyS0',
      '--virt-type',
      'qemu',
      '--network',
      'user',
      '--autostart-app',
      'xterm',
      '--name',
      name,
      '--memory',
      '2048',
      '--vm-dir',
      dirs.vms,
      '--connect',
      LIBVIRT_TEST_URI,
      '--yes',
      ...extra,
    ];

    /** Nothing of VM `name` anywhere: domain, files, config, keyring. */
    function expectNothingLeft(name: string): void {
      expect(allDomainNames()).not.toContain(name);
      const left = fs.existsSync(dirs.vms) ? fs.readdirSync(dirs.vms).filter((f) => f.startsWith(name)) : [];
      expect(left).toEqual([]);
      expect(fs.existsSync(path.join(dirs.config, `${name}.toml`))).toBe(false);
      expect(secretToolLookup(PASSWORD_SERVICE, name)).toBeNull();
      expect(secretToolLookup(AGENT_SECRET_SERVICE, name)).toBeNull();
    }

    test('defines the VM with its config disk and kernel, stores its secrets; destroy removes everything', async () => {
      const name = newName('ok');
      const created = await runCli(importArgs(name), env, 240_000);
      expect(created.stderr).toBe('');
      expect(created.code).toBe(0);
      expect(created.stdout).toContain(`Created VM "${name}"`);

      const own = (suffix: string): string => path.join(dirs.vms, `${name}${suffix}`);
      const xml = virsh('dumpxml', '--inactive', name);
      const description = describeDomain(xml);
      expect(description).toMatchObject({ name, ours: true, phase: 'installed', apps: ['xterm'] });
      expect(description.disks).toEqual([
        { file: own('.qcow2'), readonly: false },
        { file: own('-config.img'), readonly: true, serial: 'vmp-config' },
      ]);
      expect(description.files).toEqual([own('-vmlinuz'), own('-initrd.img')]);
      expect(xml).toContain(`<kernel>${own('-vmlinuz')}</kernel>`);
      expect(xml).toContain(`<initrd>${own('-initrd.img')}</initrd>`);
      expect(xml).toContain('<cmdline>root=/dev/vda rw console=ttyS0</cmdline>');
      expect(xml).toContain('<on_reboot>restart</on_reboot>');
      expect(fs.readFileSync(own('-vmlinuz'), 'utf8')).toBe('vmp-t-import stand-in kernel\n');
      expect(fs.readFileSync(own('-initrd.img'), 'utf8')).toBe('vmp-t-import stand-in initrd\n');
      expect(fs.statSync(own('-config.img')).mode & 0o777).toBe(0o600);
      expect(fs.existsSync(path.join(dirs.config, `${name}.toml`))).toBe(true);

      // The keyring holds both secrets; the config disk carries the agent secret and only the password's hash.
      const password = secretToolLookup(PASSWORD_SERVICE, name);
      const agentSecret = secretToolLookup(AGENT_SECRET_SERVICE, name);
      expect(password).not.toBeNull();
      expect(agentSecret).not.toBeNull();
      const image = own('-config.img');
      expect(debugfsCat(image, 'agent.secret')).toBe(agentSecret);
      expect(verifySha512Crypt(password!, debugfsCat(image, 'password.sha512').trim())).toBe(true);
      expect(debugfsCat(image, 'agent.conf')).toContain('VMP_PROXY_HOST=10.0.2.2\nVMP_PROXY_PORT=9999\n');
      expect(debugfsCat(image, 'hostname')).toBe(`${name}\n`);
      expect(debugfsCat(image, 'units/vm-app-xterm.service')).toContain('ExecStart=xterm\n');
      assertNoSecretsInTree(dirs.vms, [password!]);
      assertNoSecretsInTree(path.join(root, 'config'), [password!, agentSecret!]);
      expect(fs.readdirSync(path.join(root, 'tmp'))).toEqual([]);

      const destroyed = await runCli(['destroy', name, '--yes', '--connect', LIBVIRT_TEST_URI], env, 120_000);
      expect(destroyed.stderr).toBe('');
      expect(destroyed.code).toBe(0);
      expectNothingLeft(name);
      expect(fs.readdirSync(dirs.vms)).toEqual([]);
    });

    const setFlag =
      (flag: string, value: string) =>
      (args: string[]): string[] =>
        args.map((a, i) => (args[i - 1] === flag ? value : a));
    const dropFlag =
      (flag: string) =>
      (args: string[]): string[] =>
        args.filter((a, i) => a !== flag && args[i - 1] !== flag);

    test.each([
      ['a --kernel-args with quotes', setFlag('--kernel-args', 'root="/dev/vda"'), /invalid --kernel-args/],
      [
        'a --kernel that does not exist',
        setFlag('--kernel', '/nonexistent/vmlinuz'),
        /--kernel file \/nonexistent\/vmlinuz is not an existing file/,
      ],
      ['--kernel without --initrd', dropFlag('--initrd'), /--kernel and --initrd go together/],
    ] as Array<[string, (args: string[]) => string[], RegExp]>)(
      '%s: one-line error, exit 2, nothing made',
      async (_what, change, message) => {
        const name = newName('bad');
        const r = await runCli(change(importArgs(name)), env, 120_000);
        expect(r.stderr).toMatch(message);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.code).toBe(2);
        expect(r.stdout).toBe('');
        expectNothingLeft(name);
      },
    );

    describe('a failure after things were made rolls all of them back', () => {
      let hv: Hypervisor;
      beforeAll(async () => {
        hv = await openHypervisor({ uri: LIBVIRT_TEST_URI });
      });
      afterAll(async () => {
        await hv?.close();
      });
      const xtermSpec = (name: string) =>
        testSpec({
          name,
          vmDir: dirs.vms,
          memoryMb: 2048,
          virtType: 'qemu',
          networkMode: 'user',
          flatpakPackages: [],
          autoLaunchApps: ['xterm'],
        });

      test('an initrd that vanished after validation: keyring, config disk, disk and kernel copies removed', async () => {
        const name = newName('late');
        const spec = xtermSpec(name);
        const store = new FileConfigStore(dirs.config);
        const promise = createFromDisk({ hypervisor: hv, configStore: store, credentials: stores }, spec, {
          importDisk: path.join(dirs.src, 'guest.qcow2'),
          boot: {
            kernel: path.join(dirs.src, 'vmlinuz'),
            initrd: path.join(dirs.src, 'vanished-initrd.img'),
            kernelArgs: 'root=/dev/vda',
          },
          version: '0.0.0-test',
        });
        await expect(promise).rejects.toThrow(InputError);
        await expect(promise).rejects.toThrow(/--initrd file .*vanished-initrd\.img cannot be read: ENOENT/);
        expectNothingLeft(name);
      });

      test('Ctrl+C while the domain is being defined: the domain and every file and keyring entry are removed', async () => {
        const name = newName('sigint');
        const spec = xtermSpec(name);
        const store = new FileConfigStore(dirs.config);
        const controller = new AbortController();
        // The real libvirtd defines the domain; the interrupt lands while it does, as a Ctrl+C would.
        const interrupted = new Proxy(hv, {
          get(target, prop) {
            if (prop === 'define') {
              return async (xml: string) => {
                controller.abort();
                await target.define(xml);
              };
            }
            const value: unknown = Reflect.get(target, prop, target);
            return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
          },
        });
        const promise = createFromDisk(
          { hypervisor: interrupted, configStore: store, credentials: stores },
          spec,
          {
            importDisk: path.join(dirs.src, 'guest.qcow2'),
            boot: {
              kernel: path.join(dirs.src, 'vmlinuz'),
              initrd: path.join(dirs.src, 'initrd.img'),
              kernelArgs: 'root=/dev/vda',
            },
            version: '0.0.0-test',
            signal: controller.signal,
          },
        );
        await expect(promise).rejects.toThrow(CancelledError);
        await expect(promise).rejects.toThrow(/was interrupted/);
        expectNothingLeft(name);
      });

      test('a domain name libvirt already has: refused before anything is made', async () => {
        const name = newName('taken');
        const spec = testSpec({ name, vmDir: dirs.vms, memoryMb: 2048, virtType: 'qemu' });
        const store = new FileConfigStore(dirs.config);
        fs.mkdirSync(dirs.vms, { recursive: true, mode: 0o711 });
        const disk = path.join(dirs.vms, `${name}-other.qcow2`);
        qemuImgCreate(disk);
        await createFromDisk({ hypervisor: hv, configStore: store, credentials: stores }, spec, {
          importDisk: path.join(dirs.src, 'guest.qcow2'),
          version: '0.0.0-test',
        });
        await expect(
          createFromDisk({ hypervisor: hv, configStore: store, credentials: stores }, spec, {
            importDisk: path.join(dirs.src, 'guest.qcow2'),
            version: '0.0.0-test',
          }),
        ).rejects.toThrow(/already exists/);
        // The first VM is untouched by the refused second one.
        expect(describeDomain(virsh('dumpxml', '--inactive', name)).ours).toBe(true);
        expect(secretToolLookup(PASSWORD_SERVICE, name)).not.toBeNull();
        fs.rmSync(disk);
      });
    });
  },
);
