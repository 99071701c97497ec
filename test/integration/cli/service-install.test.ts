import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeWith } from '../../support/services.js';
import { probeCommand } from '../../support/tools.js';

/**
 * `service install` through the built CLI: the unit it writes runs THIS
 * install (node and dist/src/cli/main.js by absolute, existing paths), points
 * its Documentation= at a file that exists, and passes systemd-analyze
 * --user verify. No user manager is reachable in the test's session (an empty
 * XDG_RUNTIME_DIR), so the command must say exactly what to run instead.
 */

const CLI = path.resolve('dist/src/cli/main.js');
let home: string;

beforeAll(() => {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
});
beforeEach(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-service-'));
  fs.mkdirSync(path.join(home, 'run'), { mode: 0o700 });
});
afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

function cli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    env: {
      PATH: process.env.PATH,
      HOME: home,
      XDG_CONFIG_HOME: path.join(home, 'config'),
      XDG_RUNTIME_DIR: path.join(home, 'run'),
      FORCE_COLOR: '0',
    },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const unitFile = (): string => path.join(home, 'config', 'systemd', 'user', 'vm-provisioner-proxy.service');

test('--dry-run prints the unit: this install by absolute path, existing documentation; writes nothing', () => {
  const r = cli('service', 'install', '--dry-run');
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  const exec = /^ExecStart=(\S+) (\S+) proxy$/m.exec(r.stdout);
  expect(exec).not.toBeNull();
  expect(exec![1]).toBe(fs.realpathSync(process.execPath));
  expect(exec![2]).toBe(fs.realpathSync(CLI));
  for (const file of [exec![1]!, exec![2]!]) expect(path.isAbsolute(file) && fs.existsSync(file)).toBe(true);
  const docs = /^Documentation=(.+)$/m.exec(r.stdout)![1]!.split(' ');
  const files = docs.filter((d) => d.startsWith('file://')).map((d) => fileURLToPath(d.replace(/%%/g, '%')));
  expect(files).toEqual([path.resolve('README.md')]);
  expect(fs.existsSync(path.join(home, 'config'))).toBe(false);
  // A --connect given here is baked into the unit.
  expect(cli('service', 'install', '--dry-run', '-c', 'qemu:///session').stdout).toMatch(
    /^ExecStart=\S+ \S+ proxy --connect qemu:\/\/\/session$/m,
  );
});

test('without a reachable user systemd it writes the unit and says exactly what to run', () => {
  const r = cli('service', 'install');
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  const lines = r.stdout.split('\n');
  expect(lines[0]).toBe(`wrote ${unitFile()}`);
  expect(lines[1]).toMatch(
    /^no user systemd reachable \(.+\); in your desktop session run: systemctl --user daemon-reload && systemctl --user enable --now vm-provisioner-proxy\.service$/,
  );
  expect(fs.readFileSync(unitFile(), 'utf8')).toBe(cli('service', 'install', '--dry-run').stdout);
  expect(fs.statSync(unitFile()).mode & 0o777).toBe(0o644);
  expect(cli('service', 'install').stdout.split('\n')[0]).toBe(`unchanged: ${unitFile()}`);
  expect(fs.readdirSync(path.dirname(unitFile()))).toEqual(['vm-provisioner-proxy.service']);
});

test('bad input is one line, exit 2, nothing written', () => {
  const r = cli('service', 'install', '-c', 'not a uri');
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/^error: invalid libvirt URI "not a uri": [^\n]+\n$/);
  expect(fs.existsSync(path.join(home, 'config'))).toBe(false);
  const nothing = cli('service');
  expect(nothing.code).toBe(2);
  expect(nothing.stderr).toMatch(/^error: [^\n]+\n$/);
});

describeWith(probeCommand('systemd-analyze', ['--version']), 'systemd-analyze')('the written unit', () => {
  test('passes systemd-analyze --user verify (ExecStart executable, no unknown keys)', () => {
    expect(cli('service', 'install').code).toBe(0);
    const r = spawnSync('systemd-analyze', ['--user', '--man=no', 'verify', unitFile()], {
      encoding: 'utf8',
      timeout: 30_000,
      env: {
        ...process.env,
        XDG_RUNTIME_DIR: path.join(home, 'run'),
        XDG_CONFIG_HOME: path.join(home, 'config'),
      },
    });
    // Unknown keys are only warned about on stderr (exit 0), so stderr must be empty too.
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
  });
});
