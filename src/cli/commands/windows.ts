import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { controlRequest, followEvents, type WindowsResult } from '../../proxy/control-client.js';
import { formatEvent, formatWindowsTable } from '../../proxy/format.js';
import { validateVmName } from '../../spec/validate.js';

interface WindowsFlags {
  name?: string;
  json?: boolean;
  follow?: boolean;
  socket?: string;
}

/** `windows`: what the window proxy knows about each VM's windows, or a live stream of changes. */
export const windowsCommand: CommandModule<object, WindowsFlags> = {
  command: 'windows [name]',
  describe: 'List the app windows of every VM (or one) from the window proxy; --follow streams changes',
  builder: (yargs: Argv<object>) =>
    yargs
      .usage('$0 windows [NAME] [--json] [--follow]')
      .positional('name', { type: 'string', describe: 'only this VM' })
      .option('json', { type: 'boolean', describe: 'print JSON (with --follow: one event per line)' })
      .option('follow', { alias: 'f', type: 'boolean', describe: 'stream window events until interrupted' })
      .option('socket', {
        type: 'string',
        describe: "the proxy's control socket",
        defaultDescription: '$XDG_RUNTIME_DIR/vm-provisioner/proxy.sock',
      })
      .example('$0 windows', 'every window of every VM')
      .example('$0 windows firefox-vm --json', '')
      .example('$0 windows --follow', 'live events')
      .strictOptions() as unknown as Argv<WindowsFlags>,
  handler: async (argv: ArgumentsCamelCase<WindowsFlags>) => {
    const vm = argv.name === undefined ? undefined : validateVmName(argv.name);
    if (argv.follow) {
      // One stdout write per batch of events, not per event.
      let out: string[] = [];
      let scheduled = false;
      const flush = (): void => {
        scheduled = false;
        process.stdout.write(out.join(''));
        out = [];
      };
      const controller = new AbortController();
      const stop = (): void => controller.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        await followEvents({
          vm,
          socketPath: argv.socket,
          signal: controller.signal,
          onEvent: (event) => {
            out.push(argv.json ? `${JSON.stringify(event)}\n` : `${formatEvent(event)}\n`);
            if (!scheduled) {
              scheduled = true;
              setImmediate(flush);
            }
          },
        });
      } finally {
        if (out.length > 0) flush();
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
      return;
    }
    const result = await controlRequest<WindowsResult>('windows', vm ? { vm } : {}, {
      socketPath: argv.socket,
    });
    process.stdout.write(argv.json ? `${JSON.stringify(result, null, 2)}\n` : formatWindowsTable(result.vms));
  },
};
