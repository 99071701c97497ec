import type { CommandModule } from 'yargs';
import { packageVersion } from '../../util/package-info.js';

/** `version`, as `--version` (virsh and qvm-* users type either). */
export const versionCommand: CommandModule<object, object> = {
  command: 'version',
  describe: "Print vm-provisioner's version (as --version)",
  builder: (yargs) => yargs.strictOptions(),
  handler: () => {
    process.stdout.write(`${packageVersion()}\n`);
  },
};

/** `help [COMMAND...]`: run.ts turns it into `COMMAND... --help`, so both print the same. */
export const helpCommand: CommandModule<object, object> = {
  command: 'help [command..]',
  describe: 'Show the help of the tool or of a command (as COMMAND --help)',
  builder: (yargs) =>
    yargs.positional('command', { type: 'string', describe: 'a command, e.g. start or template update' }),
  handler: () => undefined,
};
