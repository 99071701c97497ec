import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeDomain } from '../../../src/libvirt/inspect.js';
import { openHypervisor } from '../../../src/libvirt/index.js';
import { keyringCredentialStores } from '../../../src/secrets/credentials.js';
import type { Hypervisor } from '../../../src/service/ports.js';
import { setPrefs } from '../../../src/service/prefs.js';
import { ensureWakePipe } from '../../../src/service/state.js';
import { FileConfigStore } from '../../../src/spec/store.js';
import type { VmSpec } from '../../../src/spec/types.js';
import { runCli } from '../../support/cli.js';
import { qemuImgCreate, removeDomain, removePoolsUnder, virsh } from '../../support/libvirt-fixture.js';
import { describeWith, LIBVIRT_TEST_URI, probeLibvirt, probeSecretService } from '../../support/services.js';
import { allOf } from '../../support/tools.js';

import { jest } from '@jest/globals';

jest.setTimeout(300_000);

/**
 * `get` and `set` with the built CLI against the real libvirtd and Secret
 * Service, on app VMs made on a template imported from a small blank qcow2
 * (never booted into an OS). After every change the persistent definition
 * (`virsh dumpxml --inactive`), the TOML config and the config disk must
 * say the same; bad input and refused changes must leave all three as they
 * were, and so must a failure of the libvirt step or of the config write.
 */

/** What the definition libvirt keeps says, read with virsh, not with the code under test. */
function definitionOf(name: string): { memoryKiB: number; vcpus: number; nic: string; apps: string[] } {
  const xml = virsh('dumpxml', name, '--inactive');
  const memory = /<memory unit='KiB'>(\d+)<\/memory>/.exec(xml);
  const vcpu = /<vcpu placement='static'>(\d+)<\/vcpu>/.exec(xml);
  const nic = /<interface type='(\w+)'>([\s\S]*?)<\/interface>/.exec(xml);
  const network = nic ? /<source network='(\w+)'/.exec(nic[2]!)?.[1] : undefined;
  return {
    memoryKiB: Number(memory?.[1]),
    vcpus: Number(vcpu?.[1]),
    nic: nic ? (nic[1] === 'network' ? `network:${network}` : nic[1]!) : 'none',
    apps: describeDomain(xml).apps,
  };
}

/** The unit files on the VM's config disk, read with debugfs (e2fsprogs). */
function configDiskUnits(image: string): string[] {
  const out = execFileSync('/usr/sbin/debugfs', ['-R', 'ls -p /units', image], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return out
    .split('\n')
    .map((l) => l.split('/')[5] ?? '')
    .filter((n) => n.startsWith('vm-app-'))
    .sort();
}

function configDiskFile(image: string, file: string): string {
  return execFileSync('/usr/sbin/debugfs', ['-R', `cat /${file}`, image], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
}

describeWith(allOf(probeLibvirt(), probeSecretService()), 'libvirt and a Secret Service')(
  'get and set',
  () => {
    let root: string;
    let env: NodeJS.ProcessEnv;
    const names: string[] = [];
    const stores = keyringCredentialStores();
    const at = (...parts: string[]): string => path.join(root, ...parts);
    const vms = (): string => at('vms');
    const cli = (args: string[], timeoutMs = 120_000) =>
      runCli([...args, '--connect', LIBVIRT_TEST_URI], env, timeoutMs);
    const tomlOf = (name: string): string =>
      fs.readFileSync(at('config', 'vm-provisioner', `${name}.toml`), 'utf8');
    const configDisk = (name: string): string => path.join(vms(), `${name}-config.img`);
    const template = `vmp-t-prefs-tmpl-${randomBytes(3).toString('hex')}`;
    const vm = `vmp-t-prefs-vm-${randomBytes(3).toString('hex')}`;

    /** Config and definition agree on every key both hold. */
    function expectAgreement(name: string): void {
      const toml = tomlOf(name);
      const d = definitionOf(name);
      expect(toml).toContain(`memory_mb = ${d.memoryKiB / 1024}\n`);
      expect(toml).toContain(`vcpus = ${d.vcpus}\n`);
      const mode = /network_mode = "(\w+)"/.exec(toml)?.[1];
      expect(d.nic).toBe(mode === 'default' ? 'network:default' : mode);
    }

    function snapshotOf(name: string): { toml: string; xml: string; disk?: string } {
      const disk = fs.existsSync(configDisk(name))
        ? fs.readFileSync(configDisk(name)).toString('base64')
        : undefined;
      return { toml: tomlOf(name), xml: virsh('dumpxml', name, '--inactive'), ...(disk ? { disk } : {}) };
    }

    beforeAll(async () => {
      root = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-prefs-'));
      fs.chmodSync(root, 0o711);
      for (const dir of ['home', 'tmp', 'config', 'state', 'src']) fs.mkdirSync(at(dir), { mode: 0o700 });
      fs.mkdirSync(vms(), { mode: 0o711 });
      qemuImgCreate(at('src', 'base.qcow2'), '64M');
      env = {
        PATH: process.env.PATH,
        HOME: at('home'),
        XDG_CONFIG_HOME: at('config'),
        XDG_STATE_HOME: at('state'),
        TMPDIR: at('tmp'),
        DBUS_SESSION_BUS_ADDRESS: process.env.DBUS_SESSION_BUS_ADDRESS,
        NO_COLOR: '1',
      };
      names.push(template);
      const imported = await cli(
        [
          'template',
          'import',
          template,
          at('src', 'base.qcow2'),
          '--virt-type',
          'qemu',
          '--network',
          'user',
          '--memory',
          '512',
          '--vm-dir',
          vms(),
        ],
        300_000,
      );
      expect({ code: imported.code, stderr: imported.stderr }).toEqual({ code: 0, stderr: '' });
      names.push(vm);
      const made = await cli([
        'create',
        '--template',
        template,
        '--name',
        vm,
        '--autostart-app',
        'xterm',
        '--memory',
        '384',
        '--yes',
      ]);
      expect({ code: made.code, stderr: made.stderr }).toEqual({ code: 0, stderr: '' });
    });

    afterAll(async () => {
      for (const name of [...names].reverse()) {
        removeDomain(name);
        await stores.passwords.delete(name).catch(() => undefined);
        await stores.agentSecrets.delete(name).catch(() => undefined);
      }
      if (root) {
        removePoolsUnder(root);
        fs.rmSync(root, { recursive: true, force: true });
      }
    });

    test('get shows every key, one key, and JSON', async () => {
      const all = await cli(['get', vm]);
      expect({ code: all.code, stderr: all.stderr }).toEqual({ code: 0, stderr: '' });
      expect(all.stdout).toMatch(/^KEY\s+VALUE$/m);
      expect(all.stdout).toMatch(/^memory_mb\s+384$/m);
      expect(all.stdout).toMatch(/^auto_launch_apps\s+\["xterm"\]$/m);
      expect(all.stdout).toMatch(/^label\s+gray$/m);
      expect(all.stdout).toMatch(/^network_mode\s+user$/m);
      expect(all.stdout).toMatch(/^on_stop\s+shutdown$/m);
      const one = await cli(['get', vm, 'vcpus']);
      expect(one.stdout).toBe('2\n');
      const json = JSON.parse((await cli(['get', vm, '--json'])).stdout) as Record<string, unknown>;
      expect(json).toMatchObject({
        name: vm,
        role: 'vm',
        memory_mb: 384,
        auto_launch_apps: ['xterm'],
        display: 'spice',
      });
      expect(JSON.parse((await cli(['get', vm, 'auto_launch_apps', '--json'])).stdout)).toEqual(['xterm']);
      const tmpl = JSON.parse((await cli(['get', template, '--json'])).stdout) as Record<string, unknown>;
      expect(tmpl).toMatchObject({ role: 'template', memory_mb: 512 });
    });

    test('memory_mb, vcpus and network_mode reach the definition; config and definition agree after each', async () => {
      for (const [key, value] of [
        ['memory_mb', '768'],
        ['vcpus', '1'],
        ['network_mode', 'none'],
        ['network_mode', 'default'],
        ['network_mode', 'user'],
        ['memory_mb', '640'],
      ] as const) {
        const set = await cli(['set', vm, key, value]);
        expect({ code: set.code, stderr: set.stderr }).toEqual({ code: 0, stderr: '' });
        expect(set.stdout).toContain(`${vm}: ${key} set to ${value}`);
        expectAgreement(vm);
        expect((await cli(['get', vm, key])).stdout).toBe(`${value}\n`);
      }
      const d = definitionOf(vm);
      expect(d).toMatchObject({ memoryKiB: 640 * 1024, vcpus: 1, nic: 'user' });
      // Network mode moves the agent's proxy address on the config disk with it.
      expect(configDiskFile(configDisk(vm), 'agent.conf')).toContain('VMP_PROXY_HOST=10.0.2.2');
      const again = await cli(['set', vm, 'memory_mb', '640']);
      expect(again.stdout).toBe(`${vm}: memory_mb is already 640; no changes\n`);
    });

    test('network_mode moves the proxy address on the config disk and keeps the MAC address', async () => {
      const mac = (): string | undefined =>
        /<mac address='([^']+)'/.exec(virsh('dumpxml', vm, '--inactive'))?.[1];
      const macBefore = mac();
      expect(macBefore).toMatch(/^52:54:00:/);
      expect((await cli(['set', vm, 'network_mode', 'default'])).code).toBe(0);
      expect(configDiskFile(configDisk(vm), 'agent.conf')).toContain('VMP_PROXY_HOST=192.168.122.1');
      expect((await cli(['set', vm, 'network_mode', 'user'])).code).toBe(0);
      expect(configDiskFile(configDisk(vm), 'agent.conf')).toContain('VMP_PROXY_HOST=10.0.2.2');
      // The guest's interface name and leases follow the MAC address.
      expect(mac()).toBe(macBefore);
    });

    test('auto_launch_apps: a list of one argument per entry reaches the metadata and the config disk', async () => {
      expect(configDiskUnits(configDisk(vm))).toEqual(['vm-app-xterm.service']);
      const set = await cli(['set', vm, 'auto_launch_apps', 'xterm -fa Mono', '/usr/bin/xclock']);
      expect({ code: set.code, stderr: set.stderr }).toEqual({ code: 0, stderr: '' });
      expect(set.stdout).toContain(
        `auto_launch_apps set to ["xterm -fa Mono", "/usr/bin/xclock"] (was ["xterm"])`,
      );
      expect(tomlOf(vm)).toContain('auto_launch_apps = ["xterm -fa Mono", "/usr/bin/xclock"]');
      expect(definitionOf(vm).apps).toEqual(['xterm -fa Mono', '/usr/bin/xclock']);
      expect(configDiskUnits(configDisk(vm))).toEqual(['vm-app-xclock.service', 'vm-app-xterm.service']);
      expect(configDiskFile(configDisk(vm), 'units/vm-app-xterm.service')).toContain('xterm -fa Mono');
      expect((await cli(['get', vm, 'auto_launch_apps'])).stdout).toBe('xterm -fa Mono\n/usr/bin/xclock\n');
      // The config disk is still the VM's own: mode 0600, no stray staging or backup file beside it.
      expect(fs.statSync(configDisk(vm)).mode & 0o777).toBe(0o600);
      expect(fs.readdirSync(vms()).filter((f) => f.startsWith('.'))).toEqual([]);
      const none = await cli(['set', vm, 'auto_launch_apps', '']);
      expect(none.code).toBe(0);
      expect(tomlOf(vm)).toContain('auto_launch_apps = []');
      expect(definitionOf(vm).apps).toEqual([]);
      expect(() => configDiskUnits(configDisk(vm))).not.toThrow();
      expect(configDiskUnits(configDisk(vm))).toEqual([]);
      expect((await cli(['set', vm, 'auto_launch_apps', 'xterm'])).code).toBe(0);
    });

    test('label, display and on_stop are kept in the config; list shows them', async () => {
      for (const [key, value] of [
        ['label', 'red'],
        ['display', 'seamless'],
        ['on_stop', 'save'],
      ] as const) {
        const xmlBefore = virsh('dumpxml', vm, '--inactive');
        const set = await cli(['set', vm, key, value]);
        expect({ code: set.code, stderr: set.stderr }).toEqual({ code: 0, stderr: '' });
        expect(tomlOf(vm)).toContain(`${key} = "${value}"`);
        expect(virsh('dumpxml', vm, '--inactive')).toBe(xmlBefore);
        // A label change re-tints the VM's launcher icons at once (docs/launchers.md); other keys leave them.
        expect(set.stdout.includes('launchers:')).toBe(key === 'label');
      }
      const icons = path.join(at('home'), '.local', 'share', 'icons', 'hicolor', 'scalable', 'apps');
      const icon = fs
        .readdirSync(icons)
        .find((f) => f.startsWith(`vm-provisioner-${vm}_`) && f.endsWith('.svg'));
      expect(icon).toBeDefined();
      expect(fs.readFileSync(path.join(icons, icon!), 'utf8')).toContain('#cc0000');
      const listed = JSON.parse((await cli(['list', '--json'])).stdout) as Array<Record<string, unknown>>;
      expect(listed.find((v) => v.name === vm)).toMatchObject({
        label: 'red',
        display: 'seamless',
        onStop: 'save',
      });
    });

    test('bad keys and values: one line naming value and rule, exit 2, nothing changed', async () => {
      const before = snapshotOf(vm);
      const cases: Array<[string[], string]> = [
        [
          ['set', vm, 'colour', 'red'],
          'error: unknown key "colour": use one of memory_mb, vcpus, auto_launch_apps, label, network_mode, display, on_stop',
        ],
        [
          ['set', vm, 'label', 'pink'],
          'error: invalid label "pink": must be one of red, orange, yellow, green, blue, purple, gray, black',
        ],
        [['set', vm, 'memory_mb', '4g'], 'error: invalid memory "4g": must be a whole number of MiB'],
        [
          ['set', vm, 'memory_mb', '100'],
          'error: invalid memory 100 MiB: must be at least 256 MiB (the smallest guest that boots)',
        ],
        [
          ['set', vm, 'vcpus', '100000'],
          'error: invalid vCPU count 100000: must be at most 255, even with --force',
        ],
        [
          ['set', vm, 'network_mode', 'bridge'],
          'error: invalid network mode "bridge": must be one of default, user, none',
        ],
        [
          ['set', vm, 'memory_mb', '512', '1024'],
          'error: memory_mb takes exactly one value, not 2 ("512" "1024")',
        ],
        [
          ['set', vm, 'auto_launch_apps'],
          "error: give the entries of auto_launch_apps, one argument each ('' for none)",
        ],
        [['set', vm, 'auto_launch_apps', 'xterm; rm -rf /'], 'error: invalid auto-launch command'],
        [['set', 'vmp-t-prefs-nosuch', 'label', 'red'], "error: no VM named 'vmp-t-prefs-nosuch'"],
        [['get', vm, 'colour'], 'error: get: unknown key "colour"'],
      ];
      for (const [args, message] of cases) {
        const result = await cli(args);
        expect({ args, code: result.code }).toEqual({ args, code: 2 });
        expect(result.stderr.trim().split('\n')).toHaveLength(1);
        expect(result.stderr.trim().startsWith(message)).toBe(true);
        expect(result.stdout).toBe('');
      }
      expect(snapshotOf(vm)).toEqual(before);
    });

    test('a running (here: paused, never booted) VM: network refused; memory for the next boot, definition and config agree', async () => {
      // As `start` does: QEMU opens the wake channel's FIFOs.
      await ensureWakePipe(describeDomain(virsh('dumpxml', vm, '--inactive')));
      virsh('start', vm, '--paused');
      try {
        const before = snapshotOf(vm);
        const refused = await cli(['set', vm, 'network_mode', 'none']);
        expect(refused.code).toBe(1);
        expect(refused.stderr.trim()).toBe(
          `error: set: network_mode of '${vm}' can change only while it is shut off (it is paused); stop it first`,
        );
        expect(snapshotOf(vm)).toEqual(before);
        const memory = await cli(['set', vm, 'memory_mb', '512']);
        expect({ code: memory.code, stderr: memory.stderr }).toEqual({ code: 0, stderr: '' });
        expect(memory.stdout).toContain('memory_mb takes effect at the next cold boot');
        expectAgreement(vm);
        // The running VM keeps what it booted with; the persistent definition has the new value.
        expect(virsh('dumpxml', vm)).toContain(`<memory unit='KiB'>${640 * 1024}</memory>`);
        expect(definitionOf(vm).memoryKiB).toBe(512 * 1024);
        // The apps: a new config disk in place for the next boot, while QEMU keeps the one it opened.
        const apps = await cli(['set', vm, 'auto_launch_apps', '/usr/bin/xclock']);
        expect({ code: apps.code, stderr: apps.stderr }).toEqual({ code: 0, stderr: '' });
        expect(apps.stdout).toContain(
          `auto_launch_apps reach the guest of '${vm}' at its next cold boot (it is paused)`,
        );
        expect(configDiskUnits(configDisk(vm))).toEqual(['vm-app-xclock.service']);
        expect(definitionOf(vm).apps).toEqual(['/usr/bin/xclock']);
        expect(virsh('domstate', vm).trim()).toBe('paused');
        expect((await cli(['set', vm, 'auto_launch_apps', 'xterm'])).code).toBe(0);
      } finally {
        virsh('destroy', vm);
      }
    });

    test('a definition left apart from the config (a crash between writes): get warns, the next set writes it again', async () => {
      const edited = at('tmp', 'apart.xml');
      fs.writeFileSync(
        edited,
        virsh('dumpxml', vm, '--inactive').replace(
          /<memory unit='KiB'>\d+<\/memory>/,
          "<memory unit='KiB'>307200</memory>",
        ),
      );
      virsh('define', edited);
      const got = await cli(['get', vm, 'memory_mb']);
      expect(got.code).toBe(0);
      expect(got.stdout).toBe('512\n');
      expect(got.stderr).toContain(
        `warning: ${vm}: the config and the libvirt definition disagree (memory_mb: config 512, libvirt definition 300)`,
      );
      const set = await cli(['set', vm, 'label', 'green']);
      expect({ code: set.code, stderr: set.stderr }).toEqual({ code: 0, stderr: '' });
      expect(set.stdout).toContain(
        `the libvirt definition of '${vm}' disagreed with its config and is written again`,
      );
      expectAgreement(vm);
      expect((await cli(['get', vm])).stderr).toBe('');
    });

    test('a template takes memory, vCPUs and network and refuses what only an app VM has', async () => {
      const set = await cli(['set', template, 'memory_mb', '600']);
      expect({ code: set.code, stderr: set.stderr }).toEqual({ code: 0, stderr: '' });
      expectAgreement(template);
      // Its seal is untouched: app VMs still start on it.
      expect(describeDomain(virsh('dumpxml', template, '--inactive')).seal).toBeDefined();
      const refused = await cli(['set', template, 'label', 'red']);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain(`set: label does not apply to template '${template}'`);
    });

    describe('a failing step undoes the earlier ones', () => {
      let hypervisor: Hypervisor;
      const store = (): FileConfigStore => new FileConfigStore(at('config', 'vm-provisioner'));
      beforeAll(async () => {
        hypervisor = await openHypervisor({ uri: LIBVIRT_TEST_URI });
      });
      afterAll(async () => {
        await hypervisor.close();
      });

      test('libvirt refuses the definition: config, definition and config disk stay as they were', async () => {
        const before = snapshotOf(vm);
        const failing: Hypervisor = Object.create(hypervisor, {
          define: {
            value: async () => Promise.reject(new Error('injected: libvirt refused the definition')),
          },
        }) as Hypervisor;
        await expect(
          setPrefs({ hypervisor: failing, configStore: store(), credentials: stores }, vm, {
            memory_mb: 1024,
            auto_launch_apps: ['xclock'],
          }),
        ).rejects.toThrow('injected: libvirt refused the definition');
        expect(snapshotOf(vm)).toEqual(before);
        expect(fs.readdirSync(vms()).filter((f) => f.startsWith('.'))).toEqual([]);
      });

      test('the config cannot be written: the definition and the config disk are put back', async () => {
        const before = snapshotOf(vm);
        const real = store();
        const failing = Object.create(real, {
          write: { value: async (_spec: VmSpec) => Promise.reject(new Error('injected: disk full')) },
        }) as FileConfigStore;
        await expect(
          setPrefs({ hypervisor, configStore: failing, credentials: stores }, vm, {
            vcpus: 2,
            network_mode: 'default',
            auto_launch_apps: ['xclock'],
          }),
        ).rejects.toThrow('injected: disk full');
        expect(snapshotOf(vm)).toEqual(before);
        expectAgreement(vm);
        expect(fs.readdirSync(vms()).filter((f) => f.startsWith('.'))).toEqual([]);
      });
    });
  },
);
