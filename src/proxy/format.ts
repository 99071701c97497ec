import type { ProxyEvent } from './server.js';
import type { VmWindowsView } from './window-table.js';
import { formatColumns } from '../util/table.js';

/**
 * Human-readable output for `windows`. Titles and classes come from a guest,
 * so control characters are shown escaped, never sent to the terminal.
 */

// Control characters and bidi overrides, which could rewrite what the terminal shows.
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function hexId(id: number): string {
  return `0x${id.toString(16).padStart(8, '0')}`;
}

export function formatWindowsTable(vms: VmWindowsView[]): string {
  if (vms.length === 0) return 'No VM agent has connected to the window proxy yet.\n';
  const rows: string[][] = [['VM', 'WINDOW', 'GEOMETRY', 'FLAGS', 'CLASS', 'TITLE']];
  for (const vm of vms) {
    if (vm.windows.length === 0) {
      rows.push([vm.name + (vm.connected ? '' : ' (disconnected)'), '-', '-', '-', '-', '(no windows)']);
      continue;
    }
    for (const w of vm.windows) {
      const flags = [
        w.id === vm.focused ? 'focused' : '',
        w.mapped ? '' : 'unmapped',
        w.overrideRedirect ? 'override' : '',
        w.transientFor ? `transient-for=${hexId(w.transientFor)}` : '',
      ].filter(Boolean);
      rows.push([
        vm.name + (vm.connected ? '' : ' (disconnected)'),
        hexId(w.id),
        `${w.width}x${w.height}${w.x < 0 ? '' : '+'}${w.x}${w.y < 0 ? '' : '+'}${w.y}`,
        flags.join(',') || '-',
        printable(w.wmClass) || '-',
        printable(w.title),
      ]);
    }
  }
  return `${formatColumns(rows)}\n`;
}

export function formatEvent(event: ProxyEvent): string {
  const head = `${event.time} ${event.vm}`;
  switch (event.type) {
    case 'agent-connected':
      return `${head} agent connected from ${event.peer}`;
    case 'agent-disconnected':
      return `${head} agent disconnected: ${printable(event.reason)}`;
    case 'window-created':
      return `${head} created ${hexId(event.window.id)} ${event.window.width}x${event.window.height}+${event.window.x}+${event.window.y} ${printable(event.window.wmClass)} "${printable(event.window.title)}"`;
    case 'window-destroyed':
      return `${head} destroyed ${hexId(event.id)}`;
    case 'window-moved':
      return `${head} moved ${hexId(event.id)} to ${event.x},${event.y}`;
    case 'window-resized':
      return `${head} resized ${hexId(event.id)} to ${event.width}x${event.height}`;
    case 'focus-changed':
      return `${head} focus ${event.id === 0 ? 'none' : hexId(event.id)}`;
    case 'title-changed':
      return `${head} title ${hexId(event.id)} "${printable(event.title)}"`;
    case 'window-mapped':
      return `${head} mapped ${hexId(event.id)}`;
    case 'window-unmapped':
      return `${head} unmapped ${hexId(event.id)}`;
    case 'exec-exited':
      return `${head} command ${event.execId} ${event.how === 'exited' ? `exited with status ${event.code}` : `killed by signal ${event.code}`}`;
    case 'vm-forgotten':
      return `${head} forgotten (the VM was removed)`;
    case 'window-list':
      return `${head} snapshot: ${event.windows.length} windows, focus ${event.focused === 0 ? 'none' : hexId(event.focused)}`;
  }
}
