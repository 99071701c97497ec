import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * `gc` from the built CLI, without services: with no journal it touches
 * neither libvirt nor the keyring, and a damaged journal is reported, not
 * guessed at.
 */

const CLI = path.resolve('dist/src/cli/main.js');
let home: string;

beforeAll(() => {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
});

beforeEach(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-gc-cli-'));
});

afterEach(() => {
  fs.rmSync(home, { recursive: true, force: true });
});

function cli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout: 20_000,
    env: {
      PATH: process.env.PATH,
      HOME: home,
      XDG_STATE_HOME: path.join(home, 'state'),
      // No session bus and an unreachable libvirt: gc must not need them when there is nothing to do.
      LIBVIRT_DEFAULT_URI: 'qemu+unix:///system?socket=/nonexistent',
      FORCE_COLOR: '0',
    },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('gc is listed in --help', () => {
  const r = cli('--help');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/gc +Remove what unfinished/);
});

test('gc with no journal: nothing to clean up, exit 0, nothing written', () => {
  const r = cli('gc');
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toBe('nothing to clean up\n');
  expect(fs.readdirSync(home)).toEqual([]);
});

test('a damaged journal is reported and kept; exit 1', () => {
  const dir = path.join(home, 'state', 'vm-provisioner', 'journal');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'broken-vm.json'), '{"version": 1, "vm": "broken-vm"');
  const r = cli('gc');
  expect(r.code).toBe(1);
  expect(r.stderr).toContain('broken-vm: journal');
  expect(r.stderr).toContain('is not valid JSON');
  expect(fs.existsSync(path.join(dir, 'broken-vm.json'))).toBe(true);
});
