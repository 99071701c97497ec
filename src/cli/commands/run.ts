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
  name?: string;
  command?: string[];
  '--'?: string[];
  timeout: string;
  viewer: boolean;
  socket?: string;
  connect: string | undefined;
  disposable: boolean;
  template?: string;
  flatpak?: string;
}

const HOW: Record<string, string> = {
  running: '',
  started: ' after starting the VM',
  resumed: ' after resuming the VM from saved state',
  unpaused: ' after unpausing the VM',
};

/** --timeout: seconds to wait for the agent, 1 to 600. */
export function runTimeoutSeconds(value: unknown): number {
  const seconds = parseWholeNumber('--timeout', value, 's');
  if (seconds < 1 || seconds > 600) throw new InputError(`invalid --timeout ${seconds} s: must be 1 to 600`);
  return seconds;
}

export type { RunArgs };

export const runCommand: CommandModule<object, RunArgs> = {
  command: 'run [name] [command..]',
  describe:
    "Run a command (an argv, not a shell string) in a VM's session, starting or resuming the VM if needed; --disposable: in a throwaway VM removed when it ends",
  builder: (yargs: Argv<object>) =>
    withConnectOption(yargs)
      // Everything after `--` is the command, word for word: no option parsing, no numbers made of "0x10".
      .parserConfiguration({ 'populate--': true, 'parse-numbers': false, 'parse-positional-numbers': false })
      .usage(
        '$0 run NAME -- CMD [ARG...]\n$0 run --disposable [--template T] (-- CMD [ARG...] | --flatpak ID)',
      )
      .positional('name', { type: 'string', describe: 'VM name (not with --disposable)' })
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
      .option('disposable', {
        type: 'boolean',
        default: false,
        describe: 'run it in a new throwaway VM on a template, removed with all its files when it ends',
      })
      .option('template', {
        type: 'string',
        describe:
          'with --disposable: the template (default: default_template in defaults.toml, else the only one)',
      })
      .option('flatpak', {
        type: 'string',
        describe: 'with --disposable, instead of -- CMD: run this Flatpak the template has (flatpak run ID)',
      })
      .option('socket', {
        type: 'string',
        describe: "the proxy's control socket",
        defaultDescription: '$XDG_RUNTIME_DIR/vm-provisioner/proxy.sock',
      })
      .example('$0 run work -- xterm -T "work shell"', 'start an xterm in the VM work')
      .example('$0 run --disposable -- xterm', 'an xterm in a throwaway VM, gone when the xterm closes')
      .strictOptions() as unknown as Argv<RunArgs>,
  handler: async (argv: ArgumentsCamelCase<RunArgs>) => {
    if (argv.disposable) {
      // Loaded only here: an ordinary run needs none of the disposable machinery.
      const { runDisposable } = await import('../disposable-run.js');
      return runDisposable(argv);
    }
    for (const [flag, value] of [
      ['--template', argv.template],
      ['--flatpak', argv.flatpak],
    ] as const) {
      if (value !== undefined) throw new InputError(`${flag} goes only with --disposable`);
    }
    if (argv.name === undefined)
      throw new InputError('run: name the VM (run NAME -- CMD), or pass --disposable');
    const name = vmName(argv.name);
    const words = [...(argv.command ?? []), ...(argv['--'] ?? [])].map(String);
    if (words.length === 0)
      throw new InputError(`run ${name}: name a command after --, e.g. run ${name} -- xterm`);
    const command = validateRunArgv(words);
    const seconds = runTimeoutSeconds(argv.timeout);
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
