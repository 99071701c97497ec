import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { openHypervisor, resolveUri } from '../../libvirt/index.js';
import { KeyringSecretStore } from '../../secrets/keyring.js';
import {
  collectGarbage,
  describeEntry,
  type CleanupDeps,
  type CleanupReport,
} from '../../service/journal.js';
import type { Hypervisor } from '../../service/ports.js';
import { LibvirtVolumeStore } from '../../storage/volumes.js';
import { VmpError } from '../../util/errors.js';

/**
 * `gc`: removes what creates that never finished (killed, crashed, power
 * lost) left behind, as their journals list it. A create still running is
 * left alone and reported.
 */
export const gcCommand: CommandModule<object, object> = {
  command: 'gc',
  describe:
    'Remove what unfinished (crashed or killed) creates left behind, disposables whose CLI is gone, and preloaded disposables; running ones are left alone',
  builder: (yargs: Argv<object>) => yargs.example('$0 gc', ''),
  handler: async (_argv: ArgumentsCamelCase<object>) => {
    const cleanup = cleanupDeps();
    try {
      // Disposables first: a killed one's create journal is theirs to clean up, with its record.
      const disposables = await sweepDisposables(cleanup.deps);
      const outcomes = await collectGarbage(cleanup.deps);
      let failed = disposables.failed;
      for (const outcome of outcomes) {
        switch (outcome.status) {
          case 'removed':
            process.stdout.write(
              `${outcome.vm}: removed the unfinished create (${summarize(outcome.report)})\n`,
            );
            break;
          case 'in-progress':
            process.stdout.write(
              `${outcome.vm}: still being created (${outcome.operation}, pid ${outcome.pid}); left alone\n`,
            );
            break;
          case 'failed':
            failed += 1;
            process.stderr.write(`${outcome.vm}: ${outcome.error}\n`);
            break;
        }
      }
      if (outcomes.length === 0 && disposables.count === 0) process.stdout.write('nothing to clean up\n');
      if (failed > 0) throw new VmpError(`gc could not clean up ${failed} item(s); see above`);
    } finally {
      await cleanup.close();
    }
  },
};

/**
 * Removes the disposables whose owning CLI is gone (docs/disposables.md), from
 * their owner records, printing a line for each. No record, no libvirt.
 */
async function sweepDisposables(journal: CleanupDeps): Promise<{ count: number; failed: number }> {
  const { sweepOrphanedDisposables } = await import('../../service/disposable.js');
  const { keyringCredentialStores } = await import('../../secrets/credentials.js');
  const { FileConfigStore } = await import('../../spec/store.js');
  const { controlRequest } = await import('../../proxy/control-client.js');
  const outcomes = await sweepOrphanedDisposables({
    configStore: new FileConfigStore(),
    credentials: keyringCredentialStores(),
    journal,
    volumesFor: (uri) => new LibvirtVolumeStore(uri),
    // Preloaded disposables hold memory; the next run --disposable preloads again.
    preloaded: 'remove',
    forgetAtProxy: async (vm) => {
      await controlRequest('forget', { vm }, { timeoutMs: 5_000 });
    },
  });
  let failed = 0;
  for (const outcome of outcomes) {
    if (outcome.status === 'removed') {
      process.stdout.write(
        outcome.preloaded
          ? `${outcome.name}: removed the preloaded disposable (${outcome.detail})\n`
          : `${outcome.name}: removed the disposable whose owner is gone (${outcome.detail})\n`,
      );
    } else {
      failed += 1;
      process.stderr.write(`${outcome.name}: ${outcome.error}\n`);
    }
  }
  return { count: outcomes.length, failed };
}

/** What a cleanup removed, in a few words: the files by path, the rest counted. */
export function summarize(report: CleanupReport): string {
  const parts = report.removed.length === 0 ? ['nothing was left'] : report.removed.map(describeEntry);
  for (const { entry, reason } of report.kept) parts.push(`kept ${describeEntry(entry)}: ${reason}`);
  return parts.join(', ');
}

/**
 * The real adapters a journal cleanup needs. Hypervisors are opened only for
 * journals that list a domain, at the URI the create used; `reuse` is one
 * already open (destroy's).
 */
export function cleanupDeps(reuse?: Hypervisor): { deps: CleanupDeps; close: () => Promise<void> } {
  const opened = new Map<string, Promise<Hypervisor>>();
  const deps: CleanupDeps = {
    hypervisorFor: (uri) => {
      if (reuse && reuse.uri === uri) return Promise.resolve(reuse);
      let hv = opened.get(uri);
      if (!hv) {
        hv = openHypervisor({ uri: resolveUri(uri) });
        opened.set(uri, hv);
      }
      return hv;
    },
    secretStoreFor: (service) => new KeyringSecretStore(service),
    removeVolume: (hypervisor, entry) => {
      if (!('path' in entry)) {
        throw new VmpError(
          `volume ${entry.name} of pool ${entry.pool}: only volumes journaled by path are removed`,
        );
      }
      return new LibvirtVolumeStore(hypervisor.uri).remove(entry.path);
    },
  };
  return {
    deps,
    close: async () => {
      for (const hv of opened.values()) await (await hv.catch(() => undefined))?.close();
    },
  };
}
