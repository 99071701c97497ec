import path from 'node:path';
import { diskPathOf, importedVmPaths } from './defaults.js';
import type { CreateOptions } from './build.js';
import type { VmSpec } from './types.js';

/**
 * The human-readable summary `create --dry-run` prints (and `create` shows
 * before asking for confirmation). Pure: spec and options in, text out.
 */
export function formatPlan(spec: VmSpec, options: CreateOptions, configPath?: string): string {
  const list = (items: string[]): string => (items.length === 0 ? '(none)' : items.join(', '));
  const disk = options.importDisk
    ? `${options.importDisk} (imported, not installed)`
    : `${diskPathOf(spec)} (${spec.diskSizeGb} GB, qcow2)`;
  const install = options.importDisk
    ? 'none (booting the imported disk)'
    : `Fedora ${spec.fedoraRelease} ${spec.arch} from ${options.location ?? 'the release mirror'}`;
  const rows: Array<[string, string]> = [
    ['name', spec.name],
    ['connection', connectionRow(spec, options)],
    ['release', `Fedora ${spec.fedoraRelease} (${spec.arch})`],
    ['install', install],
    ['memory', `${spec.memoryMb} MiB`],
    ['vCPUs', String(spec.vcpus)],
    ['disk', disk],
    ['system packages', list(spec.systemPackages)],
    ['flatpak apps', list(spec.flatpakPackages)],
    ['autostart apps', list(spec.autoLaunchApps)],
    ['graphics', `${spec.graphicsBackend}, SPICE${spec.enableClipboard ? ' with clipboard' : ''}`],
    ['network', spec.networkMode],
    ['firewall rules', list(spec.firewallRules)],
    ['audio', spec.enableAudio ? 'on' : 'off'],
    ['USB passthrough', spec.enableUsbPassthrough ? 'on' : 'off'],
    ['auto-login', spec.enableAutoLogin ? 'on' : 'off'],
  ];
  if (options.importDisk) {
    rows.push(['config disk', `${importedVmPaths(spec).configDisk} (read-only, made per VM)`]);
    const boot = options.importBoot;
    rows.push([
      'boot',
      boot
        ? `kernel ${boot.kernel}, initrd ${boot.initrd} (copied into ${spec.vmDir}), args ${boot.kernelArgs || '(none)'}`
        : "the imported disk's boot loader",
    ]);
  }
  if (configPath !== undefined) rows.push(['config file', configPath]);
  const width = Math.max(...rows.map(([k]) => k.length)) + 1;
  const body = rows.map(([k, v]) => `  ${`${k}:`.padEnd(width)} ${v}`).join('\n');
  const header = options.dryRun
    ? `Plan for VM "${spec.name}" (dry run: no VM, disk, keyring entry or config is made)`
    : `Plan for VM "${spec.name}"`;
  return `${header}\n${body}\n`;
}

/** The plan's connection: the URI really used, where it came from, the domain type. */
export function connectionRow(
  spec: Pick<VmSpec, 'virtType'>,
  options: Pick<CreateOptions, 'connectUri' | 'connectSource'>,
): string {
  const from = options.connectSource !== undefined ? `from ${options.connectSource}, ` : '';
  return `${options.connectUri} (${from}domain type ${spec.virtType})`;
}

/** Where the plan shows a path relative to the user's home as ~/..., for reading only. */
export function tildePath(p: string, home = process.env.HOME ?? ''): string {
  return home && path.isAbsolute(home) && p.startsWith(`${home}/`) ? `~/${p.slice(home.length + 1)}` : p;
}
