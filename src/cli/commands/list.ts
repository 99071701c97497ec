import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { openListingCache, type ListingCache } from '../../libvirt/listing-cache.js';
import { listVms, type VmSummary } from '../../service/inventory.js';
import { listSettings, stampConfigs, type ConfigStamps } from '../../spec/list-settings.js';
import { withConnectOption, withHypervisor } from '../hypervisor.js';

interface ListArgs {
  json: boolean;
  disposables: boolean;
  connect: string | undefined;
}

export const listCommand: CommandModule<object, ListArgs> = {
  command: 'list',
  describe: 'List the VMs vm-provisioner made (state, memory, vCPUs, apps)',
  builder: (yargs: Argv<object>) =>
    withConnectOption(yargs)
      .option('json', { type: 'boolean', default: false, describe: 'print a JSON array' })
      .option('disposables', {
        type: 'boolean',
        default: false,
        describe: 'also list running disposables, marked as such (hidden otherwise)',
      })
      .example('$0 list', '')
      .example('$0 list --json', '')
      .example('$0 list --disposables', 'ordinary VMs and disposables') as unknown as Argv<ListArgs>,
  handler: async (argv: ArgumentsCamelCase<ListArgs>) =>
    printVms(await listedVms(argv.connect, { disposables: argv.disposables }), argv.json),
};

/** What `list` shows: our VMs with their config's settings. Also run by the CLI's fast path (src/cli/fast-path.ts). */
export async function listedVms(
  connect: string | undefined,
  options: { disposables?: boolean } = {},
): Promise<VmSummary[]> {
  // The config files are stat'ed and the cache read while libvirt opens the connection on one of
  // libuv's threads (it parses a test:/// file there, or waits for the daemon): setImmediate runs
  // once the open has been started, the binding's dlopen and connectOpen being promise steps.
  const stamping = new Promise<ConfigStamps>((resolve, reject) => {
    setImmediate(() => {
      try {
        resolve(stampConfigs());
      } catch (err) {
        reject(err);
      }
    });
  });
  // Awaited below, after the connection: its failure is the one to report.
  stamping.catch(() => undefined);
  // The definitions' descriptions from the last run, read meanwhile too (it never fails).
  const caching = new Promise<ListingCache>((resolve) => setImmediate(() => resolve(openListingCache())));
  return withHypervisor(connect, async (hypervisor) => {
    const listing = await caching;
    const found = await listVms(hypervisor, { ...options, describe: listing.describe });
    listing.save();
    // A running VM may have finished installing its pending Flatpaks: ask its guest, briefly.
    for (const vm of found) {
      if (vm.pendingFlatpaks.length === 0 || vm.state !== 'running') continue;
      // Loaded only here: most lists have nothing pending, and these pull in the template service.
      const { settlePendingFlatpaks } = await import('../../service/templates.js');
      const { guestReadFile } = await import('../../libvirt/qemu-agent.js');
      vm.pendingFlatpaks = await settlePendingFlatpaks(hypervisor, vm.name, vm.pendingFlatpaks, (file) =>
        guestReadFile(hypervisor.uri, vm.name, file, 64 * 1024),
      );
    }
    // on_stop, label and display live in the VM's config file; a VM without a readable one has the defaults.
    const settings = await listSettings(
      found.map((vm) => vm.name),
      {},
      await stamping,
    );
    for (const vm of found) Object.assign(vm, settings.get(vm.name));
    return found;
  });
}

export async function printVms(vms: VmSummary[], json: boolean): Promise<void> {
  if (json) {
    process.stdout.write(`${JSON.stringify(vms, null, 2)}\n`);
  } else if (vms.length === 0) {
    process.stdout.write('no VMs\n');
  } else {
    // The table (and chalk, a few ms to load) only when asked for: `list --json` is the fast path.
    const { formatVmTable } = await import('./list-table.js');
    process.stdout.write(`${formatVmTable(vms)}\n`);
  }
}
