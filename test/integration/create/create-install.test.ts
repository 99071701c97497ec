import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { keyringCredentialStores } from '../../../src/secrets/credentials.js';
import { agentBundlePath } from '../../../src/util/package-info.js';
import {
  buildFakeInstaller,
  serveTree,
  sha256,
  treeFiles,
  type FakeTreeServer,
} from '../../support/fake-tree/tree.js';
import { assertNoSecretsInTree } from '../../support/no-secrets.js';
import { describeWith, LIBVIRT_TEST_URI, probeLibvirt, probeSecretService } from '../../support/services.js';
import { allOf } from '../../support/tools.js';

/**
 * The real `create` (the built CLI in a child process) against the real
 * libvirtd and Secret Service, installing from the fake tree served on
 * loopback: the fake installer boots under TCG, reads the injected ks.cfg,
 * prints Anaconda-like progress and our kickstart's marker, and powers off.
 */

const run = promisify(execFile);
const CLI = path.resolve('dist/src/cli/main.js');
const virsh = async (...args: string[]): Promise<string> =>
  (await run('virsh', ['-c', LIBVIRT_TEST_URI, ...args], { encoding: 'utf8', timeout: 180_000 })).stdout;

interface Child {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

describeWith(allOf(probeLibvirt(), probeSecretService()), 'libvirt and a Secret Service')(
  'create installs a VM from an install tree, and leaves nothing behind when it fails',
  () => {
    let server: FakeTreeServer;
    let root: string;
    let env: NodeJS.ProcessEnv;
    let standInBundle = false;
    const names: string[] = [];
    const stores = (): ReturnType<typeof keyringCredentialStores> => keyringCredentialStores();

    const dirs = {
      get cache(): string {
        return path.join(root, 'cache');
      },
      get config(): string {
        return path.join(root, 'config', 'vm-provisioner');
      },
      get state(): string {
        return path.join(root, 'state');
      },
      get tmp(): string {
        return path.join(root, 'tmp');
      },
      get vms(): string {
        return path.join(root, 'vms');
      },
    };

    beforeAll(async () => {
      if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
      if (!fs.existsSync(agentBundlePath())) {
        // Until branch `agent` is merged the build has no guest agent bundle; the fake
        // installer never runs it, so a marked stand-in lets the kickstart render.
        fs.mkdirSync(path.dirname(agentBundlePath()), { recursive: true });
        fs.writeFileSync(agentBundlePath(), '// vmp-t-create stand-in guest agent bundle (test only)\n', {
          flag: 'wx',
        });
        standInBundle = true;
      }
      const built = buildFakeInstaller();
      server = await serveTree(
        treeFiles(fs.readFileSync(built.kernelPath), fs.readFileSync(built.initrdPath)),
      );
      root = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-create-'));
      // QEMU runs as libvirt-qemu: it must traverse to the disk and the staged boot files.
      fs.chmodSync(root, 0o755);
      for (const dir of ['home', 'tmp', 'vms', 'cache', 'state', 'config']) {
        fs.mkdirSync(path.join(root, dir), { mode: 0o755 });
      }
      env = {
        PATH: process.env.PATH,
        HOME: path.join(root, 'home'),
        XDG_CONFIG_HOME: path.join(root, 'config'),
        XDG_CACHE_HOME: dirs.cache,
        XDG_STATE_HOME: dirs.state,
        TMPDIR: dirs.tmp,
        DBUS_SESSION_BUS_ADDRESS: process.env.DBUS_SESSION_BUS_ADDRESS,
        FORCE_COLOR: '0',
      };
    }, 10 * 60_000);

    afterAll(async () => {
      for (const name of names) {
        await virsh('destroy', name).catch(() => undefined);
        await virsh('undefine', name, '--nvram').catch(() => undefined);
        await stores()
          .passwords.delete(name)
          .catch(() => undefined);
        await stores()
          .agentSecrets.delete(name)
          .catch(() => undefined);
        fs.rmSync(`/var/log/libvirt/qemu/${name}.log`, { force: true });
      }
      await server?.close();
      if (standInBundle) fs.rmSync(agentBundlePath(), { force: true });
      if (root) fs.rmSync(root, { recursive: true, force: true });
    }, 5 * 60_000);

    function newName(kind: string): string {
      const name = `vmp-t-create-${kind}-${randomBytes(3).toString('hex')}`;
      names.push(name);
      return name;
    }

    function createArgs(name: string, extra: string[] = []): string[] {
      return [
        CLI,
        'create',
        '--name',
        name,
        '--flatpak',
        'org.mozilla.firefox',
        '--memory',
        '2048',
        '--vcpus',
        '1',
        '--disk',
        '10',
        '--virt-type',
        'qemu',
        '--network',
        'none',
        '--connect',
        LIBVIRT_TEST_URI,
        '--location',
        server.url,
        '--vm-dir',
        dirs.vms,
        '--install-timeout',
        '10',
        '--yes',
        ...extra,
      ];
    }

    /** Runs the CLI; `whileRunning` sees the output so far and may act on the child. */
    function cli(
      args: string[],
      whileRunning?: (out: { stdout: string; stderr: string }, kill: (s: NodeJS.Signals) => boolean) => void,
    ): Promise<Child> {
      const started = performance.now();
      return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, args, { env, cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
        const out = { stdout: '', stderr: '' };
        child.stdout.on('data', (d: Buffer) => (out.stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
        const poll = whileRunning
          ? setInterval(() => whileRunning(out, (s) => child.exitCode === null && child.kill(s)), 100)
          : undefined;
        const timer = setTimeout(() => child.kill('SIGKILL'), 15 * 60_000);
        child.on('error', reject);
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          if (poll) clearInterval(poll);
          resolve({ code, signal, ...out, ms: performance.now() - started });
        });
      });
    }

    async function domainExists(name: string): Promise<boolean> {
      return (await virsh('list', '--all', '--name')).split('\n').some((l) => l.trim() === name);
    }

    /** Nothing of `name` is left: domain, disk, staged boot files, config, keyring entries. */
    async function expectNothingLeft(name: string): Promise<void> {
      expect(await domainExists(name)).toBe(false);
      // Other tests' VMs may still be there; nothing of this one may be.
      expect(fs.readdirSync(dirs.vms).filter((f) => f.startsWith(name))).toEqual([]);
      expect(fs.readdirSync(dirs.tmp)).toEqual([]);
      expect(fs.existsSync(path.join(dirs.config, `${name}.toml`))).toBe(false);
      expect(fs.existsSync(path.join(dirs.config, `${name}.lock`))).toBe(false);
      expect(await stores().passwords.get(name)).toBeNull();
      expect(await stores().agentSecrets.get(name)).toBeNull();
      expect(fs.existsSync(path.join(dirs.state, 'vm-provisioner', 'journal', `${name}.json`))).toBe(false);
    }

    test(
      'installs: media downloaded and verified, kickstart injected, progress shown, final domain, config and keyring',
      async () => {
        const name = newName('ok');
        let stagedInitrd: Buffer | undefined;
        const r = await cli(createArgs(name), (out) => {
          // Once the disk step is announced the boot files are fully staged: take a copy to inspect.
          if (stagedInitrd || !out.stdout.includes('Creating ')) return;
          const dir = fs.readdirSync(dirs.tmp).find((d) => d.startsWith('vmp-install-'));
          if (dir) stagedInitrd = fs.readFileSync(path.join(dirs.tmp, dir, 'initrd.img'));
        });
        process.stdout.write(`create (fake installer, TCG) took ${(r.ms / 1000).toFixed(1)} s\n${r.stdout}`);
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);

        // Plan, download, verification, progress, result.
        expect(r.stdout).toMatch(new RegExp(`^Plan for VM "${name}"\\n`));
        expect(r.stdout).toContain('downloaded vmlinuz');
        expect(r.stdout).toContain('downloaded initrd.img');
        expect(r.stdout).toContain("installer verified against the tree's checksums");
        expect(r.stdout).toContain('  Installing software\n');
        expect(r.stdout).toMatch(/installed (\d+)\/\1 packages/);
        expect(r.stdout).toContain(`installer reported success for ${name}`);
        expect(r.stdout).toMatch(new RegExp(`Created VM "${name}": installed in \\d+\\.\\d s\\.`));
        const installed = /installed in (\d+\.\d) s/.exec(r.stdout)![1];
        process.stdout.write(`install phase of the fake installer: ${installed} s\n`);

        // The media cache holds exactly the tree's files.
        const cacheDirs = fs.readdirSync(path.join(dirs.cache, 'vm-provisioner', 'install-media'));
        expect(cacheDirs).toHaveLength(1);
        const cached = path.join(dirs.cache, 'vm-provisioner', 'install-media', cacheDirs[0]!);
        const cachedInitrd = fs.readFileSync(path.join(cached, 'initrd.img'));
        expect(sha256(cachedInitrd)).toBe(sha256(server.files.get('images/pxeboot/initrd.img')!));
        expect(sha256(fs.readFileSync(path.join(cached, 'vmlinuz')))).toBe(
          sha256(server.files.get('images/pxeboot/vmlinuz')!),
        );
        expect(server.requests).toEqual(['.treeinfo', 'images/pxeboot/vmlinuz', 'images/pxeboot/initrd.img']);

        // The staged initrd was the cached one plus a gzip'd cpio holding our ks.cfg, and is gone now.
        expect(stagedInitrd).toBeDefined();
        expect(stagedInitrd!.subarray(0, cachedInitrd.length).equals(cachedInitrd)).toBe(true);
        const archive = gunzipSync(stagedInitrd!.subarray(cachedInitrd.length)).toString('latin1');
        expect(archive).toContain('ks.cfg');
        expect(archive).toContain(`vm_name='${name}'`);
        expect(archive).toMatch(/user --name=user --groups=wheel --iscrypted --password=\$6\$/);
        expect(archive).toContain(`url --url=${server.url}`);
        expect(archive).toContain('org.mozilla.firefox');
        expect(fs.readdirSync(dirs.tmp)).toEqual([]);

        // The final domain: boots from its disk, carries our metadata, is shut off.
        const xml = await virsh('dumpxml', name, '--inactive');
        expect(xml).not.toMatch(/<kernel>|<initrd>|<cmdline>/);
        expect(xml).toMatch(/<boot dev=["']hd["']\/>/);
        expect(xml).toMatch(/<vmp:vm [^>]*phase=["']installed["']/);
        expect(xml).toContain('<vmp:app>org.mozilla.firefox</vmp:app>');
        expect(xml).toContain(`<source file='${path.join(dirs.vms, `${name}.qcow2`)}'`);
        expect(xml).toMatch(/<on_reboot>restart<\/on_reboot>/);
        // The install's console log is not the installed VM's: that one gets its own (logs --console).
        expect(xml).not.toContain('-install.log');
        expect(xml).toContain(
          `<log file='${path.join(dirs.state, 'vm-provisioner', 'logs', `${name}-console.log`)}' append='on'/>`,
        );
        expect((await virsh('domstate', name)).trim()).toBe('shut off');

        // The disk: a new 10 GB qcow2.
        const info = JSON.parse(
          (await run('qemu-img', ['info', '--output=json', path.join(dirs.vms, `${name}.qcow2`)])).stdout,
        ) as { format: string; 'virtual-size': number };
        expect(info).toMatchObject({ format: 'qcow2', 'virtual-size': 10 * 1024 ** 3 });

        // Config saved, no lock left; the install log kept.
        const toml = fs.readFileSync(path.join(dirs.config, `${name}.toml`), 'utf8');
        expect(toml).toContain(`name = "${name}"`);
        expect(toml).toContain('org.mozilla.firefox');
        expect(fs.readdirSync(dirs.config).sort()).toEqual([`${name}.toml`]);
        const log = fs.readFileSync(
          path.join(dirs.state, 'vm-provisioner', 'logs', `${name}-install.log`),
          'utf8',
        );
        expect(log).toContain(`VMP-INSTALL-OK ${name}`);
        // Finished: no journal left for gc to find.
        expect(fs.readdirSync(path.join(dirs.state, 'vm-provisioner', 'journal'))).toEqual([]);

        // Both secrets in the keyring, and neither anywhere on disk (the hash only went into the deleted initrd).
        const password = await stores().passwords.get(name);
        const agentSecret = await stores().agentSecrets.get(name);
        expect(password).toMatch(/^.{16,}$/);
        expect(agentSecret).toMatch(/^[0-9a-f]{64}$/);
        expect(archive).not.toContain(password!);
        assertNoSecretsInTree(root, [password!, agentSecret!]);
      },
      15 * 60_000,
    );

    test(
      'an install that fails mid-way is rolled back completely, with the log tail in the error; the cache is reused',
      async () => {
        const name = newName('fail');
        const before = server.requests.length;
        const r = await cli(createArgs(name, ['--system', 'vmp-fake-missing-package']));
        expect(r.code).toBe(1);
        expect(r.stdout).toContain('installer taken from the cache');
        expect(r.stdout).toContain('nothing downloaded');
        // The cache hit makes no request at all.
        expect(server.requests.length).toBe(before);
        expect(r.stderr).toMatch(
          new RegExp(
            `^error: installing VM '${name}' failed: the installer reported failure: %post --nochroot line`,
          ),
        );
        expect(r.stderr).toContain('-install.log:\n');
        expect(r.stderr).toContain('  | Error: the following software marked for installation has errors');
        expect(r.stdout).toContain('Failed: removing what was made');
        expect(r.stdout).toContain(`removed domain '${name}'`);
        expect(r.stdout).toContain('removed keyring entries');
        await expectNothingLeft(name);
      },
      15 * 60_000,
    );

    test(
      'SIGKILL just before the install domain is defined: gc removes the disk, the staged initrd and the keyring entries',
      async () => {
        const name = newName('kill');
        const child = spawn(process.execPath, createArgs(name), {
          env: { ...env, VMP_TEST_STOP_AT: 'install-domain' },
          cwd: root,
          stdio: 'ignore',
        });
        const exited = new Promise((resolve) => child.on('close', resolve));
        const state = (): string | undefined => {
          try {
            const stat = fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8');
            return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
          } catch {
            return undefined;
          }
        };
        for (const deadline = Date.now() + 5 * 60_000; state() !== 'T';) {
          if (child.exitCode !== null || Date.now() > deadline)
            throw new Error('create never reached its stop point');
          await new Promise((r) => setTimeout(r, 100));
        }
        child.kill('SIGKILL');
        await exited;
        expect(fs.existsSync(path.join(dirs.vms, `${name}.qcow2`))).toBe(true);
        // The staged initrd holds the password hash: gc must find it through the journal too.
        expect(fs.readdirSync(dirs.tmp).filter((d) => d.startsWith('vmp-install-'))).toHaveLength(1);
        expect(await stores().passwords.get(name)).not.toBeNull();

        const gc = await cli([CLI, 'gc']);
        expect(gc.stderr).toBe('');
        expect(gc.code).toBe(0);
        expect(gc.stdout).toContain(`${name}: removed the unfinished create`);
        await expectNothingLeft(name);
      },
      15 * 60_000,
    );

    test(
      'Ctrl+C during the install removes everything; a second Ctrl+C is ignored',
      async () => {
        const name = newName('int');
        let sent = 0;
        const r = await cli(createArgs(name), (out, kill) => {
          if (sent === 0 && out.stdout.includes('console log:')) {
            if (kill('SIGINT')) sent = 1;
          } else if (sent === 1 && out.stderr.includes('interrupted')) {
            if (kill('SIGINT')) sent = 2;
          }
        });
        expect(sent).toBeGreaterThanOrEqual(1);
        expect(r.signal).toBeNull();
        expect(r.code).toBe(130);
        expect(r.stderr).toContain('interrupted (Ctrl+C): removing everything create made');
        if (sent === 2) expect(r.stderr).toContain('Ctrl+C is ignored until that is done');
        expect(r.stderr).toMatch(new RegExp(`error: creating VM '${name}' was interrupted`));
        expect(r.stdout).toContain(`removed domain '${name}'`);
        await expectNothingLeft(name);
      },
      15 * 60_000,
    );

    test(
      'template create installs through the same pipeline with the config-disk loader, seals the template, and app VMs are made on it',
      async () => {
        const name = newName('tmpl');
        const templateArgs = createArgs(name).filter(
          (_, i, all) => all[i - 1] !== '--name' && all[i] !== '--name',
        );
        templateArgs.splice(1, 1, 'template', 'create', name);
        let kickstart = '';
        const r = await cli(templateArgs, (out) => {
          if (kickstart || !out.stdout.includes('Creating ')) return;
          const dir = fs.readdirSync(dirs.tmp).find((d) => d.startsWith('vmp-install-'));
          if (!dir) return;
          const staged = fs.readFileSync(path.join(dirs.tmp, dir, 'initrd.img'));
          const cached = fs.readdirSync(path.join(dirs.cache, 'vm-provisioner', 'install-media'))[0]!;
          const size = fs.statSync(
            path.join(dirs.cache, 'vm-provisioner', 'install-media', cached, 'initrd.img'),
          ).size;
          kickstart = gunzipSync(staged.subarray(size)).toString('latin1');
        });
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        expect(r.stdout).toMatch(
          new RegExp(`Created template "${name}": installed in \\d+\\.\\d s, sealed\\.`),
        );
        // The template's kickstart carries the loader and the Flatpak installer, and enables both.
        expect(kickstart).toContain('cat > /usr/local/lib/vm-provisioner/vmp-apply-config');
        expect(kickstart).toContain('systemctl enable vm-provisioner-config.service');
        expect(kickstart).toContain('systemctl --global enable vm-flatpak-install.service');
        const disk = path.join(dirs.vms, `${name}.qcow2`);
        expect(fs.statSync(disk).mode & 0o777).toBe(0o444);
        const xml = await virsh('dumpxml', name, '--inactive');
        expect(xml).toMatch(/<vmp:vm [^>]*role=["']template["']/);
        expect(xml).toMatch(/<vmp:seal [^>]*origin=["']install["']/);

        // An app VM on it: the template's Flatpak is not pending, another one is.
        const app = newName('on-tmpl');
        const made = await cli([
          CLI,
          'create',
          '--template',
          name,
          '--name',
          app,
          '--flatpak',
          'org.mozilla.firefox',
          '--flatpak',
          'org.gnome.Calculator',
          '--connect',
          LIBVIRT_TEST_URI,
          '--yes',
        ]);
        expect({ code: made.code, stderr: made.stderr }).toEqual({ code: 0, stderr: '' });
        expect(made.stdout).toContain('pending:     org.gnome.Calculator (installed at its first boot');
        const listed = JSON.parse(
          (await cli([CLI, 'list', '--json', '--connect', LIBVIRT_TEST_URI])).stdout,
        ) as Array<{
          name: string;
          template?: string;
          pendingFlatpaks: string[];
        }>;
        expect(listed.find((v) => v.name === app)).toMatchObject({
          template: name,
          pendingFlatpaks: ['org.gnome.Calculator'],
        });
        expect(listed.map((v) => v.name)).not.toContain(name);
        // The app VM inherits the template's settings it was not given.
        const appXml = await virsh('dumpxml', app, '--inactive');
        expect(appXml).toContain("<domain type='qemu'");
        expect(appXml).toContain(`<memory unit='KiB'>${2048 * 1024}</memory>`);

        expect((await cli([CLI, 'destroy', app, '--yes', '--connect', LIBVIRT_TEST_URI])).code).toBe(0);
        expect((await cli([CLI, 'template', 'destroy', name, '--connect', LIBVIRT_TEST_URI])).code).toBe(0);
        await expectNothingLeft(app);
        await expectNothingLeft(name);
      },
      15 * 60_000,
    );
  },
);
