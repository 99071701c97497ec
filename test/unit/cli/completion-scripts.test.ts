import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadAllCommands } from '../../../src/cli/commands/index.js';
import { describeCli } from '../../../src/cli/completion/model.js';
import { completionScript, SHELLS } from '../../../src/cli/completion/scripts.js';
import { expectGolden } from '../../support/golden.js';

/**
 * The completion scripts are generated from the yargs definitions: golden files show every change,
 * each shell's own parser accepts them, and each completes what the definitions say (names from
 * libvirt are the integration test's: test/integration/cli/completion.test.ts).
 */
const root = describeCli(await loadAllCommands());
const has = (tool: string): boolean => {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const needs = (tool: string): jest.It => (has(tool) || process.env.CI === 'true' ? test : test.skip);

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-completion-'));
  for (const shell of SHELLS) fs.writeFileSync(path.join(dir, shell), completionScript(shell, root));
  // Names are not asked for here: a vm-provisioner on PATH that would be called fails the test.
  fs.writeFileSync(path.join(dir, 'vm-provisioner'), '#!/bin/sh\necho CALLED "$@"\n', { mode: 0o755 });
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test.each(SHELLS)('%s script matches its golden file', (shell) => {
  expectGolden(`completion/vm-provisioner.${shell}`, completionScript(shell, root));
});

test('every command, subcommand and flag of the definitions is in the scripts, hidden ones are not', () => {
  const bash = completionScript('bash', root);
  for (const word of [
    'create',
    'template',
    'snapshot',
    'completion',
    'version',
    '--no-viewer',
    '--dry-run',
  ]) {
    expect(bash).toContain(`'${word}'`);
  }
  expect(bash).not.toContain("'__complete'");
  const createFlags = root.subcommands.find((c) => c.path[0] === 'create')!.options.map((o) => `--${o.name}`);
  expect(createFlags).toEqual(expect.arrayContaining(['--memory', '--template', '--connect', '--help']));
  for (const flag of createFlags) expect(bash).toContain(`'${flag}'`);
});

function bashComplete(line: string): string[] {
  const out = execFileSync(
    'bash',
    [
      '-c',
      `source "$1"; COMP_LINE="$2"; COMP_POINT=\${#2}; _vm_provisioner; printf '%s\\n' "\${COMPREPLY[@]}"`,
      'bash',
      path.join(dir, 'bash'),
      line,
    ],
    { encoding: 'utf8', env: { PATH: `${dir}:${process.env.PATH}` } },
  );
  return out.split('\n').filter(Boolean);
}

test('bash -n accepts the bash script, and it completes commands, subcommands, flags and choices', () => {
  execFileSync('bash', ['-n', path.join(dir, 'bash')]);
  expect(bashComplete('vm-provisioner ')).toEqual(expect.arrayContaining(['create', 'template', 'list']));
  expect(bashComplete('vm-provisioner ')).not.toContain('__complete');
  expect(bashComplete('vm-provisioner sn')).toEqual(['snapshot']);
  expect(bashComplete('vm-provisioner snapshot ')).toEqual(['create', 'list', 'revert', 'delete']);
  expect(bashComplete('vm-provisioner start --no')).toEqual(['--no-viewer', '--no-seamless']);
  expect(bashComplete('vm-provisioner clipboard ')).toEqual(['copy', 'paste']);
  expect(bashComplete('vm-provisioner completion f')).toEqual(['fish']);
  // A URI with ':' and '=' is one word, and the flag after it is the command's.
  expect(bashComplete('vm-provisioner stop --connect qemu:///system?x=y --ti')).toEqual(['--timeout']);
  // New names complete nothing: a snapshot to create, a template to create.
  expect(bashComplete('vm-provisioner snapshot create vm1 ')).toEqual([]);
  expect(bashComplete('vm-provisioner template create ')).toEqual([]);
});

needs('zsh')('zsh -n accepts the zsh script, and it completes through compsys', () => {
  execFileSync('zsh', ['-n', path.join(dir, 'zsh')]);
  // compsys stubs: what the script would hand to zsh's completion system, one candidate a line.
  const zshComplete = (...words: string[]): string[] =>
    execFileSync(
      'zsh',
      [
        '-c',
        `compdef() { :; }; compadd() { [[ $1 == -- ]] && shift; print -l -- "$@"; }
         _describe() { print -l -- "\${(@P)4}"; }; _files() { print FILES "$@"; }
         source "$1"; shift; words=("$@"); CURRENT=$#words; _vm_provisioner`,
        'zsh',
        path.join(dir, 'zsh'),
        ...words,
      ],
      { encoding: 'utf8', env: { PATH: `${dir}:${process.env.PATH}` } },
    )
      .split('\n')
      .filter(Boolean);
  expect(zshComplete('vm-provisioner', 'template', '')).toEqual(
    expect.arrayContaining([
      'destroy:Delete a template that no app VM uses: its domain, disk, config and keyring entries',
    ]),
  );
  expect(zshComplete('vm-provisioner', 'create', '--config', '')).toEqual(['FILES']);
  expect(zshComplete('vm-provisioner', 'completion', '')).toEqual(['bash', 'zsh', 'fish']);
  expect(zshComplete('vm-provisioner', 'stop', '-')).toContain(
    '--force:stop it hard, without asking, if it has not powered off by then',
  );
});

needs('fish')('fish --no-execute accepts the fish script, and complete -C completes with it', () => {
  execFileSync('fish', ['--no-execute', path.join(dir, 'fish')]);
  const fishComplete = (line: string): string[] =>
    execFileSync('fish', ['-c', `source $argv[1]; complete -C $argv[2]`, path.join(dir, 'fish'), line], {
      encoding: 'utf8',
      env: { PATH: `${dir}:${process.env.PATH}`, HOME: dir },
    })
      .split('\n')
      .filter(Boolean);
  expect(fishComplete('vm-provisioner snapshot r')).toEqual([
    'revert\tGo back to a snapshot (a running, paused or saved VM needs --force: its state is lost)',
  ]);
  expect(fishComplete('vm-provisioner clipboard ')).toEqual(['copy', 'paste']);
  expect(fishComplete('vm-provisioner template import --kernel-a')).toEqual([
    '--kernel-args\twith --kernel: the kernel command line',
  ]);
});
