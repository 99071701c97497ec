import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { jest } from '@jest/globals';
import { describeDomain } from '../../../src/libvirt/inspect.js';
import { ControlServer } from '../../../src/proxy/control-socket.js';
import { ProxyServer } from '../../../src/proxy/server.js';
import { validateRunArgv } from '../../../src/service/run.js';
import { keyringCredentialStores } from '../../../src/secrets/credentials.js';
import { AGENT_SECRET_SERVICE, PASSWORD_SERVICE } from '../../../src/service/ports.js';
import { CLI, runCli } from '../../support/cli.js';
import { secretToolLookup } from '../../support/keyring-control.js';
import { allDomainNames, qemuImgCreate, removeDomain, removePoolsUnder, virsh } from '../../support/libvirt-fixture.js';
import { describeWith, LIBVIRT_TEST_URI, probeLibvirt, probeSecretService } from '../../support/services.js';
import { allOf } from '../../support/tools.js';
import { waitStopped } from '../../support/processes.js';

jest.setTimeout(300_000);

/**
 * `run --disposable` on the host side, with the built CLI against the real
 * libvirtd, its storage API, the real Secret Service and a real proxy: bad
 * input refused in one line with nothing made; a disposable made on a
 * template (a blank qcow2 that SeaBIOS starts and never boots, so no agent
 * ever connects: the e2e test boots the real guest) and removed with every
 * file of it when its command cannot start, on SIGTERM, on `destroy`, and by
 * `gc` after a SIGKILL before or after its domain existed.
 */

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

describeWith(allOf(probeLibvirt(), probeSecretService()), 'libvirt and a Secret Service')(
  'disposables (run --disposable) on a template',
  () => {
    let root: string;
    let env: NodeJS.ProcessEnv;
    let proxy: ProxyServer;
    let control: ControlServer;
    const template = `vmp-t-disp-${randomBytes(3).toString('hex')}`;
    /** Every disposable name a CLI said it made, for the final check and cleanup. */
    const seen = new Set<string>();
    const stores = keyringCredentialStores();
    const at = (...parts: string[]): string => path.join(root, ...parts);
    const vms = (): string => at('vms');
    /** The connection goes before `--`: everything after it is the command, word for word. */
    const withConnect = (args: string[]): string[] => {
      const dashes = args.indexOf('--');
      const connect = ['--connect', LIBVIRT_TEST_URI];
      return dashes < 0 ? [...args, ...connect] : [...args.slice(0, dashes), ...connect, ...args.slice(dashes)];
    };
    const cli = (args: string[], timeoutMs = 120_000) => runCli(withConnect(args), env, timeoutMs);
    const note = (stderr: string): void => {
      for (const m of stderr.matchAll(/\b(disp\d{4})\b/g)) seen.add(m[1]!);
    };

    /** Disposables on this test's template that libvirt has. */
    const disposablesOnTemplate = (): string[] =>
      allDomainNames().filter((name) => {
        if (!/^disp\d{4}$/.test(name)) return false;
        try {
          const d = describeDomain(virsh('dumpxml', name, '--inactive'));
          return d.role === 'disposable' && d.template?.name === template;
        } catch {
          return false; // gone meanwhile
        }
      });

    function expectNothingLeft(): void {
      expect(disposablesOnTemplate()).toEqual([]);
      expect(fs.readdirSync(vms()).filter((f) => f.startsWith('disp'))).toEqual([]);
      const configs = fs.existsSync(at('config', 'vm-provisioner'))
        ? fs.readdirSync(at('config', 'vm-provisioner')).filter((f) => f.startsWith('disp'))
        : [];
      expect(configs).toEqual([]);
      for (const dir of ['disposables', 'journal']) {
        const full = at('state', 'vm-provisioner', dir);
        expect(fs.existsSync(full) ? fs.readdirSync(full) : []).toEqual([]);
      }
      const logs = at('state', 'vm-provisioner', 'logs');
      expect(fs.existsSync(logs) ? fs.readdirSync(logs).filter((f) => f.startsWith('disp')) : []).toEqual([]);
      for (const name of seen) {
        expect(secretToolLookup(PASSWORD_SERVICE, name)).toBeNull();
        expect(secretToolLookup(AGENT_SECRET_SERVICE, name)).toBeNull();
      }
    }

    /** Starts a disposable CLI in the background; its output is collected. */
    function spawnRun(args: string[], extraEnv: NodeJS.ProcessEnv = {}): { child: ChildProcess; exited: Promise<Exit> } {
      const child = spawn(
        process.execPath,
        [CLI, ...withConnect(['run', '--disposable', '--template', template, '--no-viewer', ...args])],
        { env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr!.on('data', (c: Buffer) => {
        stderr += c.toString();
        note(stderr);
      });
      const exited = new Promise<Exit>((resolve) =>
        child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
      );
      return { child, exited };
    }

    /** Waits until the disposable runs (libvirt says so) and returns its name. */
    async function runningDisposable(exited: Promise<Exit>): Promise<string> {
      let exit: Exit | undefined;
      void exited.then((e) => (exit = e));
      const deadline = Date.now() + 120_000;
      for (;;) {
        if (exit) throw new Error(`the CLI ended first: ${JSON.stringify(exit)}`);
        const running = disposablesOnTemplate().filter((n) => virsh('domstate', n).trim() === 'running');
        if (running.length === 1) return running[0]!;
        if (Date.now() > deadline) throw new Error('no disposable came to run');
        await new Promise((r) => setTimeout(r, 200));
      }
    }

    beforeAll(async () => {
      root = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-disp-'));
      fs.chmodSync(root, 0o711);
      for (const dir of ['home', 'tmp', 'config', 'state', 'src', 'run']) fs.mkdirSync(at(dir), { mode: 0o700 });
      fs.mkdirSync(vms(), { mode: 0o711 });
      qemuImgCreate(at('src', 'base.qcow2'), '64M');
      env = {
        PATH: process.env.PATH,
        HOME: at('home'),
        XDG_CONFIG_HOME: at('config'),
        XDG_STATE_HOME: at('state'),
        XDG_RUNTIME_DIR: at('run'),
        TMPDIR: at('tmp'),
        DBUS_SESSION_BUS_ADDRESS: process.env.DBUS_SESSION_BUS_ADDRESS,
        NO_COLOR: '1',
      };
      // The template is a blank disk with no guest to save a ready state of: these are the cold-boot starter's
      // tests (clones: test/e2e/disposable.e2e.test.ts, on a real guest).
      fs.mkdirSync(at('config', 'vm-provisioner'), { mode: 0o700 });
      fs.writeFileSync(at('config', 'vm-provisioner', 'defaults.toml'), 'disposable_clones = false\n');
      proxy = new ProxyServer({ listen: [{ host: '127.0.0.1', port: 0 }], lookupSecret: async () => null, log: () => undefined });
      await proxy.start();
      // Where the CLI looks by default: $XDG_RUNTIME_DIR/vm-provisioner/proxy.sock.
      control = new ControlServer(proxy, { socketPath: at('run', 'vm-provisioner', 'proxy.sock'), log: () => undefined });
      await control.start();
      const imported = await cli(
        ['template', 'import', template, at('src', 'base.qcow2'), '--virt-type', 'qemu', '--network', 'user', '--memory', '256', '--vm-dir', vms()],
        300_000,
      );
      expect({ code: imported.code, stderr: imported.stderr }).toEqual({ code: 0, stderr: '' });
    });

    afterAll(async () => {
      for (const name of new Set([...seen, ...disposablesOnTemplate()])) {
        removeDomain(name);
        await stores.passwords.delete(name).catch(() => undefined);
        await stores.agentSecrets.delete(name).catch(() => undefined);
      }
      removeDomain(template);
      await stores.passwords.delete(template).catch(() => undefined);
      await stores.agentSecrets.delete(template).catch(() => undefined);
      await control?.close();
      await proxy?.close();
      if (root) {
        removePoolsUnder(root);
        fs.rmSync(root, { recursive: true, force: true });
      }
    });

    describe('bad input: one line, exit 2, nothing made', () => {
      test.each([
        [['--template', 'vmp-t-no-such-template', '--', 'xterm'], /^error: no template named 'vmp-t-no-such-template'/],
        [['--template', template, '--', 'xterm', 'a\nb'], /^error: invalid command "xterm a\\nb": argv\[1\] contains a control character/],
        [['--template', template, '--', 'sh -c reboot'], /^error: invalid command "sh -c reboot": argv\[0\] must be a program name/],
        [['--template', template, '--flatpak', 'org.example.App;reboot'], /^error: .*org\.example\.App;reboot/],
        [['--template', template, '--flatpak', 'org.example.App', '--', 'xterm'], /^error: run --disposable: give either -- CMD or --flatpak ID, not both$/],
        [['--template', template], /^error: run --disposable: name a command after --/],
        [['--template', template, '--timeout', '0', '--', 'xterm'], /^error: invalid --timeout 0 s: must be 1 to 600$/],
      ])('run --disposable %j', async (args, message) => {
        const r = await cli(['run', '--disposable', ...args]);
        expect(r.code).toBe(2);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr.trim()).toMatch(message);
        expect(r.stdout).toBe('');
        expectNothingLeft();
      });

      test('a NUL byte cannot reach the agent: refused by the argv rule (a process argv cannot carry one)', () => {
        expect(() => validateRunArgv(['xterm', 'a\u0000b'])).toThrow(
          /^invalid command "xterm a\\u0000b": argv\[1\] contains a control character \(NUL included\)$/,
        );
      });

      test('--template and --flatpak without --disposable; run with neither NAME nor --disposable', async () => {
        const t = await cli(['run', 'somevm', '--template', template, '--', 'xterm']);
        expect({ code: t.code, stderr: t.stderr }).toEqual({ code: 2, stderr: 'error: --template goes only with --disposable\n' });
        const none = await cli(['run']);
        expect(none.code).toBe(2);
        expect(none.stderr).toBe('error: run: name the VM (run NAME -- CMD), or pass --disposable\n');
      });

      test('no template at all (a connection without any): one line asking for one', async () => {
        const r = await runCli(['run', '--disposable', '--connect', 'test:///default', '--', 'xterm'], env);
        expect(r.code).toBe(2);
        expect(r.stderr).toBe(
          'error: run --disposable: there is no template; make one (template import or template create) and pass --template\n',
        );
      });
    });

    test('an agent that never connects: the disposable is made, started, and removed with every file; exit 1', async () => {
      const r = await cli(['run', '--disposable', '--template', template, '--no-viewer', '--timeout', '3', '--', 'xterm'], 180_000);
      note(r.stderr);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^disp\d{4}: disposable on template /m);
      expect(r.stderr).toMatch(/has not connected .*\(waited 3000 ms\)/);
      expect(r.stderr).toMatch(/^disp\d{4}: removed$/m);
      expectNothingLeft();
    });

    test('while it runs, list hides it and list --disposables marks it; SIGTERM removes everything (exit 143)', async () => {
      const { child, exited } = spawnRun(['--timeout', '120', '--', 'xterm']);
      const name = await runningDisposable(exited);
      const d = describeDomain(virsh('dumpxml', name, '--inactive'));
      expect(d.disposableOwner?.pid).toBe(child.pid);
      expect(fs.readdirSync(vms()).filter((f) => f.startsWith(name)).sort()).toEqual([
        `${name}-config.img`,
        `${name}-display.sock`,
        `${name}-private.qcow2`,
        `${name}-root.qcow2`,
        `${name}-wake.in`,
        `${name}-wake.out`,
      ]);
      expect(secretToolLookup(AGENT_SECRET_SERVICE, name)).toBeTruthy();
      const plain = JSON.parse((await cli(['list', '--json'])).stdout) as Array<{ name: string }>;
      expect(plain.map((v) => v.name)).not.toContain(name);
      const all = JSON.parse((await cli(['list', '--json', '--disposables'])).stdout) as Array<{
        name: string;
        disposable?: boolean;
        template?: string;
      }>;
      expect(all.find((v) => v.name === name)).toMatchObject({ disposable: true, template });
      expect((await cli(['list', '--disposables'])).stdout).toMatch(new RegExp(`^${name} \\(disposable\\)\\s+running`, 'm'));
      child.kill('SIGTERM');
      const exit = await exited;
      expect(exit.code).toBe(143);
      expect(exit.stderr).toContain('received SIGTERM: removing the disposable');
      expect(exit.stderr).toMatch(/error: terminated \(SIGTERM\): the disposable was removed\n$/);
      expectNothingLeft();
    });

    test('destroy of a running disposable removes it; its CLI then ends by itself', async () => {
      const { exited } = spawnRun(['--timeout', '120', '--', 'xterm']);
      const name = await runningDisposable(exited);
      const destroyed = await cli(['destroy', name, '--yes']);
      expect({ code: destroyed.code, stderr: destroyed.stderr }).toEqual({ code: 0, stderr: '' });
      expect(destroyed.stdout).toMatch(new RegExp(`^${name}: disposable destroyed \\(`));
      const exit = await exited;
      expect(exit.stderr).toContain(`${name}: already removed`);
      expectNothingLeft();
    });

    test.each([
      ['before its domain exists (stopped at the journal step "domain")', 'domain'],
      ['once it runs and waits for its agent', undefined],
    ])('SIGKILL of the CLI %s: gc removes everything, a live one is left alone', async (_when, stopAt) => {
      const live = spawnRun(['--timeout', '120', '--', 'xterm']);
      const liveName = await runningDisposable(live.exited);
      const killed = spawnRun(['--timeout', '120', '--', 'xterm'], stopAt ? { VMP_TEST_STOP_AT: stopAt } : {});
      if (stopAt) {
        await waitStopped(killed.child.pid!, killed.exited);
      } else {
        const deadline = Date.now() + 120_000;
        while (disposablesOnTemplate().filter((n) => n !== liveName && virsh('domstate', n).trim() === 'running').length === 0) {
          if (Date.now() > deadline) throw new Error('the second disposable never ran');
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      killed.child.kill('SIGKILL');
      await killed.exited;
      const records = fs.readdirSync(at('state', 'vm-provisioner', 'disposables'));
      expect(records.length).toBe(2);
      const gc = await cli(['gc'], 180_000);
      expect({ code: gc.code, stderr: gc.stderr }).toEqual({ code: 0, stderr: '' });
      expect(gc.stdout).toMatch(/^disp\d{4}: removed the disposable whose owner is gone \(/m);
      expect(gc.stdout).not.toContain(liveName);
      // The live one is untouched.
      expect(disposablesOnTemplate()).toEqual([liveName]);
      expect(fs.readdirSync(at('state', 'vm-provisioner', 'disposables'))).toEqual([`${liveName}.json`]);
      live.child.kill('SIGINT');
      expect((await live.exited).code).toBe(130);
      expectNothingLeft();
    });
  },
);
