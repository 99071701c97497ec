import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KeyringSecretStore } from '../../../src/secrets/keyring.js';
import { TimeoutError } from '../../../src/util/errors.js';
import { probeDisposableSecretService, secretServicePid } from '../../support/keyring-control.js';
import { describeWith, type Probe } from '../../support/services.js';

/**
 * Issue 20 item 14: every operation, and both `create` (store) and
 * `passwords` (list, get), classify a keyring failure the same way, as
 * docs/secrets.md says.
 */

const DIST_KEYRING = path.resolve('dist/src/secrets/keyring.js');
const CLI = path.resolve('dist/src/cli/main.js');

function haveTools(): Probe {
  for (const tool of ['dbus-run-session', 'gnome-keyring-daemon', 'gdbus']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return { available: false, reason: `${tool} is not installed` };
    }
  }
  if (!fs.existsSync(DIST_KEYRING)) return { available: false, reason: 'run npm run build first' };
  return { available: true, reason: '' };
}

describeWith(haveTools(), 'dbus-run-session + gnome-keyring')(
  'a Secret Service that D-Bus starts on demand, with no default collection',
  () => {
    test('list, get and set all say "no usable Secret Service"; passwords exits 1, not 0 with "(not in keyring)"', () => {
      const home = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-sec-nocoll-'));
      try {
        const config = path.join(home, '.config', 'vm-provisioner');
        fs.mkdirSync(config, { recursive: true });
        fs.writeFileSync(path.join(config, 'vmp-t-sec-vm.toml'), 'name = "vmp-t-sec-vm"\n');
        const script = `
          const { KeyringSecretStore } = await import(${JSON.stringify(DIST_KEYRING)});
          const store = new KeyringSecretStore('vmp-t-sec-nocoll', { timeoutMs: 20000 });
          const out = {};
          for (const [op, run] of [['list', () => store.list()], ['get', () => store.get('a')], ['set', () => store.set('a', 'some-secret-value')]]) {
            out[op] = await run().then((v) => 'ok ' + JSON.stringify(v), (e) => e.constructor.name + ': ' + e.message);
          }
          console.log(JSON.stringify(out));
        `;
        const env: NodeJS.ProcessEnv = {
          PATH: process.env.PATH,
          HOME: home,
          XDG_CONFIG_HOME: path.join(home, '.config'),
        };
        const lib = spawnSync(
          'dbus-run-session',
          ['--', process.execPath, '--input-type=module', '-e', script],
          { env, encoding: 'utf8', timeout: 60_000 },
        );
        const results = JSON.parse(lib.stdout.trim().split('\n').pop()!) as Record<string, string>;
        for (const op of ['list', 'get', 'set']) {
          expect(results[op]).toMatch(/^ServiceUnavailableError: no usable Secret Service \(/);
        }
        expect(results.list).toContain('the Secret Service has no default collection');
        for (const args of [['passwords'], ['passwords', 'vmp-t-sec-vm']]) {
          const cli = spawnSync('dbus-run-session', ['--', process.execPath, CLI, ...args], {
            env,
            encoding: 'utf8',
            timeout: 60_000,
          });
          expect(cli.status).toBe(1);
          // The activated daemon prints its GNOME_KEYRING_CONTROL to the session's stdout; no table.
          expect(cli.stdout).not.toMatch(/NAME|not in keyring/);
          const errorLines = cli.stderr.split('\n').filter((l) => l.startsWith('error: '));
          expect(errorLines).toHaveLength(1);
          expect(errorLines[0]).toMatch(
            /^error: no usable Secret Service \((list|get) vm-provisioner.*: the Secret Service has no default collection\); run gnome-keyring/,
          );
        }
      } finally {
        fs.rmSync(home, { recursive: true, force: true });
      }
    }, 120_000);
  },
);

describeWith(probeDisposableSecretService(), 'frozen keyring')('a frozen Secret Service', () => {
  const saved = { DISPLAY: process.env.DISPLAY, WAYLAND_DISPLAY: process.env.WAYLAND_DISPLAY };
  beforeAll(() => {
    delete process.env.DISPLAY;
    delete process.env.WAYLAND_DISPLAY;
  });
  afterAll(() => {
    for (const [k, v] of Object.entries(saved)) if (v !== undefined) process.env[k] = v;
  });

  // A deadline longer than libdbus's own reply timeout (about 2 s), which used to
  // surface first as "DBus error: Did not receive a reply" = "no usable Secret Service".
  test.each(['list', 'get', 'set'] as const)(
    '%s: the documented TimeoutError at our deadline, not "no usable Secret Service"',
    async (op) => {
      const store = new KeyringSecretStore(`vmp-t-sec-frozen-${op}`, { timeoutMs: 4000 });
      const pid = secretServicePid();
      process.kill(pid, 'SIGSTOP');
      let err: unknown;
      let elapsed: number;
      try {
        const started = Date.now();
        const work =
          op === 'list'
            ? store.list()
            : op === 'get'
              ? store.get('vmp-t-sec-a')
              : store.set('vmp-t-sec-a', 'frozen-secret-1');
        err = await work.then(
          () => null,
          (e: unknown) => e,
        );
        elapsed = Date.now() - started;
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      expect(err).toBeInstanceOf(TimeoutError);
      expect((err as Error).message).toMatch(/^the keyring did not answer within 4 s \(/);
      expect((err as Error).message).not.toContain('frozen-secret-1');
      expect(elapsed).toBeGreaterThanOrEqual(4000);
      expect(elapsed).toBeLessThan(4000 + 5000);
      if (op === 'set') await store.delete('vmp-t-sec-a');
    },
    30_000,
  );
});
