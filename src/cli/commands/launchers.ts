import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { launcherDirs, dataHome, syncLaunchers } from '../../service/launchers.js';
import { withConnectOption, withHypervisor } from '../hypervisor.js';

interface LaunchersArgs {
  action: string;
  connect: string | undefined;
}

export const launchersCommand: CommandModule<object, LaunchersArgs> = {
  command: 'launchers <action>',
  describe: "Write a desktop launcher for each VM's apps (and remove those of VMs that are gone)",
  builder: (yargs: Argv<object>) =>
    withConnectOption(yargs)
      .usage('$0 launchers sync')
      .positional('action', {
        type: 'string',
        choices: ['sync'],
        describe: 'sync: bring the launchers up to date',
      })
      .example('$0 launchers sync', 'one menu entry per auto-launched app, "NAME: app", in its label colour')
      .strictOptions() as unknown as Argv<LaunchersArgs>,
  handler: async (argv: ArgumentsCamelCase<LaunchersArgs>) => {
    const report = await withHypervisor(argv.connect, (hypervisor) => syncLaunchers({ hypervisor }));
    for (const problem of report.problems) process.stderr.write(`warning: ${problem}\n`);
    const dir = launcherDirs(dataHome()).applications;
    process.stdout.write(
      `launchers: ${report.written.length} written, ${report.unchanged} unchanged, ${report.removed.length} removed (${dir})\n`,
    );
  },
};
