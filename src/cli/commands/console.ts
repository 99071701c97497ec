import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { consoleVm } from '../../service/lifecycle.js';
import { vmName, withConnectOption, withHypervisor } from '../hypervisor.js';

interface ConsoleArgs {
  name: string;
  connect: string | undefined;
}

export const consoleCommand: CommandModule<object, ConsoleArgs> = {
  command: 'console <name>',
  describe: "Attach this terminal to a VM's serial console (leave with Ctrl+])",
  builder: (yargs: Argv<object>) =>
    withConnectOption(yargs)
      .positional('name', { type: 'string', demandOption: true, describe: 'VM name' })
      .example('$0 console firefox-vm', '') as unknown as Argv<ConsoleArgs>,
  handler: async (argv: ArgumentsCamelCase<ConsoleArgs>) => {
    const name = vmName(argv.name);
    const code = await withHypervisor(argv.connect, (hypervisor) => consoleVm(hypervisor, name));
    if (code !== 0) process.exitCode = code;
  },
};
