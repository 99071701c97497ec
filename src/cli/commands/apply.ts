import path from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { openHypervisor } from '../../libvirt/index.js';
import { formatPlan, formatStep, planApply, runApply } from '../../service/apply.js';
import { parseApplyFile } from '../../spec/apply-file.js';
import { hostResources, readConfigFile } from '../../spec/build.js';
import { LibvirtVolumeStore } from '../../storage/volumes.js';
import { InputError } from '../../util/errors.js';
import { packageVersion } from '../../util/package-info.js';
import { resolveConnectionFor, withConnectOption } from '../hypervisor.js';
import { prefsDeps } from '../prefs-deps.js';

interface ApplyArgs {
  file: string;
  dryRun: boolean;
  prune: boolean;
  yes: boolean;
  force: boolean;
  connect: string | undefined;
}

export const applyCommand: CommandModule<object, ApplyArgs> = {
  command: 'apply <file>',
  describe:
    'Make the templates and app VMs a TOML file declares, and change those that differ (docs/apply.md)',
  builder: (yargs: Argv<object>) =>
    withConnectOption(yargs)
      .positional('file', {
        type: 'string',
        demandOption: true,
        describe: 'the TOML file of [[template]]s and [[vm]]s',
      })
      .option('dry-run', { type: 'boolean', default: false, describe: 'print the plan and change nothing' })
      .option('prune', {
        type: 'boolean',
        default: false,
        describe: 'also remove app VMs vm-provisioner made that the file does not list',
      })
      .option('yes', { alias: 'y', type: 'boolean', default: false, describe: 'do not ask for confirmation' })
      .option('force', {
        type: 'boolean',
        default: false,
        describe: 'allow more memory or vCPUs than this host has',
      })
      .example('$0 apply vms.toml --dry-run', 'show what would be made (+), changed (~) and removed (-)')
      .example('$0 apply vms.toml --prune --yes', '') as unknown as Argv<ApplyArgs>,
  handler: async (argv: ArgumentsCamelCase<ApplyArgs>) => {
    const file = path.resolve(argv.file);
    const host = hostResources();
    // Every entry is checked before libvirt is asked anything.
    const parsed = parseApplyFile(await readConfigFile(file), argv.file, path.dirname(file), {
      force: argv.force,
      hostMb: host.memoryMb,
      hostCpus: host.cpus,
    });
    const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);
    const hypervisor = await openHypervisor({
      uri: (await resolveConnectionFor(argv.connect)).uri,
      // A template import copies its disk through libvirt.
      timeouts: { call: 300_000, save: 300_000 },
    });
    try {
      // Launchers are synced once at the end (made, changed and removed VMs alike), not after each change.
      const deps = {
        ...prefsDeps(hypervisor),
        afterChange: undefined,
        volumes: new LibvirtVolumeStore(hypervisor.uri),
      };
      const version = packageVersion();
      const plan = await planApply(deps, parsed, { prune: argv.prune, version, host, force: argv.force });
      process.stdout.write(`Plan for ${argv.file} at ${hypervisor.uri}:\n${formatPlan(plan)}`);
      if (plan.steps.length === 0) return;
      if (argv.dryRun) {
        process.stdout.write('dry run: nothing was changed\n');
        return;
      }
      if (!argv.yes) {
        if (!interactive)
          throw new InputError('apply needs confirmation: pass --yes when not running on a terminal');
        const { default: inquirer } = await import('inquirer');
        const { proceed } = await inquirer.prompt<{ proceed: boolean }>([
          { type: 'confirm', name: 'proceed', message: 'Apply this plan?', default: false },
        ]);
        if (!proceed) {
          process.stdout.write('Nothing was changed.\n');
          return;
        }
      }
      const controller = new AbortController();
      const abort = (): void => controller.abort();
      process.on('SIGINT', abort);
      process.on('SIGTERM', abort);
      try {
        await runApply(deps, plan, {
          version,
          host,
          force: argv.force,
          signal: controller.signal,
          onDone: (step, note) =>
            process.stdout.write(`done: ${formatStep(step)}${note ? ` (${note})` : ''}\n`),
        });
      } finally {
        process.off('SIGINT', abort);
        process.off('SIGTERM', abort);
        const { syncLaunchersQuietly } = await import('../../service/launchers.js');
        process.stdout.write(`${await syncLaunchersQuietly({ hypervisor })}\n`);
      }
      process.stdout.write(`applied ${argv.file}\n`);
    } finally {
      await hypervisor.close();
    }
  },
};
