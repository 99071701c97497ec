import chalk from 'chalk';
import fs from 'node:fs/promises';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import type { Label } from '../../spec/types.js';
import { DEFAULT_DISPLAY, DEFAULT_LABEL } from '../../spec/validate.js';
import { listVms, type VmSummary } from '../../service/inventory.js';
import { FileConfigStore } from '../../spec/store.js';
import { withConnectOption, withHypervisor } from '../hypervisor.js';
import { formatColumns } from '../../util/table.js';
import { mapPooled } from '../../util/pool.js';

interface ListArgs {
  json: boolean;
  disposables: boolean;
  connect: string | undefined;
}

/** Terminal colours for Qubes' labels; `gray` and `black` are what a terminal can show of them. */
const LABEL_COLOURS: Record<Label, (text: string) => string> = {
  red: chalk.red,
  orange: chalk.hex('#ff8c00'),
  yellow: chalk.yellow,
  green: chalk.green,
  blue: chalk.blue,
  purple: chalk.magenta,
  gray: chalk.gray,
  black: chalk.black.bgWhite,
};

/** The label as a coloured dot before its name when the terminal has colour, the name alone otherwise. */
export function formatLabel(label: Label): string {
  return chalk.level > 0 ? `${LABEL_COLOURS[label]('\u25cf')} ${label}` : label;
}

export function formatVmTable(vms: VmSummary[]): string {
  const rows = [
    ['NAME', 'STATE', 'LABEL', 'MEMORY', 'VCPUS', 'TEMPLATE', 'ON STOP', 'DISPLAY', 'APPS'],
    ...vms.map((vm) => [
      vm.disposable ? `${vm.name} (disposable)` : vm.name,
      vm.state === 'saved' && vm.savedBytes !== undefined
        ? `saved (${Math.round(vm.savedBytes / 1024 / 1024)} MiB)`
        : vm.state,
      formatLabel(vm.label ?? DEFAULT_LABEL),
      `${vm.memoryMb} MiB`,
      String(vm.vcpus),
      vm.template ?? '-',
      vm.onStop ?? 'shutdown',
      vm.display ?? DEFAULT_DISPLAY,
      (vm.apps.join(', ') || '-') +
        (vm.pendingFlatpaks.length > 0 ? ` (pending install: ${vm.pendingFlatpaks.join(', ')})` : ''),
    ]),
  ];
  return formatColumns(rows);
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
  return withHypervisor(connect, async (hypervisor) => {
    const found = await listVms(hypervisor, options);
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
    // One look at the directory instead of a lookup per VM.
    const store = new FileConfigStore();
    const files = new Set(
      await fs.readdir(store.dir).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return [];
        throw err;
      }),
    );
    await mapPooled(found, 8, async (vm) => {
      const spec = files.has(`${vm.name}.toml`)
        ? await store.read(vm.name).catch(() => undefined)
        : undefined;
      vm.onStop = spec?.onStop ?? 'shutdown';
      vm.label = spec?.label ?? DEFAULT_LABEL;
      vm.display = spec?.display ?? DEFAULT_DISPLAY;
    });
    return found;
  });
}

export function printVms(vms: VmSummary[], json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(vms, null, 2)}\n`);
  } else if (vms.length === 0) {
    process.stdout.write('no VMs\n');
  } else {
    process.stdout.write(`${formatVmTable(vms)}\n`);
  }
}
