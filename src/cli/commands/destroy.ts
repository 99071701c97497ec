import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { keyringCredentialStores } from '../../secrets/credentials.js';
import { readJournal } from '../../service/journal.js';
import { destroyVm, requireOurVm } from '../../service/lifecycle.js';
import { syncLaunchersQuietly } from '../../service/launchers.js';
import { FileConfigStore } from '../../spec/store.js';
import { InputError } from '../../util/errors.js';
import { disposableRemoval } from '../disposable-removal.js';
import { vmName, withConnectOption, withHypervisor } from '../hypervisor.js';
import { cleanupDeps, summarize } from './gc.js';

interface DestroyArgs {
  name: string;
  yes: boolean;
  connect: string | undefined;
}

export const destroyCommand: CommandModule<object, DestroyArgs> = {
  command: 'destroy <name>',
  describe:
    'Delete a VM: its domain, disks and other files, config file and keyring entries (stops it first); also an unfinished create',
  builder: (yargs: Argv<object>) =>
    withConnectOption(yargs)
      .positional('name', { type: 'string', demandOption: true, describe: 'VM name' })
      .option('yes', { alias: 'y', type: 'boolean', default: false, describe: 'do not ask for confirmation' })
      .example('$0 destroy firefox-vm', 'asks first')
      .example('$0 destroy firefox-vm --yes', '') as unknown as Argv<DestroyArgs>,
  handler: async (argv: ArgumentsCamelCase<DestroyArgs>) => {
    const name = vmName(argv.name);
    const configStore = new FileConfigStore();
    const credentials = keyringCredentialStores();
    await withHypervisor(argv.connect, async (hypervisor) => {
      const unfinished = (await readJournal(name)) !== undefined;
      if (!argv.yes) {
        // Ask only about something that exists: an unknown name fails here with exit 2.
        if (!unfinished && !(await configStore.exists(name))) await requireOurVm(hypervisor, name);
        if (!process.stdin.isTTY) {
          throw new InputError(`destroy ${name}: not a terminal, cannot ask for confirmation; pass --yes`);
        }
        const { ok } = await (
          await import('inquirer')
        ).default.prompt<{ ok: boolean }>([
          {
            type: 'confirm',
            name: 'ok',
            message: `Delete VM ${name} with its disks, config and passwords? This cannot be undone.`,
            default: false,
          },
        ]);
        if (!ok) {
          process.stdout.write(`${name}: kept\n`);
          return;
        }
      }
      const cleanup = cleanupDeps(hypervisor);
      if (
        !unfinished &&
        (await requireOurVm(hypervisor, name).catch(() => undefined))?.role === 'disposable'
      ) {
        // Through the storage layer, domain last, and its windows dropped at the proxy (docs/disposables.md).
        const { removeDisposable } = await import('../../service/disposable.js');
        const removed = await removeDisposable(
          disposableRemoval(hypervisor, configStore, credentials),
          name,
        ).finally(cleanup.close);
        process.stdout.write(
          `${name}: disposable destroyed (${removed.removed.length} file(s), ${removed.configRemoved ? 'config, ' : ''}${removed.secretsDeleted} keyring entr${removed.secretsDeleted === 1 ? 'y' : 'ies'})\n`,
        );
        return;
      }
      const report = await destroyVm(
        {
          hypervisor,
          configStore,
          secretStores: [credentials.passwords, credentials.agentSecrets],
          unfinished: cleanup.deps,
        },
        name,
      ).finally(cleanup.close);
      if (report.unfinished) {
        process.stdout.write(`${name}: removed the unfinished create (${summarize(report.unfinished)})\n`);
        return;
      }
      const parts = [
        `${report.removedFiles.length} file(s)`,
        report.configRemoved ? 'config' : undefined,
        `${report.secretsDeleted} keyring entr${report.secretsDeleted === 1 ? 'y' : 'ies'}`,
      ].filter(Boolean);
      process.stdout.write(`${name}: destroyed (${parts.join(', ')})\n`);
      // Best effort: a launcher problem never fails the destroy (the line says what happened).
      process.stdout.write(`${await syncLaunchersQuietly({ hypervisor })}\n`);
    });
  },
};
