import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { requireOurVm, stopVm } from '../../service/lifecycle.js';
import { saveVm } from '../../service/state.js';
import { FileConfigStore } from '../../spec/store.js';
import { InputError } from '../../util/errors.js';
import { vmName, withConnectOption, withHypervisor } from '../hypervisor.js';

interface StopArgs {
  name: string;
  /** The text as typed (see raw-numbers.ts), or the default. */
  timeout: number | string;
  force: boolean;
  save: boolean | undefined;
  connect: string | undefined;
}

/** `--save`/`--no-save` win; otherwise the VM's `on_stop` setting; a config that cannot be read means shutdown. */
async function shouldSave(name: string, flag: boolean | undefined): Promise<boolean> {
  if (flag !== undefined) return flag;
  const store = new FileConfigStore();
  if (!(await store.exists(name))) return false;
  return (await store.read(name)).onStop === 'save';
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
}

export const stopCommand: CommandModule<object, StopArgs> = {
  command: 'stop <name>',
  describe:
    'Shut a VM down (ACPI; hard with --force or your consent), or with --save keep its memory so start resumes it',
  builder: (yargs: Argv<object>) =>
    withConnectOption(yargs)
      .positional('name', { type: 'string', demandOption: true, describe: 'VM name' })
      .option('timeout', {
        type: 'number',
        default: 60,
        describe: 'seconds to wait for the guest to power off',
      })
      .option('force', {
        type: 'boolean',
        default: false,
        describe: 'stop it hard, without asking, if it has not powered off by then',
      })
      .option('save', {
        type: 'boolean',
        describe:
          "save its memory to disk (libvirt managed save) instead; --no-save shuts down. Default: the VM's on_stop",
      })
      .example('$0 stop firefox-vm --save', 'start resumes it where it was')
      .example('$0 stop firefox-vm', '')
      .example('$0 stop firefox-vm --timeout 10 --force', '') as unknown as Argv<StopArgs>,
  handler: async (argv: ArgumentsCamelCase<StopArgs>) => {
    const name = vmName(argv.name);
    const timeout = /^\d{1,5}(\.\d{1,3})?$/.test(String(argv.timeout)) ? Number(argv.timeout) : NaN;
    if (!(timeout >= 0 && timeout <= 86_400)) {
      throw new InputError(`--timeout ${String(argv.timeout)} is invalid: seconds from 0 to 86400`);
    }
    const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);
    await withHypervisor(argv.connect, async (hypervisor) => {
      await requireOurVm(hypervisor, name);
      if (await shouldSave(name, argv.save)) {
        const saved = await saveVm(hypervisor, name);
        if (saved === 'already-stopped') {
          process.stdout.write(`${name}: already stopped\n`);
          return;
        }
        const size = saved.bytes !== undefined ? `, ${mib(saved.bytes)}` : '';
        process.stdout.write(
          `${name}: saved in ${(saved.ms / 1000).toFixed(1)} s${size}; start resumes it\n`,
        );
        return;
      }
      const outcome = await stopVm(hypervisor, name, {
        timeoutMs: timeout * 1000,
        force: argv.force,
        ...(interactive
          ? {
              confirmHardStop: async () => {
                const answer = await (
                  await import('inquirer')
                ).default.prompt<{ hard: boolean }>([
                  {
                    type: 'confirm',
                    name: 'hard',
                    message: `${name} did not power off within ${timeout} s. Stop it hard (like pulling the plug)?`,
                    default: false,
                  },
                ]);
                return answer.hard;
              },
            }
          : {}),
      });
      const said = { 'already-stopped': 'already stopped', 'shut-down': 'shut down', forced: 'stopped hard' };
      process.stdout.write(`${name}: ${said[outcome]}\n`);
    });
  },
};
