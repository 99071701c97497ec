import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { networksOfDomainXml, networkState } from '../../../src/libvirt/networks.js';
import { keyringCredentialStores } from '../../../src/secrets/credentials.js';
import { checkNetworkForCreate } from '../../../src/service/networks.js';
import { InputError } from '../../../src/util/errors.js';
import { runCli } from '../../support/cli.js';
import { allDomainNames, qemuImgCreate, removeDomain, virsh } from '../../support/libvirt-fixture.js';
import { describeWith, LIBVIRT_TEST_URI, probeLibvirt, probeSecretService } from '../../support/services.js';
import { allOf } from '../../support/tools.js';

import { jest } from '@jest/globals';

jest.setTimeout(300_000);

/**
 * `console` on a stopped VM, `logs`, and the network checks of `create` and
 * `start`, through the built CLI against the real libvirtd. The VM is made by
 * `create --import` (defined, never booted here); the inactive network is a
 * throwaway isolated one this test defines, never the host's `default`.
 */

describeWith(allOf(probeLibvirt(), probeSecretService()), 'libvirt and a Secret Service')(
  'console, logs and network checks',
  () => {
    const tag = randomBytes(3).toString('hex');
    const vm = `vmp-t-logs-${tag}`;
    const network = `vmp-t-net-${tag}`;
    const stores = keyringCredentialStores();
    let root: string;
    let env: NodeJS.ProcessEnv;
    let logDir: string;
    let originalXml: string;

    beforeAll(async () => {
      root = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-logs-'));
      // QEMU runs as libvirt-qemu under qemu:///system: it must be able to traverse to the files.
      fs.chmodSync(root, 0o711);
      for (const dir of ['home', 'config', 'state', 'src'])
        fs.mkdirSync(path.join(root, dir), { mode: 0o700 });
      qemuImgCreate(path.join(root, 'src', 'guest.qcow2'));
      logDir = path.join(root, 'state', 'vm-provisioner', 'logs');
      env = {
        PATH: process.env.PATH,
        HOME: path.join(root, 'home'),
        XDG_CONFIG_HOME: path.join(root, 'config'),
        XDG_STATE_HOME: path.join(root, 'state'),
        DBUS_SESSION_BUS_ADDRESS: process.env.DBUS_SESSION_BUS_ADDRESS,
        FORCE_COLOR: '0',
      };
      // An isolated network (no forward, no address), defined and left inactive.
      const netXml = path.join(root, 'net.xml');
      fs.writeFileSync(netXml, `<network><name>${network}</name><bridge name="vmpt${tag}"/></network>\n`);
      virsh('net-define', netXml);
      const created = await runCli(
        [
          'create',
          '--import',
          path.join(root, 'src', 'guest.qcow2'),
          '--name',
          vm,
          '--virt-type',
          'qemu',
          '--network',
          'user',
          '--memory',
          '256',
          '--vcpus',
          '1',
          '--vm-dir',
          path.join(root, 'vms'),
          '-c',
          LIBVIRT_TEST_URI,
          '--yes',
        ],
        env,
        240_000,
      );
      expect({ code: created.code, stderr: created.stderr }).toEqual({ code: 0, stderr: '' });
      originalXml = virsh('dumpxml', '--inactive', vm);
    });

    afterAll(async () => {
      removeDomain(vm);
      await stores.passwords.delete(vm).catch(() => undefined);
      await stores.agentSecrets.delete(vm).catch(() => undefined);
      try {
        virsh('net-destroy', network);
      } catch {
        // not active
      }
      try {
        virsh('net-undefine', network);
      } catch {
        // not defined
      }
      if (root) fs.rmSync(root, { recursive: true, force: true });
    });

    test("the VM's serial console is logged by virtlogd to its console log, appended across boots", () => {
      expect(originalXml).toMatch(
        new RegExp(`<serial type='pty'>[\\s\\S]*<log file='${logDir}/${vm}-console\\.log' append='on'/>`),
      );
    });

    test('console on a stopped VM: one line saying so and what to run, exit 1', async () => {
      const r = await runCli(['console', vm, '-c', LIBVIRT_TEST_URI], env);
      expect(r.stderr).toBe(
        `error: console: '${vm}' is not running; start it with: vm-provisioner start ${vm}\n`,
      );
      expect(r.code).toBe(1);
    });

    test('logs: no log yet, an unknown VM, and both flags at once are one-line errors', async () => {
      const none = await runCli(['logs', vm], env);
      expect(none.code).toBe(2);
      expect(none.stderr).toBe(
        `error: logs: '${vm}' has no console or install log yet (${logDir}/${vm}-console.log, ${logDir}/${vm}-install.log); ` +
          'it is written from the first start of a VM made by this version\n',
      );
      const unknown = await runCli(['logs', 'vmp-t-logs-nosuch'], env);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toBe(
        "error: logs: no VM named 'vmp-t-logs-nosuch' (and no logs for that name)\n",
      );
      const both = await runCli(['logs', vm, '--install', '--console'], env);
      expect(both.code).toBe(2);
      expect(both.stderr).toBe('error: Arguments install and console are mutually exclusive\n');
    });

    test('logs: the console log by default, else the install log; escape sequences never reach the terminal', async () => {
      fs.mkdirSync(logDir, { recursive: true });
      fs.writeFileSync(path.join(logDir, `${vm}-install.log`), 'anaconda\x1b]0;title\x07 done\r\n');
      const install = await runCli(['logs', vm], env);
      expect({ code: install.code, stdout: install.stdout }).toEqual({ code: 0, stdout: 'anaconda done\n' });
      fs.writeFileSync(path.join(logDir, `${vm}-console.log`), '\x1b[2J\x1b[31mLinux version 6\x1b[0m\n');
      const console = await runCli(['logs', vm], env);
      expect({ code: console.code, stdout: console.stdout }).toEqual({
        code: 0,
        stdout: 'Linux version 6\n',
      });
      const asked = await runCli(['logs', vm, '--install'], env);
      expect(asked.stdout).toBe('anaconda done\n');
    });

    test('start on an inactive network: one line with what to run, and the VM stays off', async () => {
      const withNet = originalXml.replace(
        '</devices>',
        `<interface type='network'><source network='${network}'/><model type='virtio'/></interface></devices>`,
      );
      expect(networksOfDomainXml(withNet)).toEqual([network]);
      const file = path.join(root, 'with-net.xml');
      fs.writeFileSync(file, withNet);
      virsh('define', file);
      try {
        const r = await runCli(['start', vm, '--no-viewer', '-c', LIBVIRT_TEST_URI], env);
        expect(r.stderr).toBe(
          `error: start: '${vm}' uses libvirt network '${network}', which is not active at ${LIBVIRT_TEST_URI}; ` +
            `start it with: virsh -c ${LIBVIRT_TEST_URI} net-start ${network} (virsh net-autostart ${network} keeps it on)\n`,
        );
        expect(r.code).toBe(1);
        expect(virsh('domstate', vm).trim()).toBe('shut off');
      } finally {
        const back = path.join(root, 'original.xml');
        fs.writeFileSync(back, originalXml);
        virsh('define', back);
      }
    });

    test("create's check, on the real libvirtd: inactive, missing and active networks", async () => {
      expect(await networkState(LIBVIRT_TEST_URI, network)).toBe('inactive');
      const refusal = await checkNetworkForCreate(LIBVIRT_TEST_URI, 'default', networkState, network).catch(
        (err: unknown) => err,
      );
      expect(refusal).toBeInstanceOf(InputError);
      expect((refusal as Error).message).toBe(
        `network default: libvirt network '${network}' at ${LIBVIRT_TEST_URI} is not active; ` +
          `start it with: virsh -c ${LIBVIRT_TEST_URI} net-start ${network} (virsh net-autostart ${network} keeps it on), or use --network user`,
      );
      await expect(
        checkNetworkForCreate(LIBVIRT_TEST_URI, 'default', networkState, `${network}-gone`),
      ).rejects.toThrow(
        `network default: libvirt network '${network}-gone' at ${LIBVIRT_TEST_URI} does not exist; ` +
          `define it (virsh -c ${LIBVIRT_TEST_URI} net-define /usr/share/libvirt/networks/${network}-gone.xml, then net-start ${network}-gone), or use --network user`,
      );
      // No libvirt network for user and none: nothing to check.
      await expect(checkNetworkForCreate(LIBVIRT_TEST_URI, 'user')).resolves.toBeUndefined();
      virsh('net-start', network);
      try {
        expect(await networkState(LIBVIRT_TEST_URI, network)).toBe('active');
        await expect(
          checkNetworkForCreate(LIBVIRT_TEST_URI, 'default', networkState, network),
        ).resolves.toBeUndefined();
      } finally {
        virsh('net-destroy', network);
      }
    });

    test("create --network default while the host's default network is inactive: one line, exit 2, nothing made", async () => {
      if ((await networkState(LIBVIRT_TEST_URI, 'default')) === 'active') {
        // The check itself is covered above on a network of our own; this host's default is up.
        process.stderr.write('skipped the CLI half: the default network is active on this host\n');
        return;
      }
      const name = `vmp-t-logs-net-${tag}`;
      const r = await runCli(
        [
          'create',
          '--import',
          path.join(root, 'src', 'guest.qcow2'),
          '--name',
          name,
          '--virt-type',
          'qemu',
          '--network',
          'default',
          '--vm-dir',
          path.join(root, 'vms'),
          '-c',
          LIBVIRT_TEST_URI,
          '--yes',
        ],
        env,
        120_000,
      );
      expect(r.stderr).toBe(
        `error: network default: libvirt network 'default' at ${LIBVIRT_TEST_URI} is not active; ` +
          `start it with: virsh -c ${LIBVIRT_TEST_URI} net-start default (virsh net-autostart default keeps it on), or use --network user\n`,
      );
      expect(r.code).toBe(2);
      expect(allDomainNames()).not.toContain(name);
      expect(fs.readdirSync(path.join(root, 'vms')).filter((f) => f.startsWith(name))).toEqual([]);
      expect(fs.existsSync(path.join(root, 'config', 'vm-provisioner', `${name}.toml`))).toBe(false);
    });

    test('destroy removes the console log with the VM (a new VM of the name starts afresh); the install log is kept', async () => {
      const consoleLog = path.join(logDir, `${vm}-console.log`);
      fs.writeFileSync(consoleLog, 'old boot\n');
      const r = await runCli(['destroy', vm, '--yes', '-c', LIBVIRT_TEST_URI], env, 120_000);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      expect(fs.existsSync(consoleLog)).toBe(false);
      expect(fs.existsSync(path.join(logDir, `${vm}-install.log`))).toBe(true);
      expect(allDomainNames()).not.toContain(vm);
    });
  },
);
