import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { hasGraphicalSession, openViewer, startVm } from '../../service/lifecycle.js';
import { LibvirtVolumeStore } from '../../storage/volumes.js';
import { vmName, withConnectOption, withHypervisor } from '../hypervisor.js';

interface StartArgs {
  name: string;
  viewer: boolean;
  connect: string | undefined;
}

export const startCommand: CommandModule<object, StartArgs> = {
  command: 'start <name>',
  describe: 'Boot a VM (or resume its saved state) and open its SPICE viewer',
  builder: (yargs: Argv<object>) =>
    withConnectOption(yargs)
      .positional('name', { type: 'string', demandOption: true, describe: 'VM name' })
      .option('viewer', {
        type: 'boolean',
        default: true,
        describe: 'open remote-viewer (needs DISPLAY or WAYLAND_DISPLAY); --no-viewer to skip',
      })
      .example('$0 start firefox-vm', 'boot firefox-vm and show it')
      .example(
        '$0 start firefox-vm --no-viewer',
        'boot it and print its SPICE URI',
      ) as unknown as Argv<StartArgs>,
  handler: async (argv: ArgumentsCamelCase<StartArgs>) => {
    const name = vmName(argv.name);
    await withHypervisor(argv.connect, async (hypervisor) => {
      const { spiceUri, alreadyRunning, resumed, keptRootForSnapshots } = await startVm(
        hypervisor,
        name,
        new LibvirtVolumeStore(hypervisor.uri),
      );
      const said = alreadyRunning ? 'already running' : resumed ? 'resumed from saved state' : 'started';
      process.stdout.write(`${name}: ${said}\n`);
      if (keptRootForSnapshots) {
        process.stdout.write(`${name}: root kept, not reset from the template: the VM has snapshots\n`);
      }
      if (!spiceUri) {
        process.stdout.write(`${name}: no SPICE display assigned\n`);
        return;
      }
      process.stdout.write(`${spiceUri}\n`);
      if (argv.viewer && hasGraphicalSession()) {
        const pid = await openViewer(spiceUri, name);
        process.stdout.write(`viewer: remote-viewer (pid ${pid})\n`);
        return;
      }
      // Say so, with the command that opens it later: `start` of a running VM only opens the viewer.
      const why = argv.viewer ? 'no DISPLAY or WAYLAND_DISPLAY' : '--no-viewer';
      const connect = argv.connect !== undefined ? ` --connect ${argv.connect}` : '';
      process.stdout.write(
        `${name}: viewer not opened (${why}); open it from a graphical session with: vm-provisioner start ${name}${connect} (or remote-viewer ${spiceUri})\n`,
      );
    });
  },
};
