import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { keyringCredentialStores } from '../../../src/secrets/credentials.js';
import { AGENT_SECRET_SERVICE, PASSWORD_SERVICE } from '../../../src/service/ports.js';
import { CLI, runCli } from '../../support/cli.js';
import {
  probeDisposableSecretService,
  secretServicePid,
  secretToolLookup,
} from '../../support/keyring-control.js';
import { allDomainNames, qemuImgCreate, removeDomain } from '../../support/libvirt-fixture.js';
import { describeWith, LIBVIRT_TEST_URI, probeLibvirt, probeSecretService } from '../../support/services.js';
import { allOf } from '../../support/tools.js';

import { jest } from '@jest/globals';
import { procState } from '../../support/processes.js';

jest.setTimeout(600_000);

/**
 * The CLI killed or interrupted at known points of `create --import`, as a
 * user (or the OOM killer) would: the built CLI in its own process group,
 * stopped with the VMP_TEST_STOP_AT hook (it SIGSTOPs itself right after its
 * journal names a step), then sent a real SIGKILL or SIGINT. Real libvirtd,
 * real Secret Service; afterwards `gc` or `destroy NAME` must leave nothing,
 * and the name must be free again.
 */

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface Running {
  pid: number;
  exited: Promise<Exit>;
}

describeWith(allOf(probeLibvirt(), probeSecretService()), 'libvirt and a Secret Service')(
  'create --import killed or interrupted part-way',
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
      get journal(): string {
        return path.join(root, 'state', 'vm-provisioner', 'journal');
      },
      get src(): string {
        return path.join(root, 'src');
      },
    };

    beforeAll(() => {
      root = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-crash-'));
      // QEMU runs as libvirt-qemu under qemu:///system: it must be able to traverse to the files.
      fs.chmodSync(root, 0o711);
      for (const dir of ['home', 'tmp', 'config', 'state', 'src']) {
        fs.mkdirSync(path.join(root, dir), { mode: 0o700 });
      }
      qemuImgCreate(path.join(dirs.src, 'guest.qcow2'));
      fs.writeFileSync(path.join(dirs.src, 'vmlinuz'), 'vmp-t-crash stand-in kernel\n');
      fs.writeFileSync(path.join(dirs.src, 'initrd.img'), 'vmp-t-crash stand-in initrd\n');
      env = {
        PATH: process.env.PATH,
        HOME: path.join(root, 'home'),
        XDG_CONFIG_HOME: path.join(root, 'config'),
        XDG_STATE_HOME: path.join(root, 'state'),
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
      const name = `vmp-t-crash-${kind}-${randomBytes(3).toString('hex')}`;
      names.push(name);
      return name;
    }

    const importArgs = (name: string): string[] => [
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
    ];

    /** The CLI in its own process group (so a group signal reaches it and its children, not jest). */
    function startCreate(name: string, stopAt?: string): Running {
      const child = spawn(process.execPath, [CLI, ...importArgs(name)], {
        env: { ...env, ...(stopAt !== undefined ? { VMP_TEST_STOP_AT: stopAt } : {}) },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const exited = new Promise<Exit>((resolve) =>
        child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
      );
      return { pid: child.pid!, exited };
    }

    async function until(what: string, check: () => boolean, timeoutMs = 240_000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (!check()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }

    /** Resolves once the CLI has stopped itself at its stop point; fails if it exited instead. */
    async function stopped(run: Running): Promise<void> {
      let exit: Exit | undefined;
      void run.exited.then((e) => (exit = e));
      await until('the CLI stops at its test stop point', () => {
        if (exit) throw new Error(`the CLI exited before its stop point: ${JSON.stringify(exit)}`);
        return procState(run.pid) === 'T';
      });
    }

    const own = (name: string, suffix: string): string => path.join(dirs.vms, `${name}${suffix}`);
    const journalOf = (name: string): string => path.join(dirs.journal, `${name}.json`);
    const lockOf = (name: string): string => path.join(dirs.config, `${name}.lock`);

    /** Nothing of VM `name` anywhere: domain, files, config, lock, journal, keyring. */
    function expectNothingLeft(name: string): void {
      expect(allDomainNames()).not.toContain(name);
      const left = fs.existsSync(dirs.vms) ? fs.readdirSync(dirs.vms).filter((f) => f.startsWith(name)) : [];
      expect(left).toEqual([]);
      expect(fs.existsSync(path.join(dirs.config, `${name}.toml`))).toBe(false);
      expect(fs.existsSync(lockOf(name))).toBe(false);
      expect(fs.existsSync(journalOf(name))).toBe(false);
      expect(secretToolLookup(PASSWORD_SERVICE, name)).toBeNull();
      expect(secretToolLookup(AGENT_SECRET_SERVICE, name)).toBeNull();
    }

    async function createAndDestroy(name: string): Promise<void> {
      const again = await runCli(importArgs(name), env, 300_000);
      expect(again.stderr).toBe('');
      expect(again.code).toBe(0);
      expect(again.stdout).toContain(`Created VM "${name}"`);
      const destroyed = await runCli(['destroy', name, '--yes', '--connect', LIBVIRT_TEST_URI], env, 120_000);
      expect(destroyed.code).toBe(0);
      expectNothingLeft(name);
    }

    test('SIGKILL once the config disk exists: a new create says what to run; gc removes everything; the name is free again', async () => {
      const name = newName('kill-disk');
      const run = startCreate(name, 'disk');
      await stopped(run);
      process.kill(run.pid, 'SIGKILL');
      expect((await run.exited).signal).toBe('SIGKILL');

      // What the issue saw: config disk, both keyring entries, the lock; and now the journal naming them.
      expect(fs.existsSync(own(name, '-config.img'))).toBe(true);
      expect(secretToolLookup(PASSWORD_SERVICE, name)).not.toBeNull();
      expect(secretToolLookup(AGENT_SECRET_SERVICE, name)).not.toBeNull();
      expect(fs.existsSync(lockOf(name))).toBe(true);
      const journal = JSON.parse(fs.readFileSync(journalOf(name), 'utf8')) as {
        owner: { pid: number };
        steps: Array<{ step: string }>;
      };
      expect(journal.owner.pid).toBe(run.pid);
      expect(journal.steps.map((s) => s.step)).toEqual(['begin', 'keyring', 'config-disk', 'disk']);

      const refused = await runCli(importArgs(name), env, 120_000);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('left unfinished');
      expect(refused.stderr).toContain('vm-provisioner gc');
      expect(refused.stderr).toContain(`vm-provisioner destroy ${name}`);

      const gc = await runCli(['gc'], env, 120_000);
      expect(gc.stderr).toBe('');
      expect(gc.code).toBe(0);
      expect(gc.stdout).toContain(`${name}: removed the unfinished create`);
      expect(gc.stdout).toContain(own(name, '-config.img'));
      expectNothingLeft(name);

      await createAndDestroy(name);
    });

    test('SIGKILL once the domain is defined: destroy NAME removes the domain, files, keyring entries and lock', async () => {
      const name = newName('kill-config');
      const run = startCreate(name, 'config');
      await stopped(run);
      process.kill(run.pid, 'SIGKILL');
      await run.exited;
      expect(allDomainNames()).toContain(name);
      expect(fs.existsSync(own(name, '-vmlinuz'))).toBe(true);

      const destroyed = await runCli(['destroy', name, '--yes', '--connect', LIBVIRT_TEST_URI], env, 120_000);
      expect(destroyed.stderr).toBe('');
      expect(destroyed.code).toBe(0);
      expect(destroyed.stdout).toContain(`${name}: removed the unfinished create`);
      expectNothingLeft(name);

      await createAndDestroy(name);
    });

    test('SIGKILL before the keyring call: gc removes the journal and lock and nothing else is there', async () => {
      const name = newName('kill-keyring');
      const run = startCreate(name, 'keyring');
      await stopped(run);
      process.kill(run.pid, 'SIGKILL');
      await run.exited;
      const gc = await runCli(['gc'], env, 120_000);
      expect(gc.code).toBe(0);
      expect(gc.stdout).toContain(`${name}: removed the unfinished create`);
      expectNothingLeft(name);
    });

    test('gc leaves a live create alone; that create then finishes', async () => {
      const name = newName('live');
      const run = startCreate(name, 'disk');
      await stopped(run);
      const gc = await runCli(['gc'], env, 120_000);
      expect(gc.code).toBe(0);
      expect(gc.stdout).toContain(
        `${name}: still being created (create --import, pid ${run.pid}); left alone`,
      );
      expect(fs.existsSync(own(name, '-config.img'))).toBe(true);
      expect(fs.existsSync(journalOf(name))).toBe(true);
      expect(secretToolLookup(PASSWORD_SERVICE, name)).not.toBeNull();

      const destroyLive = await runCli(
        ['destroy', name, '--yes', '--connect', LIBVIRT_TEST_URI],
        env,
        120_000,
      );
      expect(destroyLive.code).not.toBe(0);
      expect(destroyLive.stderr).toContain('still being created');
      expect(fs.existsSync(own(name, '-config.img'))).toBe(true);

      process.kill(run.pid, 'SIGCONT');
      const exit = await run.exited;
      expect(exit.stderr).toBe('');
      expect(exit.code).toBe(0);
      expect(fs.existsSync(journalOf(name))).toBe(false);
      const destroyed = await runCli(['destroy', name, '--yes', '--connect', LIBVIRT_TEST_URI], env, 120_000);
      expect(destroyed.code).toBe(0);
      expectNothingLeft(name);
    });

    // `committed`: in the service, config written; `reported`: in the CLI, after printing "Created".
    test.each(['committed', 'reported'])('Ctrl+C at %s: exit 0, the VM is kept', async (point) => {
      const name = newName(`late-${point}`);
      const run = startCreate(name, point);
      await stopped(run);
      // Pending while stopped; delivered the moment it continues.
      process.kill(run.pid, 'SIGINT');
      process.kill(run.pid, 'SIGCONT');
      const exit = await run.exited;
      expect(exit.signal).toBeNull();
      expect(exit.code).toBe(0);
      expect(exit.stdout).toContain(`Created VM "${name}"`);
      expect(exit.stderr).toContain('the VM is kept');
      expect(allDomainNames()).toContain(name);
      expect(fs.existsSync(path.join(dirs.config, `${name}.toml`))).toBe(true);
      expect(fs.existsSync(journalOf(name))).toBe(false);
      expect(secretToolLookup(PASSWORD_SERVICE, name)).not.toBeNull();
      const destroyed = await runCli(['destroy', name, '--yes', '--connect', LIBVIRT_TEST_URI], env, 120_000);
      expect(destroyed.code).toBe(0);
      expectNothingLeft(name);
    });

    test('Ctrl+C just before the domain is defined: exit 130 and nothing left', async () => {
      const name = newName('int-domain');
      const run = startCreate(name, 'domain');
      await stopped(run);
      process.kill(run.pid, 'SIGINT');
      process.kill(run.pid, 'SIGCONT');
      const exit = await run.exited;
      expect(exit.code).toBe(130);
      expect(exit.stdout).not.toContain('Created VM');
      expectNothingLeft(name);
    });

    describeWith(probeDisposableSecretService(), 'a disposable Secret Service')(
      'Ctrl+C to the whole process group while the password is being stored',
      () => {
        test('the keyring helper dies with the CLI: exit 130 as an interrupt, nothing left', async () => {
          const name = newName('int-keyring');
          const daemon = secretServicePid();
          // Frozen, the Secret Service holds the helper inside its keyring call.
          process.kill(daemon, 'SIGSTOP');
          let run: Running | undefined;
          try {
            run = startCreate(name);
            const cli = run.pid;
            await until('the keyring helper runs', () => {
              try {
                execFileSync('pgrep', ['-P', String(cli), '-f', 'keyring-worker'], { stdio: 'ignore' });
                return true;
              } catch {
                return false;
              }
            });
            await new Promise((r) => setTimeout(r, 500));
            // As a terminal's Ctrl+C: the CLI and its helper both get SIGINT.
            process.kill(-cli, 'SIGINT');
          } finally {
            process.kill(daemon, 'SIGCONT');
          }
          const exit = await run.exited;
          expect(exit.stderr).not.toContain('keyring helper failed');
          expect(exit.stderr).toContain('interrupted');
          expect(exit.code).toBe(130);
          expectNothingLeft(name);
        });
      },
    );
  },
);
