import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { hasGraphicalSession, openViewer } from '../../service/lifecycle.js';
import {
  DEFAULT_RUN_WAIT_MS,
  ensureRunning,
  requireProxy,
  runInVm,
  validateRunArgv,
} from '../../service/run.js';
import { FileConfigStore } from '../../spec/store.js';
import { parseWholeNumber } from '../../spec/validate.js';
import { LibvirtVolumeStore } from '../../storage/volumes.js';
import { InputError } from '../../util/errors.js';
import { vmName, withConnectOption, withHypervisor } from '../hypervisor.js';

interface RunArgs {
  name: string;
  command?: string[];
  '--'?: string[];
  timeout: string;
  viewer: boolean;
  socket?: string;
  connect: string | undefined;
}

const HOW: Record<string, string> = {
  running: '',
  started: ' after starting the VM',
  resumed: ' after resuming the VM from saved state',
  unpaused: ' after unpausing the VM',
};

export const runCommand: CommandModule<object, RunArgs> = {
  command: 'run <name> [command..]',
  describe:
    "Run a command (an argv, not a shell string) in a VM's session, starting or resuming the VM if needed",
  builder: (yargs: Argv<object>) =>
    withConnectOption(yargs)
      // Everything after `--` is the command, word for word: no option parsing, no numbers made of "0x10".
      .parserConfiguration({ 'populate--': true, 'parse-numbers': false, 'parse-positional-numbers': false })
      .usage('$0 run NAME -- CMD [ARG...]')
      .positional('name', { type: 'string', demandOption: true, describe: 'VM name' })
      .positional('command', { type: 'string', array: true, describe: 'the program and its arguments' })
      .option('timeout', {
        type: 'string',
        default: String(DEFAULT_RUN_WAIT_MS / 1000),
        describe: "seconds to wait for the VM's agent to connect",
      })
      .option('viewer', {
        type: 'boolean',
        default: true,
        describe: 'open the SPICE viewer when run starts or resumes the VM; --no-viewer to skip',
      })
      .option('socket', {
        type: 'string',
        describe: "the proxy's control socket",
        defaultDescription: '$XDG_RUNTIME_DIR/vm-provisioner/proxy.sock',
      })
      .example('$0 run work -- xterm -T "work shell"', 'start an xterm in the VM work')
      .strictOptions() as unknown as Argv<RunArgs>,
  handler: async (argv: ArgumentsCamelCase<RunArgs>) => {
    const name = vmName(argv.name);
    const words = [...(argv.command ?? []), ...(argv['--'] ?? [])].map(String);
    if (words.length === 0)
      throw new InputError(`run ${name}: name a command after --, e.g. run ${name} -- xterm`);
    const command = validateRunArgv(words);
    const seconds = parseWholeNumber('--timeout', argv.timeout, 's');
    if (seconds < 1 || seconds > 600)
      throw new InputError(`invalid --timeout ${seconds} s: must be 1 to 600`);
    const socket = argv.socket ? { socketPath: argv.socket } : {};
    await requireProxy(socket);
    const before = Date.now();
    const ready = await withHypervisor(argv.connect, (hypervisor) =>
      ensureRunning(hypervisor, name, new LibvirtVolumeStore(hypervisor.uri)),
    );
    let viewer = '';
    if (argv.viewer && ready.spiceUri && hasGraphicalSession()) {
      // A VM shown seamlessly has no desktop to view; its config says which (absent means spice).
      const spec = await new FileConfigStore().read(name).catch(() => undefined);
      if ((spec?.display ?? 'spice') === 'spice') {
        viewer = `; viewer pid ${await openViewer(ready.spiceUri, name)}`;
      }
    }
    const pid = await runInVm(name, command, {
      waitMs: seconds * 1000,
      ...socket,
      ...(ready.readiness !== 'running' ? { connectedSince: before } : {}),
    });
    process.stdout.write(
      `${name}: started ${command[0]} (pid ${pid} in the VM)${HOW[ready.readiness]}${viewer}\n`,
    );
  },
};
