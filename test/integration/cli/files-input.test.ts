import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli as runInProcess } from '../../../src/cli/run.js';
import { runCli } from '../../support/cli.js';

/**
 * `open` and `copy-to-vm` refuse bad files before anything else happens: exit
 * 2, one line naming the file and the rule, no VM started, no proxy asked,
 * nothing written. (The checks come before the VM is looked up, so no VM or
 * proxy is needed here; a libvirt or proxy call would fail differently.)
 */

let home: string;
let files: string;

beforeAll(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-cli-files-'));
  files = path.join(home, 'files');
  fs.mkdirSync(files);
  fs.writeFileSync(path.join(files, 'ok.txt'), 'fine');
  fs.mkdirSync(path.join(files, 'a-dir'));
  fs.symlinkSync(path.join(files, 'ok.txt'), path.join(files, 'link.txt'));
  execFileSync('mkfifo', [path.join(files, 'pipe')]);
  // Sparse: 64 MiB + 1 byte of apparent size, no disk used.
  execFileSync('truncate', ['-s', String(64 * 1024 * 1024 + 1), path.join(files, 'huge.bin')]);
  fs.writeFileSync(path.join(files, '.hidden'), 'x');
  fs.writeFileSync(path.join(files, 'tab\there'), 'x');
});

afterAll(() => {
  fs.rmSync(home, { recursive: true, force: true });
});

function env(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, 'config'),
    XDG_RUNTIME_DIR: path.join(home, 'run'),
    // No keyring, no libvirt, no proxy: nothing here may get that far.
    DBUS_SESSION_BUS_ADDRESS: `unix:path=${path.join(home, 'no-bus')}`,
    FORCE_COLOR: '0',
  };
}

const f = (name: string): string => path.join(files, name);

test.each([
  ['a missing file', 'missing.txt', 'no such file'],
  ['a directory', 'a-dir', 'it is a directory; only regular files are sent'],
  ['a symlink', 'link.txt', 'it is a symbolic link; only regular files are sent (name the target)'],
  ['a FIFO', 'pipe', 'it is a FIFO; only regular files are sent'],
  ['a file over 64 MiB', 'huge.bin', 'it is 67108865 bytes; the limit is 67108864 (64 MiB)'],
  ['a name starting with a dot', '.hidden', "the name starts with '.'"],
  ['a name with a control character', 'tab\there', 'the name contains a control character (NUL included)'],
])('%s: exit 2 and one line naming the file and the rule', async (_what, name, rule) => {
  for (const args of [
    ['open', 'vmp-t-files', f(name)],
    ['open', 'vmp-t-files', f(name), '--writeback'],
    ['copy-to-vm', 'vmp-t-files', f('ok.txt'), f(name)],
    // Checked before a template is chosen or anything made: no libvirt here either.
    ['open', '--disposable', f(name)],
    ['open', '--disposable', '--template', 'vmp-t-tmpl', f(name), '--writeback'],
  ]) {
    const r = await runCli(args, env());
    expect(r.code).toBe(2);
    const shown = JSON.stringify(f(name));
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(`invalid file ${shown}: ${rule}`);
    expect(r.stdout).toBe('');
  }
  // Nothing was made: no proxy socket directory, no config.
  expect(fs.readdirSync(home).sort()).toEqual(['files']);
});

test('a file name with a NUL byte (possible only in-process: an exec argv cannot hold one) is refused', async () => {
  const err: string[] = [];
  const { write } = process.stderr;
  process.stderr.write = ((chunk: string | Uint8Array) => err.push(String(chunk)) > 0) as typeof write;
  let code: number;
  try {
    code = await runInProcess(['copy-to-vm', 'vmp-t-files', `${f('ok.txt')}\0.pdf`]);
  } finally {
    process.stderr.write = write;
  }
  expect(code).toBe(2);
  expect(err.join('')).toMatch(
    /^error: invalid file ".*ok\.txt\\u0000\.pdf": a path cannot contain a NUL byte\n$/,
  );
});

test.each([
  [['open', '--disposable', 'vmp-t-files', 'ok.txt'], 'open --disposable takes one FILE and no VM name'],
  [['open', '--template', 'vmp-t-tmpl', 'vmp-t-files', 'ok.txt'], 'open: --template goes with --disposable'],
  [['open', 'vmp-t-files'], 'open: name the host file to open'],
])('open %j: exit 2 and one line, nothing made', async (args, message) => {
  // The host file by its full path (the table is built before the files are).
  const r = await runCli(
    args.map((a) => (a === 'ok.txt' ? f(a) : a)),
    env(),
  );
  expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 2, stdout: '' });
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toContain(message);
  expect(fs.readdirSync(home).sort()).toEqual(['files']);
});
