import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { pauseVm } from '../../service/state.js';
import { vmName, withConnectOption, withHypervisor } from '../hypervisor.js';

interface NameArgs {
  name: string;
  connect: string | undefined;
}

export const pauseCommand: CommandModule<object, NameArgs> = {
  command: 'pause <name>',
  describe: 'Freeze a running VM in memory (its vCPUs stop; resume continues it)',
  builder: (yargs: Argv<object>) =>
    withConnectOption(yargs)
      .positional('name', { type: 'string', demandOption: true, describe: 'VM name' })
      .example('$0 pause firefox-vm', '') as unknown as Argv<NameArgs>,
  handler: async (argv: ArgumentsCamelCase<NameArgs>) => {
    const name = vmName(argv.name);
    const outcome = await withHypervisor(argv.connect, (hypervisor) => pauseVm(hypervisor, name));
    process.stdout.write(`${name}: ${outcome === 'paused' ? 'paused' : 'already paused'}\n`);
  },
};
