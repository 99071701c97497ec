import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { stopVm } from '../../service/lifecycle.js';
import { InputError } from '../../util/errors.js';
import { vmName, withConnectOption, withHypervisor } from '../hypervisor.js';

interface StopArgs {
  name: string;
  timeout: number;
  force: boolean;
  connect: string | undefined;
}

export const stopCommand: CommandModule<object, StopArgs> = {
  command: 'stop <name>',
  describe: 'Shut a VM down (ACPI), then stop it hard with --force or your consent',
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
      .example('$0 stop firefox-vm', '')
      .example('$0 stop firefox-vm --timeout 10 --force', '') as unknown as Argv<StopArgs>,
  handler: async (argv: ArgumentsCamelCase<StopArgs>) => {
    const name = vmName(argv.name);
    if (!Number.isFinite(argv.timeout) || argv.timeout < 0 || argv.timeout > 86_400) {
      throw new InputError(`--timeout ${String(argv.timeout)} is invalid: seconds from 0 to 86400`);
    }
    const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);
    await withHypervisor(argv.connect, async (hypervisor) => {
      const outcome = await stopVm(hypervisor, name, {
        timeoutMs: argv.timeout * 1000,
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
                    message: `${name} did not power off within ${argv.timeout} s. Stop it hard (like pulling the plug)?`,
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
