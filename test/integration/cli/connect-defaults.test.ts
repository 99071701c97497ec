import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * The global --connect/-c and the user's defaults file, through the built CLI
 * with HOME and XDG_CONFIG_HOME in a temp dir: the plan names the connection
 * really used and where it came from; every command accepts -c; a bad
 * defaults file is a one-line error naming file:line, exit 2, nothing made.
 */

const CLI = path.resolve('dist/src/cli/main.js');

let home: string;
let config: string;

beforeAll(() => {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
});

beforeEach(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-defaults-cli-'));
  config = path.join(home, 'config', 'vm-provisioner');
  fs.mkdirSync(config, { recursive: true });
});

afterEach(() => {
  fs.rmSync(home, { recursive: true, force: true });
});

function cli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout: 20_000,
    cwd: home,
    env: {
      PATH: process.env.PATH,
      HOME: home,
      XDG_CONFIG_HOME: path.join(home, 'config'),
      XDG_RUNTIME_DIR: home,
      FORCE_COLOR: '0',
      ...env,
    },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const planLine = (stdout: string, key: string): string | undefined =>
  stdout.split('\n').find((line) => line.trimStart().startsWith(`${key}:`));

function writeDefaults(text: string): string {
  const file = path.join(config, 'defaults.toml');
  fs.writeFileSync(file, text);
  return file;
}

const DRY = ['create', '--system', 'git', '--dry-run'];

test('the plan shows the connection really used and where it came from, at each level', () => {
  expect(planLine(cli(DRY).stdout, 'connection')).toBe(
    '  connection:      qemu:///system (from default, domain type kvm)',
  );
  writeDefaults('connect = "qemu+ssh://vmhost/system"\n');
  expect(planLine(cli(DRY).stdout, 'connection')).toBe(
    '  connection:      qemu+ssh://vmhost/system (from ~/config/vm-provisioner/defaults.toml, domain type kvm)',
  );
  const env = { LIBVIRT_DEFAULT_URI: 'qemu:///session' };
  const fromEnv = cli(DRY, env).stdout;
  expect(planLine(fromEnv, 'connection')).toBe(
    '  connection:      qemu:///session (from LIBVIRT_DEFAULT_URI, domain type kvm)',
  );
  // The session connection has its own image directory, as with --connect qemu:///session.
  expect(planLine(fromEnv, 'disk')).toContain(`${home}/.local/share/libvirt/images/`);
  expect(planLine(cli([...DRY, '-c', 'test:///default'], env).stdout, 'connection')).toBe(
    '  connection:      test:///default (from --connect, domain type kvm)',
  );
  expect(planLine(cli([...DRY, '--connect', 'test:///default'], env).stdout, 'connection')).toBe(
    '  connection:      test:///default (from --connect, domain type kvm)',
  );
});

test('the defaults file sits below --config and flags', () => {
  // At most 2 vCPUs: more than the host's CPUs is refused without --force, and CI hosts may have 2.
  writeDefaults('memory_mb = 3072\nvcpus = 2\nlabel = "red"\n');
  fs.writeFileSync(path.join(home, 'c.toml'), 'vcpus = 1\n');
  const r = cli([...DRY, '--config', 'c.toml', '--memory', '2500']);
  expect(r.stderr).toBe('');
  expect(planLine(r.stdout, 'memory')).toBe('  memory:          2500 MiB');
  expect(planLine(r.stdout, 'vCPUs')).toBe('  vCPUs:           1');
  const plain = cli(DRY).stdout;
  expect(planLine(plain, 'memory')).toBe('  memory:          3072 MiB');
  expect(planLine(plain, 'vCPUs')).toBe('  vCPUs:           2');
});

test.each([
  ['memory = 4096\n', ':1: unknown key "memory" (did you mean memory_mb? see docs/spec.md for the keys)'],
  [
    'vcpus = 2\nlabel = "pink"\n',
    ':2: label: invalid label "pink": must be one of red, orange, yellow, green, blue, purple, gray, black',
  ],
  [
    'memory_mb = 1024\n',
    ':1: memory_mb: invalid memory 1024 MiB: must be at least 2048 MiB (the Fedora installer needs it; an imported VM or one on a template may have less)',
  ],
])('a bad defaults file %p: one line with file:line, exit 2, nothing made', (text, expected) => {
  const file = writeDefaults(text);
  const r = cli(['create', '--system', 'git', '--yes', '--connect', 'test:///default']);
  expect(r.code).toBe(2);
  expect(r.stderr).toBe(`error: ${file}${expected}\n`);
  expect(fs.readdirSync(config)).toEqual(['defaults.toml']);
  expect(fs.existsSync(path.join(home, '.local'))).toBe(false);
});

test('a bad connect in the defaults file stops a libvirt command only when nothing else decides', () => {
  const file = writeDefaults('connect = "no uri"\n');
  const r = cli(['list']);
  expect(r.code).toBe(2);
  expect(r.stderr).toBe(
    `error: ${file}:1: connect: invalid libvirt URI "no uri": must look like driver[+transport]://[user@host]/path, e.g. qemu:///system, without spaces\n`,
  );
  const listed = cli(['list', '--json', '-c', 'test:///default']);
  expect(listed.stderr).toBe('');
  expect(listed.code).toBe(0);
});

test.each([
  [['windows', '-c', 'test:///default']],
  [['windows', '--connect', 'test:///default', '--json']],
  [['clipboard', 'copy', 'some-vm', '-c', 'test:///default']],
  [['clipboard', '--connect', 'test:///default', 'paste', 'some-vm']],
  [['passwords', '--connect', 'test:///default', '--help']],
  [['gc', '-c', 'test:///default', '--help']],
])('every command accepts the global --connect/-c: %p', (args) => {
  const r = cli(args);
  expect(r.stderr).not.toMatch(/Unknown argument/i);
  // windows gets as far as the (absent) proxy, clipboard as far as the VM lookup: the option was accepted.
  if (args[0] === 'windows') expect(r.stderr).toMatch(/window proxy is not running/);
  else if (args[0] === 'clipboard') expect(r.stderr).toMatch(/^error: no VM named "some-vm"/);
  else expect(r.code).toBe(0);
});

test('"defaults" is refused as a VM name', () => {
  const r = cli(['create', '--name', 'defaults', '--dry-run']);
  expect(r.code).toBe(2);
  expect(r.stderr).toBe(
    'error: invalid VM name "defaults": is reserved: defaults.toml is your defaults file, not a VM; choose another name\n',
  );
});

test("the defaults file's template makes a plain create an app VM on it; --no-template installs instead", () => {
  writeDefaults('template = "vmp-t-nosuch-tmpl"\n');
  const r = cli(['create', '--system', 'git', '--dry-run', '-c', 'test:///default']);
  expect(r.code).toBe(2);
  expect(r.stderr).toBe(
    "error: no template named 'vmp-t-nosuch-tmpl' (at test:///default); see vm-provisioner template list " +
      '(template = "vmp-t-nosuch-tmpl" in ~/config/vm-provisioner/defaults.toml; --no-template to install instead)\n',
  );
  const installed = cli(['create', '--system', 'git', '--dry-run', '--no-template', '-c', 'test:///default']);
  expect(installed.stderr).toBe('');
  expect(planLine(installed.stdout, 'install')).toMatch(
    /^ {2}install: +Fedora \d+ x86_64 from the release mirror$/,
  );
});
