import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../../../src/cli/run.js';
import { NOT_A_TERMINAL_WARNING } from '../../../src/cli/commands/passwords.js';
import { provisionVmCredentials, removeVmCredentials } from '../../../src/secrets/credentials.js';
import { defaultSpec } from '../../../src/spec/defaults.js';
import { FileConfigStore } from '../../../src/spec/store.js';
import { assertNoSecretsInTree } from '../../support/no-secrets.js';
import { probeDisposableSecretService, secretServicePid } from '../../support/keyring-control.js';
import { describeWith, probeSecretService } from '../../support/services.js';

const vmName = (): string => `vmp-t-sec-${randomBytes(4).toString('hex')}`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in-process with stdout/stderr captured and stdout's TTY flag set as asked. */
async function cli(args: string[], { tty = false } = {}): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const { write: outWrite } = process.stdout;
  const { write: errWrite } = process.stderr;
  const hadTty = Object.getOwnPropertyDescriptor(process.stdout, 'isTTY');
  Object.defineProperty(process.stdout, 'isTTY', { value: tty, configurable: true, writable: true });
  process.stdout.write = ((chunk: string | Uint8Array) =>
    out.push(String(chunk)) > 0) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) =>
    err.push(String(chunk)) > 0) as typeof process.stderr.write;
  const savedExitCode = process.exitCode;
  try {
    const code = await runCli(args);
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    process.stdout.write = outWrite;
    process.stderr.write = errWrite;
    if (hadTty) Object.defineProperty(process.stdout, 'isTTY', hadTty);
    else delete (process.stdout as { isTTY?: boolean }).isTTY;
    process.exitCode = savedExitCode;
  }
}

// eslint-disable-next-line no-control-regex
const stripAnsi = (s: string): string => s.replace(/\u001b\[[0-9;]*m/g, '');

describeWith(probeSecretService(), 'passwords command')('vm-provisioner passwords', () => {
  const names = [vmName(), vmName()].sort();
  /** Has a config file but no keyring entry. */
  const lost = vmName();
  const passwords = new Map<string, string>();
  const savedConfigHome = process.env.XDG_CONFIG_HOME;
  let configHome = '';

  beforeAll(async () => {
    configHome = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-sec-config-'));
    process.env.XDG_CONFIG_HOME = configHome;
    for (const name of names) passwords.set(name, (await provisionVmCredentials(name)).password);
    const store = new FileConfigStore();
    for (const name of [names[0] as string, lost]) await store.write(defaultSpec(name));
  });
  afterAll(async () => {
    for (const name of names) await removeVmCredentials(name);
    if (savedConfigHome === undefined) delete process.env.XDG_CONFIG_HOME;
    else process.env.XDG_CONFIG_HOME = savedConfigHome;
    fs.rmSync(configHome, { recursive: true, force: true });
  });

  test('lists every VM with its password, and warns when stdout is not a terminal', async () => {
    const run = await cli(['passwords']);
    expect(run.code).toBe(0);
    const lines = run.stdout.split('\n');
    expect(lines[0]).toMatch(/^NAME +PASSWORD$/);
    const pad = (n: string): string => n.padEnd(Math.max(4, ...[...names, lost].map((x) => x.length)));
    for (const name of names) expect(lines).toContain(`${pad(name)}  ${passwords.get(name)}`);
    // A configured VM whose keyring entry is gone is shown, not hidden.
    expect(lines).toContain(`${pad(lost)}  (not in keyring)`);
    expect(run.stderr).toBe(NOT_A_TERMINAL_WARNING);
    // The config dir never holds a password.
    assertNoSecretsInTree(configHome, [...passwords.values()]);
  });

  test('on a terminal there is no warning', async () => {
    const run = await cli(['passwords', names[0] as string], { tty: true });
    expect(run).toEqual({ code: 0, stdout: `${passwords.get(names[0] as string)}\n`, stderr: '' });
  });

  test('--json lists objects; with NAME it prints one', async () => {
    const all = await cli(['passwords', '--json'], { tty: true });
    expect(all.code).toBe(0);
    const parsed = JSON.parse(all.stdout) as Array<{ name: string; password: string | null }>;
    for (const name of names) expect(parsed).toContainEqual({ name, password: passwords.get(name) });
    expect(parsed).toContainEqual({ name: lost, password: null });
    const one = await cli(['passwords', names[1] as string, '--json'], { tty: true });
    expect(JSON.parse(one.stdout)).toEqual({ name: names[1], password: passwords.get(names[1] as string) });
  });

  test('an unknown NAME is a one-line error with exit code 2', async () => {
    const missing = vmName();
    const run = await cli(['passwords', missing]);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(stripAnsi(run.stderr)).toBe(
      `error: no password for VM "${missing}" in the keyring (service vm-provisioner)\n`,
    );
  });

  test('an invalid NAME is a one-line error with exit code 2', async () => {
    const run = await cli(['passwords', 'Not/A/Name']);
    expect(run.code).toBe(2);
    expect(stripAnsi(run.stderr)).toMatch(/^error: invalid VM name "Not\/A\/Name": [^\n]+\n$/);
  });
});

/** The built CLI, as users run it: proves the worker is found from dist/ and the process exits. */
const DIST_CLI = path.resolve('dist/src/cli/main.js');

describeWith(probeSecretService(), 'passwords command from dist/')('vm-provisioner passwords (built)', () => {
  beforeAll(() => {
    if (!fs.existsSync(path.resolve('dist/src/secrets/keyring-worker.js'))) {
      throw new Error('dist/ has no keyring worker: run `npm run build` before these tests');
    }
  });

  test('shows a stored password', async () => {
    const name = vmName();
    const { password } = await provisionVmCredentials(name);
    try {
      const run = spawnSync(process.execPath, [DIST_CLI, 'passwords', name], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(run.status).toBe(0);
      expect(run.stdout).toBe(`${password}\n`);
      expect(run.stderr).toBe(NOT_A_TERMINAL_WARNING);
    } finally {
      await removeVmCredentials(name);
    }
  });
});

describeWith(probeDisposableSecretService(), 'frozen keyring')(
  'vm-provisioner passwords (built) with a frozen keyring',
  () => {
    test('with the Secret Service frozen, it fails with a timeout error at the deadline and the process exits', () => {
      const pid = secretServicePid();
      process.kill(pid, 'SIGSTOP');
      let run;
      try {
        run = spawnSync(process.execPath, [DIST_CLI, 'passwords'], {
          encoding: 'utf8',
          // If the CLI could not exit, spawnSync would kill it here and status would be null.
          timeout: 20_000,
          env: { ...process.env, VMP_KEYRING_TIMEOUT_MS: '1500' },
        });
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      expect(run.signal).toBeNull();
      expect(run.status).toBe(1);
      expect(run.stdout).toBe('');
      expect(stripAnsi(run.stderr)).toMatch(
        /^error: the keyring did not answer within 1500 ms \(list vm-provisioner\); [^\n]+\n$/,
      );
    });
  },
);
