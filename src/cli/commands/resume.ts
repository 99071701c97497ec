import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { resumeVm } from '../../service/state.js';
import { vmName, withConnectOption, withHypervisor } from '../hypervisor.js';

interface NameArgs {
  name: string;
  connect: string | undefined;
}

export const resumeCommand: CommandModule<object, NameArgs> = {
  command: 'resume <name>',
  describe: 'Continue a paused VM; its guest agent is told at once',
  builder: (yargs: Argv<object>) =>
    withConnectOption(yargs)
      .positional('name', { type: 'string', demandOption: true, describe: 'VM name' })
      .example('$0 resume firefox-vm', '') as unknown as Argv<NameArgs>,
  handler: async (argv: ArgumentsCamelCase<NameArgs>) => {
    const name = vmName(argv.name);
    const outcome = await withHypervisor(argv.connect, (hypervisor) => resumeVm(hypervisor, name));
    process.stdout.write(`${name}: ${outcome === 'resumed' ? 'resumed' : 'already running'}\n`);
  },
};
