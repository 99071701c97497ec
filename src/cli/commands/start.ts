import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { startVm } from '../../service/start.js';
import { hasGraphicalSession, openViewer } from '../../service/viewer.js';
import { FileConfigStore } from '../../spec/store.js';
import { DEFAULT_DISPLAY, DEFAULT_LABEL } from '../../spec/validate.js';
import { LibvirtVolumeStore } from '../../storage/volumes.js';
import { InputError } from '../../util/errors.js';
import { vmName, withConnectOption, withHypervisor } from '../hypervisor.js';

interface StartArgs {
  name: string;
  viewer: boolean;
  seamless: boolean | undefined;
  seamlessTimeout: number | string;
  connect: string | undefined;
}

export const startCommand: CommandModule<object, StartArgs> = {
  command: 'start <name>',
  describe:
    'Boot a VM (or resume its saved state) and show it: a SPICE viewer, or its app windows on the host',
  builder: (yargs: Argv<object>) =>
    withConnectOption(yargs)
      .positional('name', { type: 'string', demandOption: true, describe: 'VM name' })
      .option('viewer', {
        type: 'boolean',
        default: true,
        describe: 'open remote-viewer (needs DISPLAY or WAYLAND_DISPLAY); --no-viewer to skip',
      })
      .option('seamless', {
        type: 'boolean',
        describe:
          "show each app window as a window of the host's X display (xpra); default: the VM's display setting; --no-seamless for SPICE",
      })
      .option('seamless-timeout', {
        type: 'number',
        default: 300,
        describe: 'seconds to wait for the guest to serve its windows (a cold boot included)',
      })
      .example('$0 start firefox-vm', 'boot firefox-vm and show it')
      .example('$0 start --seamless firefox-vm', "boot it and show its windows on the host's desktop")
      .example(
        '$0 start firefox-vm --no-viewer',
        'boot it and print its SPICE URI',
      ) as unknown as Argv<StartArgs>,
  handler: async (argv: ArgumentsCamelCase<StartArgs>) => {
    const name = vmName(argv.name);
    // The value arrives as typed (src/cli/raw-numbers.ts) or as the declared default.
    const typed = String(argv.seamlessTimeout);
    const timeout = /^\d{1,4}$/.test(typed) ? Number(typed) : NaN;
    if (!(timeout >= 1 && timeout <= 3600)) {
      throw new InputError(`--seamless-timeout ${typed} is invalid: must be 1 to 3600 seconds`);
    }
    // label and display live in the VM's config file; a VM without a readable one has the defaults.
    const store = new FileConfigStore();
    const spec = (await store.exists(name)) ? await store.read(name).catch(() => undefined) : undefined;
    const seamless = argv.seamless ?? (spec?.display ?? DEFAULT_DISPLAY) === 'seamless';
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
      if (seamless) {
        // SPICE stays available for console work; its URI is printed, no viewer opened.
        if (spiceUri) process.stdout.write(`${spiceUri}\n`);
        // Loaded only for a seamless start (xpra's client and its checks).
        const { showSeamless } = await import('../../seamless/launch.js');
        const shown = await showSeamless(hypervisor, name, spec?.label ?? DEFAULT_LABEL, {
          env: process.env,
          guestTimeoutMs: timeout * 1000,
          attachTimeoutMs: timeout * 1000,
        });
        process.stdout.write(
          `seamless: xpra client ${shown.alreadyAttached ? 'already attached' : 'attached'} (pid ${shown.pid})\n`,
        );
        return;
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
