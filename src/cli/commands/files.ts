import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { checkHostFile, copyToVm } from '../../service/files.js';
import { DEFAULT_RUN_WAIT_MS, ensureRunning, requireProxy, type RunOptions } from '../../service/run.js';
import { parseWholeNumber } from '../../spec/validate.js';
import { LibvirtVolumeStore } from '../../storage/volumes.js';
import { InputError } from '../../util/errors.js';
import { vmName, withConnectOption, withHypervisor } from '../hypervisor.js';
import { openShown } from '../open-output.js';

/**
 * `open NAME FILE [--writeback]` and `copy-to-vm NAME FILE...`: send host files
 * to a VM's guest agent (docs/files.md). Every file is checked before the VM
 * is started, so bad input leaves nothing behind.
 */

interface CommonArgs {
  name: string;
  timeout: string;
  socket?: string;
  connect: string | undefined;
}

function withCommonOptions<T>(yargs: Argv<T>): Argv<T> {
  return withConnectOption(yargs)
    .option('timeout', {
      type: 'string',
      default: String(DEFAULT_RUN_WAIT_MS / 1000),
      describe: "seconds to wait for the VM's agent to connect",
    })
    .option('socket', {
      type: 'string',
      describe: "the proxy's control socket",
      defaultDescription: '$XDG_RUNTIME_DIR/vm-provisioner/proxy.sock',
    }) as unknown as Argv<T>;
}

/** Checks the proxy, starts or resumes the VM as `run` does; the options every transfer then uses. */
async function readyVm(argv: CommonArgs, name: string): Promise<RunOptions> {
  const seconds = parseWholeNumber('--timeout', argv.timeout, 's');
  if (seconds < 1 || seconds > 600) throw new InputError(`invalid --timeout ${seconds} s: must be 1 to 600`);
  const socket = argv.socket ? { socketPath: argv.socket } : {};
  await requireProxy(socket);
  const before = Date.now();
  const ready = await withHypervisor(argv.connect, (hypervisor) =>
    ensureRunning(hypervisor, name, new LibvirtVolumeStore(hypervisor.uri)),
  );
  return {
    ...socket,
    waitMs: seconds * 1000,
    ...(ready.readiness !== 'running' ? { connectedSince: before } : {}),
  };
}

interface OpenArgs extends CommonArgs {
  file?: string;
  writeback: boolean;
  disposable: boolean;
  template?: string;
  viewer: boolean;
}

export const openCommand: CommandModule<object, OpenArgs> = {
  command: 'open <name> [file]',
  describe:
    "Open one host file in a VM (or, with --disposable, a throwaway one) with the guest's default handler (a read-only copy; --writeback sends saved edits back)",
  builder: (yargs: Argv<object>) =>
    withCommonOptions(yargs)
      .parserConfiguration({ 'parse-numbers': false, 'parse-positional-numbers': false })
      .usage('$0 open NAME FILE [--writeback]\n$0 open --disposable [--template T] FILE [--writeback]')
      .positional('name', {
        type: 'string',
        demandOption: true,
        describe: 'VM name (with --disposable: the host file)',
      })
      .positional('file', {
        type: 'string',
        describe: 'the host file (regular file, at most 64 MiB)',
      })
      .option('writeback', {
        type: 'boolean',
        default: false,
        describe:
          'keep the guest copy writable and replace the host file with each version saved in the guest, until Ctrl+C (or, in a disposable, until it ends)',
      })
      .option('disposable', {
        type: 'boolean',
        default: false,
        describe: 'open it in a new disposable, removed with every file of it once its last window closes',
      })
      .option('template', {
        type: 'string',
        describe: 'with --disposable: the template (default: default_template, else the only one)',
      })
      .option('viewer', {
        type: 'boolean',
        default: true,
        describe: "with --disposable: open the disposable's viewer (--no-viewer: do not)",
      })
      .example('$0 open work ~/Downloads/report.pdf', 'view report.pdf in the VM work')
      .example('$0 open work notes.txt --writeback', 'edit notes.txt in the VM; saved edits come back')
      .example('$0 open --disposable ~/Downloads/untrusted.pdf', 'view it in a throwaway VM')
      .strictOptions() as unknown as Argv<OpenArgs>,
  handler: async (argv: ArgumentsCamelCase<OpenArgs>) => {
    if (argv.disposable) {
      if (argv.file !== undefined) {
        throw new InputError(
          `open --disposable takes one FILE and no VM name (got ${JSON.stringify(argv.name)} and ${JSON.stringify(argv.file)})`,
        );
      }
      // Loaded only here: an ordinary open needs none of the disposable machinery.
      const { openDisposable } = await import('../disposable-run.js');
      await openDisposable({ ...argv, file: String(argv.name) });
      return;
    }
    if (argv.template !== undefined) throw new InputError('open: --template goes with --disposable');
    if (argv.file === undefined) throw new InputError('open: name the host file to open');
    const name = vmName(argv.name);
    const file = await checkHostFile(argv.file);
    const options = await readyVm(argv, name);
    if (!argv.writeback) {
      await openShown(name, file, { ...options, writeback: false }, 'Ctrl+C');
      return;
    }
    const controller = new AbortController();
    const stop = (): void => controller.abort();
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    try {
      const result = await openShown(
        name,
        file,
        { ...options, writeback: true, signal: controller.signal },
        'Ctrl+C',
      );
      const end = result.end;
      if (end?.type === 'ended') process.stdout.write(`${name}: writeback ended: ${end.reason}\n`);
      else process.stdout.write(`${name}: writeback stopped; later edits in the VM stay there\n`);
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
  },
};

interface CopyArgs extends CommonArgs {
  files: string[];
}

export const copyToVmCommand: CommandModule<object, CopyArgs> = {
  command: 'copy-to-vm <name> <files..>',
  describe: "Copy host files into a VM's ~/Incoming/host/ (never overwriting: a clash gets a numbered name)",
  builder: (yargs: Argv<object>) =>
    withCommonOptions(yargs)
      .parserConfiguration({ 'parse-numbers': false, 'parse-positional-numbers': false })
      .positional('name', { type: 'string', demandOption: true, describe: 'VM name' })
      .positional('files', {
        type: 'string',
        array: true,
        demandOption: true,
        describe: 'host files (regular files, at most 64 MiB each)',
      })
      .example('$0 copy-to-vm work a.pdf b.png', 'copy two files into ~/Incoming/host/ in the VM work')
      .strictOptions() as unknown as Argv<CopyArgs>,
  handler: async (argv: ArgumentsCamelCase<CopyArgs>) => {
    const name = vmName(argv.name);
    // All of them first: one bad file stops the command before anything is sent.
    const files: string[] = [];
    for (const f of argv.files.map(String)) files.push(await checkHostFile(f));
    const options = await readyVm(argv, name);
    for (const file of files) {
      const guestPath = await copyToVm(name, file, options);
      process.stdout.write(`${name}: ${file} -> ${guestPath}\n`);
    }
  },
};
