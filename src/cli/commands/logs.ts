import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { chooseLog, showLog, type LogKind } from '../../service/logs.js';
import { FileConfigStore } from '../../spec/store.js';
import { vmName } from '../hypervisor.js';

interface LogsArgs {
  name: string;
  install?: boolean;
  console?: boolean;
  follow?: boolean;
}

/** `logs NAME`: the VM's install log or its serial console log (virtlogd's), optionally followed. */
export const logsCommand: CommandModule<object, LogsArgs> = {
  command: 'logs <name>',
  describe: "Show a VM's serial console log (by virtlogd) or its install log; --follow keeps reading",
  builder: (yargs: Argv<object>) =>
    yargs
      .usage('$0 logs NAME [--install | --console] [--follow]')
      .positional('name', { type: 'string', demandOption: true, describe: 'VM name' })
      .option('install', {
        type: 'boolean',
        describe: "the install log (the installer's console during create)",
      })
      .option('console', {
        type: 'boolean',
        describe: 'the serial console log, kept across boots (default, when it exists; else the install log)',
      })
      .conflicts('install', 'console')
      .option('follow', { alias: 'f', type: 'boolean', describe: 'keep printing what is added until Ctrl+C' })
      .example('$0 logs firefox-vm', 'its console log, else its install log')
      .example('$0 logs firefox-vm --install --follow', 'watch an install')
      .strictOptions() as unknown as Argv<LogsArgs>,
  handler: async (argv: ArgumentsCamelCase<LogsArgs>) => {
    const name = vmName(argv.name);
    const kind: LogKind | undefined = argv.install ? 'install' : argv.console ? 'console' : undefined;
    const store = new FileConfigStore();
    const { file } = await chooseLog(name, kind, () => store.exists(name));
    const controller = new AbortController();
    // Ctrl+C ends --follow normally (exit 0); so does a closed pipe (`logs x -f | head`).
    const stop = (): void => controller.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    let closed = false;
    let drained: (() => void) | undefined;
    const onError = (err: NodeJS.ErrnoException): void => {
      if (err.code !== 'EPIPE') return;
      closed = true;
      drained?.();
      stop();
    };
    process.stdout.on('error', onError);
    try {
      await showLog(file, {
        follow: argv.follow === true,
        signal: controller.signal,
        write: (text) =>
          closed
            ? undefined
            : new Promise<void>((resolve) => {
                if (process.stdout.write(text)) return resolve();
                drained = resolve;
                process.stdout.once('drain', resolve);
              }),
      });
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.stdout.off('error', onError);
    }
  },
};
