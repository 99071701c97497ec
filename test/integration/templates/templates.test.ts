import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeDomain } from '../../../src/libvirt/inspect.js';
import { keyringCredentialStores } from '../../../src/secrets/credentials.js';
import { AGENT_SECRET_SERVICE, PASSWORD_SERVICE } from '../../../src/service/ports.js';
import { CLI, runCli } from '../../support/cli.js';
import { secretToolLookup } from '../../support/keyring-control.js';
import { allDomainNames, qemuImgCreate, removeDomain, virsh } from '../../support/libvirt-fixture.js';
import { describeWith, LIBVIRT_TEST_URI, probeLibvirt, probeSecretService } from '../../support/services.js';
import { allOf } from '../../support/tools.js';

import { jest } from '@jest/globals';
import { waitStopped } from '../../support/processes.js';

jest.setTimeout(300_000);

/**
 * Templates on the host side, with the built CLI against the real libvirtd,
 * its storage API and the real Secret Service: `template import`, app VMs as
 * overlays (`create --template`), the root made afresh at a cold start, the
 * refusals that protect a template's disk, and interrupts at every step of
 * `create --template`. A small blank qcow2 stands in for the installed image
 * (it is started, never booted into an OS: SeaBIOS finds nothing to boot);
 * the e2e test boots the real guest image from a template.
 */

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Whether `file` holds the byte pattern at the range, as `qemu-io -c 'read -P PATTERN OFFSET LENGTH'` checks. */
function holdsPattern(file: string, patternRange: string): boolean {
  const read = spawnSync('qemu-io', ['-c', `read -P ${patternRange}`, file], { encoding: 'utf8' });
  if (read.error) throw read.error;
  return read.status === 0 && !`${read.stdout}${read.stderr}`.includes('Pattern verification failed');
}

const sha256 = (file: string): string => createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const allocatedBytes = (file: string): number => fs.statSync(file).blocks * 512;

describeWith(allOf(probeLibvirt(), probeSecretService()), 'libvirt and a Secret Service')(
  'templates and app VMs on them',
  () => {
    let root: string;
    let env: NodeJS.ProcessEnv;
    const names: string[] = [];
    const stores = keyringCredentialStores();
    const at = (...parts: string[]): string => path.join(root, ...parts);
    const vms = (): string => at('vms');
    const cli = (args: string[], timeoutMs = 120_000) =>
      runCli([...args, '--connect', LIBVIRT_TEST_URI], env, timeoutMs);

    function newName(kind: string): string {
      const name = `vmp-t-tmpl-${kind}-${randomBytes(3).toString('hex')}`;
      names.push(name);
      return name;
    }

    beforeAll(() => {
      root = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-tmpl-'));
      // QEMU runs as libvirt-qemu under qemu:///system: it must be able to traverse to the files.
      fs.chmodSync(root, 0o711);
      for (const dir of ['home', 'tmp', 'config', 'state', 'src']) fs.mkdirSync(at(dir), { mode: 0o700 });
      fs.mkdirSync(vms(), { mode: 0o711 });
      qemuImgCreate(at('src', 'base.qcow2'), '256M');
      // Some data in the base, so that "unchanged" is checked on more than an empty image.
      execFileSync('qemu-io', ['-c', 'write -P 0x5a 0 4M', at('src', 'base.qcow2')], { stdio: 'ignore' });
      env = {
        PATH: process.env.PATH,
        HOME: at('home'),
        XDG_CONFIG_HOME: at('config'),
        XDG_STATE_HOME: at('state'),
        TMPDIR: at('tmp'),
        DBUS_SESSION_BUS_ADDRESS: process.env.DBUS_SESSION_BUS_ADDRESS,
        NO_COLOR: '1',
      };
    });

    afterAll(async () => {
      // App VMs first: a template is destroyed only when nothing uses it.
      for (const name of [...names].reverse()) {
        removeDomain(name);
        await stores.passwords.delete(name).catch(() => undefined);
        await stores.agentSecrets.delete(name).catch(() => undefined);
      }
      if (root) fs.rmSync(root, { recursive: true, force: true });
    });

    async function importTemplate(name: string): Promise<void> {
      const result = await cli(
        [
          'template',
          'import',
          name,
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
      expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
      expect(result.stdout).toContain(`Imported template "${name}"`);
    }

    const createArgs = (template: string, name: string, extra: string[] = []): string[] => [
      'create',
      '--template',
      template,
      '--name',
      name,
      '--autostart-app',
      'xterm',
      '--yes',
      ...extra,
    ];

    const templateDisk = (name: string): string => path.join(vms(), `${name}.qcow2`);
    const own = (name: string, suffix: string): string => path.join(vms(), `${name}${suffix}`);

    function expectNothingLeftOf(name: string): void {
      expect(allDomainNames()).not.toContain(name);
      expect(fs.readdirSync(vms()).filter((f) => f.startsWith(`${name}-`) || f === `${name}.qcow2`)).toEqual(
        [],
      );
      expect(fs.existsSync(at('config', 'vm-provisioner', `${name}.toml`))).toBe(false);
      expect(fs.existsSync(at('config', 'vm-provisioner', `${name}.lock`))).toBe(false);
      expect(fs.existsSync(at('state', 'vm-provisioner', 'journal', `${name}.json`))).toBe(false);
      expect(secretToolLookup(PASSWORD_SERVICE, name)).toBeNull();
      expect(secretToolLookup(AGENT_SECRET_SERVICE, name)).toBeNull();
    }

    describe('one template, app VMs on it', () => {
      const template = `vmp-t-tmpl-base-${randomBytes(3).toString('hex')}`;
      const apps: string[] = [];
      let checksum: string;

      beforeAll(async () => {
        names.push(template);
        await importTemplate(template);
        checksum = sha256(templateDisk(template));
      });

      test('template import seals the copy: read-only on the host, marked and stamped in the domain', () => {
        const disk = templateDisk(template);
        expect(fs.statSync(disk).mode & 0o777).toBe(0o444);
        const description = describeDomain(virsh('dumpxml', template, '--inactive'));
        expect(description.role).toBe('template');
        expect(description.seal?.origin).toBe('import');
        expect(description.seal?.sizeBytes).toBe(fs.statSync(disk).size);
        // The source image is copied, never changed.
        expect(sha256(at('src', 'base.qcow2'))).toBe(checksum);
      });

      test('create --template makes an overlay, a private volume and a config disk, and copies nothing', async () => {
        for (let i = 0; i < 3; i++) {
          const name = newName(`app${i}`);
          apps.push(name);
          const result = await cli(
            createArgs(template, name, ['--memory', '384', ...(i === 1 ? ['--label', 'red'] : [])]),
          );
          expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
          expect(result.stdout).toContain(`Created VM "${name}" on template "${template}"`);
          // create syncs the launchers: this VM's xterm gets its entry and icon (the template none).
          expect(result.stdout).toMatch(/^launchers: 2 written, 0 removed$/m);
        }
        const launchers = fs.readdirSync(at('home', '.local', 'share', 'applications')).sort();
        expect(launchers).toEqual(apps.map((n) => `vm-provisioner-${n}_xterm.desktop`).sort());
        expect(
          fs.readFileSync(
            at('home', '.local', 'share', 'icons', 'hicolor', 'scalable', 'apps', `vm-provisioner-${apps[1]}_xterm.svg`),
            'utf8',
          ),
        ).toContain('fill="#cc0000"');
        for (const name of apps) {
          const xml = virsh('dumpxml', name, '--inactive');
          const description = describeDomain(xml);
          expect(description.template).toEqual({ name: template, disk: templateDisk(template) });
          expect(description.disks.map((d) => path.basename(d.file))).toEqual([
            `${name}-root.qcow2`,
            `${name}-config.img`,
            `${name}-private.qcow2`,
          ]);
          expect(description.disks.map((d) => d.serial)).toEqual([undefined, 'vmp-config', 'vmp-private']);
          expect(xml).toMatch(/<backingStore type='file'>\s*<format type='qcow2'\/>/);
          expect(xml).toContain(`<memory unit='KiB'>${384 * 1024}</memory>`);
          const info = JSON.parse(
            execFileSync('qemu-img', ['info', '--output=json', '-U', own(name, '-root.qcow2')], { encoding: 'utf8' }),
          ) as { 'backing-filename': string; 'virtual-size': number };
          expect(info['backing-filename']).toBe(templateDisk(template));
          // The bound: at most 50 MiB of new disk per app VM before its first start.
          const bytes = ['-root.qcow2', '-private.qcow2', '-config.img']
            .map((s) => allocatedBytes(own(name, s)))
            .reduce((a, b) => a + b, 0);
          expect(bytes).toBeLessThan(50 * 1024 * 1024);
          expect(secretToolLookup(PASSWORD_SERVICE, name)).toBeTruthy();
          expect(fs.readFileSync(at('config', 'vm-provisioner', `${name}.toml`), 'utf8')).toContain(
            `template = "${template}"`,
          );
        }
      });

      test('list shows the app VMs with their template and never the template; template list shows both sides', async () => {
        const listed = await cli(['list', '--json']);
        expect(listed.code).toBe(0);
        const vmsListed = JSON.parse(listed.stdout) as Array<{ name: string; template?: string }>;
        expect(vmsListed.map((v) => v.name)).not.toContain(template);
        for (const name of apps) expect(vmsListed.find((v) => v.name === name)?.template).toBe(template);
        // The label is kept in the config; a VM made without --label is gray, and every one shows it.
        expect(vmsListed.find((v) => v.name === apps[1])).toMatchObject({ label: 'red', display: 'spice' });
        expect(vmsListed.find((v) => v.name === apps[0])).toMatchObject({ label: 'gray', display: 'spice' });
        expect(fs.readFileSync(at('config', 'vm-provisioner', `${apps[1]}.toml`), 'utf8')).toContain('label = "red"');
        const vmTable = await cli(['list']);
        expect(vmTable.stdout).toMatch(/^NAME\s+STATE\s+LABEL\s+MEMORY/m);
        expect(vmTable.stdout).toMatch(new RegExp(`^${apps[1]}\\s+shut off\\s+red\\s+384 MiB`, 'm'));
        const templates = await cli(['template', 'list', '--json']);
        expect(templates.code).toBe(0);
        const mine = (JSON.parse(templates.stdout) as Array<{ name: string; appVms: string[]; diskBytes: number }>).find(
          (t) => t.name === template,
        );
        expect(mine?.appVms.sort()).toEqual([...apps].sort());
        expect(mine?.diskBytes).toBe(fs.statSync(templateDisk(template)).size);
        const table = await cli(['template', 'list']);
        expect(table.stdout).toMatch(new RegExp(`^${template}\\s+shut off\\s+\\d+ MiB\\s+${apps[0]}`, 'm'));
      });

      test('template destroy and destroy of the template are refused while app VMs use it, naming them', async () => {
        for (const args of [['template', 'destroy', template], ['destroy', template, '--yes']]) {
          const refused = await cli(args);
          expect(refused.code).toBe(2);
          expect(refused.stderr.trim().split('\n')).toHaveLength(1);
          for (const name of apps) expect(refused.stderr).toContain(name);
        }
        expect(allDomainNames()).toContain(template);
        expect(sha256(templateDisk(template))).toBe(checksum);
      });

      test('create --template --dry-run prints the plan and writes the domain XML, making nothing', async () => {
        const name = newName('dry');
        const out = at('tmp', 'dry-run');
        const result = await cli(createArgs(template, name, ['--flatpak', 'org.example.Lacking', '--dry-run', '--output', out]));
        expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
        expect(result.stdout).toContain(`Plan for VM "${name}" on template "${template}" (dry run`);
        expect(result.stdout).toMatch(/first-boot install:\s+org\.example\.Lacking/);
        const xml = fs.readFileSync(path.join(out, `${name}.xml`), 'utf8');
        expect(describeDomain(xml).template).toEqual({ name: template, disk: templateDisk(template) });
        expect(fs.statSync(path.join(out, `${name}.xml`)).mode & 0o777).toBe(0o600);
        expectNothingLeftOf(name);
      });

      test('a template is not started as a VM, nor used as a name, nor is an app VM a template', async () => {
        const start = await cli(['start', template, '--no-viewer']);
        expect(start.code).toBe(2);
        expect(start.stderr).toContain('is a template');
        const taken = await cli(createArgs(template, template));
        expect(taken.code).toBe(2);
        expect(taken.stderr).toContain(template);
        const notTemplate = await cli(createArgs(apps[0]!, 'vmp-t-tmpl-nope'));
        expect(notTemplate.code).toBe(2);
        expect(notTemplate.stderr).toContain('is an app VM, not a template');
        const unknown = await cli(createArgs('vmp-t-tmpl-missing', 'vmp-t-tmpl-nope2'));
        expect(unknown.code).toBe(2);
        expect(unknown.stderr).toContain("no template named 'vmp-t-tmpl-missing'");
        const system = await cli(createArgs(template, 'vmp-t-tmpl-nope3', ['--system', 'git']));
        expect(system.code).toBe(2);
        expect(system.stderr).toContain('install them into the template');
        const pink = await cli(createArgs(template, 'vmp-t-tmpl-nope4', ['--label', 'pink']));
        expect(pink.code).toBe(2);
        expect(pink.stderr.trim()).toBe(
          'error: invalid label "pink": must be one of red, orange, yellow, green, blue, purple, gray, black',
        );
        for (const name of ['vmp-t-tmpl-nope', 'vmp-t-tmpl-nope2', 'vmp-t-tmpl-nope3', 'vmp-t-tmpl-nope4']) {
          expectNothingLeftOf(name);
        }
      });

      test('a cold start throws the root away and makes it afresh from the template; the private volume stays', async () => {
        const name = apps[0]!;
        const rootDisk = own(name, '-root.qcow2');
        const privateDisk = own(name, '-private.qcow2');
        execFileSync('qemu-io', ['-c', 'write -P 0xa1 8M 1M', rootDisk], { stdio: 'ignore' });
        execFileSync('qemu-io', ['-c', 'write -P 0xb2 0 1M', privateDisk], { stdio: 'ignore' });
        const rootBefore = allocatedBytes(rootDisk);
        expect(rootBefore).toBeGreaterThan(1024 * 1024);

        const started = await cli(['start', name, '--no-viewer']);
        expect({ code: started.code, stderr: started.stderr }).toEqual({ code: 0, stderr: '' });
        // libvirt made the seamless display socket the CLI user's (its DAC seclabel), not QEMU's user's.
        expect(fs.statSync(own(name, '-display.sock')).uid).toBe(process.getuid!());
        expect(virsh('dumpxml', name)).toContain(`<label>+${process.getuid!()}:+${process.getgid!()}</label>`);
        virsh('destroy', name);

        // The root's write is gone: its clusters read the template's bytes (zeros at 8M) again.
        expect(allocatedBytes(rootDisk)).toBeLessThan(rootBefore);
        expect(holdsPattern(rootDisk, '0xa1 8M 1M')).toBe(false);
        // What the template holds reads through the new overlay.
        expect(holdsPattern(rootDisk, '0x5a 0 4M')).toBe(true);
        expect(holdsPattern(privateDisk, '0xb2 0 1M')).toBe(true);
        expect(sha256(templateDisk(template))).toBe(checksum);
        // libvirt never relabelled the shared, sealed disk.
        expect(fs.statSync(templateDisk(template)).uid).toBe(0);
      });

      test.each(['keyring', 'config-disk', 'root-volume', 'private-volume', 'domain', 'config'])(
        'Ctrl+C before step %s of create --template: exit 130 and nothing left',
        async (step) => {
          const name = newName(`int-${step}`);
          const child = spawn(process.execPath, [CLI, ...createArgs(template, name), '--connect', LIBVIRT_TEST_URI], {
            env: { ...env, VMP_TEST_STOP_AT: step },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          let stdout = '';
          let stderr = '';
          child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
          child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
          const exited = new Promise<Exit>((resolve) =>
            child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
          );
          await waitStopped(child.pid!, exited);
          process.kill(child.pid!, 'SIGINT');
          process.kill(child.pid!, 'SIGCONT');
          const exit = await exited;
          expect(exit.code).toBe(130);
          expect(exit.stdout).not.toContain('Created VM');
          expectNothingLeftOf(name);
        },
      );

      test('SIGKILL once the root volume is made: gc removes the volumes, files and keyring entries', async () => {
        const name = newName('kill');
        const child = spawn(process.execPath, [CLI, ...createArgs(template, name), '--connect', LIBVIRT_TEST_URI], {
          env: { ...env, VMP_TEST_STOP_AT: 'domain' },
          stdio: 'ignore',
        });
        const exited = new Promise<Exit>((resolve) =>
          child.on('close', (code, signal) => resolve({ code, signal, stdout: '', stderr: '' })),
        );
        await waitStopped(child.pid!, exited);
        process.kill(child.pid!, 'SIGKILL');
        await exited;
        expect(fs.existsSync(own(name, '-root.qcow2'))).toBe(true);
        expect(fs.existsSync(own(name, '-private.qcow2'))).toBe(true);
        const gc = await runCli(['gc'], env, 120_000);
        expect({ code: gc.code, stderr: gc.stderr }).toEqual({ code: 0, stderr: '' });
        expect(gc.stdout).toContain(`${name}: removed the unfinished create`);
        expectNothingLeftOf(name);
        expect(sha256(templateDisk(template))).toBe(checksum);
      });

      test('destroying every app VM leaves the template disk unchanged and nothing else; then the template goes', async () => {
        for (const name of apps) {
          const destroyed = await cli(['destroy', name, '--yes']);
          expect(destroyed.code).toBe(0);
          expect(destroyed.stdout).toMatch(/^launchers: 0 written, 2 removed$/m);
          expectNothingLeftOf(name);
        }
        expect(fs.readdirSync(at('home', '.local', 'share', 'applications'))).toEqual([]);
        expect(sha256(templateDisk(template))).toBe(checksum);
        expect(fs.readdirSync(vms()).sort()).toEqual([`${template}-config.img`, `${template}.qcow2`]);
        const gone = await cli(['template', 'destroy', template]);
        expect({ code: gone.code, stderr: gone.stderr }).toEqual({ code: 0, stderr: '' });
        expectNothingLeftOf(template);
        expect(fs.readdirSync(vms())).toEqual([]);
      });
    });

    describe('a template disk that changed or moved under an app VM', () => {
      test('start names the template and says what to run, without reaching QEMU', async () => {
        const template = newName('seal');
        await importTemplate(template);
        const name = newName('sealed-app');
        const created = await cli(createArgs(template, name));
        expect(created.code).toBe(0);
        const disk = templateDisk(template);

        // Running: as during `template update`, which makes the disk writable first.
        fs.chmodSync(disk, 0o644);
        virsh('start', template);
        try {
          const other = newName('while-running');
          const refused = await cli(createArgs(template, other));
          expect(refused.code).not.toBe(0);
          expect(refused.stderr).toContain(`template '${template}' is running`);
          expectNothingLeftOf(other);
          const start = await cli(['start', name, '--no-viewer']);
          expect(start.code).not.toBe(0);
          expect(start.stderr).toContain(`template '${template}' of VM '${name}' is running`);
          expect(virsh('domstate', name).trim()).toBe('shut off');
        } finally {
          virsh('destroy', template);
        }

        // Unsealed: writable on the host.
        const unsealed = await cli(['start', name, '--no-viewer']);
        expect(unsealed.code).toBe(2);
        expect(unsealed.stderr).toContain('is writable (mode 644), so it is not sealed');
        fs.chmodSync(disk, 0o444);

        // Changed: a write to the sealed disk (root ignores the read-only mode).
        execFileSync('qemu-io', ['-c', 'write -P 0x77 16M 64k', disk], { stdio: 'ignore' });
        const changed = await cli(['start', name, '--no-viewer']);
        expect(changed.code).toBe(2);
        expect(changed.stderr.trim().split('\n')).toHaveLength(1);
        expect(changed.stderr).toContain(`template '${template}' disk ${disk} changed since it was sealed`);
        expect(changed.stderr).toContain(`template update ${template}`);
        expect(changed.stderr).not.toMatch(/qemu|QEMU/);
        const refusedCreate = await cli(createArgs(template, newName('on-changed')));
        expect(refusedCreate.code).toBe(2);
        expect(refusedCreate.stderr).toContain('changed since it was sealed');

        // Moved: the file is no longer where the template's definition says.
        fs.renameSync(disk, `${disk}.moved`);
        const moved = await cli(['start', name, '--no-viewer']);
        expect(moved.code).toBe(2);
        expect(moved.stderr).toContain(`template '${template}' disk ${disk} is missing (moved or deleted)`);
        expect(virsh('domstate', name).trim()).toBe('shut off');
        fs.renameSync(`${disk}.moved`, disk);

        expect((await cli(['destroy', name, '--yes'])).code).toBe(0);
        expect((await cli(['template', 'destroy', template])).code).toBe(0);
        expectNothingLeftOf(template);
      });
    });
  },
);
