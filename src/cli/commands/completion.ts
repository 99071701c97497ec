import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { completionScript, SHELLS, type Shell } from '../completion/scripts.js';
import { describeCli } from '../completion/model.js';
import { InputError } from '../../util/errors.js';

interface CompletionArgs {
  shell: string;
}

export const completionCommand: CommandModule<object, CompletionArgs> = {
  command: 'completion <shell>',
  describe:
    'Print a shell completion script for bash, zsh or fish (commands, flags, VM/template/snapshot names)',
  builder: (yargs: Argv<object>) =>
    yargs
      .positional('shell', { type: 'string', choices: [...SHELLS], describe: 'bash, zsh or fish' })
      .example('source <(vm-provisioner completion bash)', 'in ~/.bashrc')
      .example('source <(vm-provisioner completion zsh)', 'in ~/.zshrc, after compinit')
      .example('vm-provisioner completion fish > ~/.config/fish/completions/vm-provisioner.fish', '')
      .strictOptions() as unknown as Argv<CompletionArgs>,
  handler: async (argv: ArgumentsCamelCase<CompletionArgs>) => {
    if (!(SHELLS as readonly string[]).includes(argv.shell)) {
      throw new InputError(`unknown shell '${argv.shell}': use bash, zsh or fish`);
    }
    // The command list is read at run time so the script always matches this install's commands.
    const { loadAllCommands } = await import('./index.js');
    process.stdout.write(completionScript(argv.shell as Shell, describeCli(await loadAllCommands())));
  },
};

interface CompleteArgs {
  kind: string;
  vm?: string;
  connect?: string;
}

/**
 * The completion scripts' callback: `__complete vms|templates|snapshots [VM]
 * [--connect URI]` prints one name per line. Hidden from --help; on any error
 * (no libvirtd, a deadline, a bad name) it prints nothing and exits 0, since a
 * shell shows a completion's stderr in the middle of the line being typed.
 */
export const completeCallbackCommand: CommandModule<object, CompleteArgs> = {
  command: '__complete <kind> [vm]',
  describe: false,
  builder: (yargs: Argv<object>) =>
    yargs
      .positional('kind', { type: 'string', choices: ['vms', 'templates', 'snapshots'] })
      .positional('vm', { type: 'string' })
      .option('connect', { alias: 'c', type: 'string' }) as unknown as Argv<CompleteArgs>,
  handler: async (argv: ArgumentsCamelCase<CompleteArgs>) => {
    const { completionNames } = await import('../completion/names.js');
    try {
      const names = await completionNames(argv.kind as 'vms', argv.connect, argv.vm);
      if (names.length > 0) process.stdout.write(`${names.join('\n')}\n`);
    } catch {
      // Nothing to offer; see above.
    }
  },
};
