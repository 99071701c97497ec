import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { listVms, type VmSummary } from '../../service/lifecycle.js';
import { withConnectOption, withHypervisor } from '../hypervisor.js';

interface ListArgs {
  json: boolean;
  connect: string | undefined;
}

export function formatVmTable(vms: VmSummary[]): string {
  const rows = [
    ['NAME', 'STATE', 'MEMORY', 'VCPUS', 'APPS'],
    ...vms.map((vm) => [
      vm.name,
      vm.state,
      `${vm.memoryMb} MiB`,
      String(vm.vcpus),
      vm.apps.join(', ') || '-',
    ]),
  ];
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((row) => row[col]!.length)));
  return rows
    .map((row) =>
      row
        .map((cell, col) => (col === row.length - 1 ? cell : cell.padEnd(widths[col]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export const listCommand: CommandModule<object, ListArgs> = {
  command: 'list',
  describe: 'List the VMs vm-provisioner made (state, memory, vCPUs, apps)',
  builder: (yargs: Argv<object>) =>
    withConnectOption(yargs)
      .option('json', { type: 'boolean', default: false, describe: 'print a JSON array' })
      .example('$0 list', '')
      .example('$0 list --json', '') as unknown as Argv<ListArgs>,
  handler: async (argv: ArgumentsCamelCase<ListArgs>) => {
    const vms = await withHypervisor(argv.connect, listVms);
    if (argv.json) {
      process.stdout.write(`${JSON.stringify(vms, null, 2)}\n`);
    } else if (vms.length === 0) {
      process.stdout.write('no VMs\n');
    } else {
      process.stdout.write(`${formatVmTable(vms)}\n`);
    }
  },
};
