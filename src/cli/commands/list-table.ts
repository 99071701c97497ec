import chalk from 'chalk';
import type { VmSummary } from '../../service/inventory.js';
import type { Label } from '../../spec/types.js';
import { DEFAULT_DISPLAY, DEFAULT_LABEL } from '../../spec/validate.js';
import { formatColumns } from '../../util/table.js';

/** `list`'s table, apart from the command so that `list --json` loads neither it nor chalk. */

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
