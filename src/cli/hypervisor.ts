import type { Argv } from 'yargs';
import {
  needsDefaultsForUri,
  openHypervisor,
  resolveConnection,
  type Timeouts,
  type UriSource,
} from '../libvirt/index.js';
import type { Hypervisor } from '../service/ports.js';
import { singleValue, validateConnectUri, validateVmName } from '../spec/validate.js';

export { CONNECT_OPTION } from './connect-option.js';

/**
 * The type of a command that reads --connect. The option itself is the global
 * one (CONNECT_OPTION, declared once in run.ts): declaring it again here
 * would list its alias twice in --help.
 */
export function withConnectOption<T>(yargs: Argv<T>): Argv<T & { connect: string | undefined }> {
  return yargs as Argv<T & { connect: string | undefined }>;
}

export interface Connection {
  uri: string;
  source: UriSource;
  /** Where it came from, as the plan shows it: `--connect`, `LIBVIRT_DEFAULT_URI`, the defaults file's path, `default`. */
  shown: string;
}

/**
 * The connection really used: --connect, then LIBVIRT_DEFAULT_URI, then
 * `connect` in the defaults file, then qemu:///system. The defaults file is
 * read (and so validated) only when the first two do not decide.
 */
export async function resolveConnectionFor(
  connect: unknown,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Connection> {
  const given = connect === undefined ? undefined : validateConnectUri(singleValue('connect', connect));
  // Loaded only when read: the defaults file's TOML parser is most of what `list --json --connect` would load.
  const defaults = needsDefaultsForUri(given, env)
    ? await (await import('../spec/defaults-file.js')).loadUserDefaults()
    : undefined;
  const { uri, source } = resolveConnection(given, env, defaults?.connect);
  const shown =
    source === 'defaults file' && defaults
      ? (await import('../spec/plan.js')).tildePath(defaults.source)
      : source === 'built-in default'
        ? 'default'
        : source;
  return { uri, source, shown };
}

/** Opens the libvirt adapter for one command and always closes it. */
export async function withHypervisor<T>(
  connect: string | undefined,
  work: (hypervisor: Hypervisor) => Promise<T>,
  timeouts?: Timeouts,
): Promise<T> {
  const { uri } = await resolveConnectionFor(connect);
  const hypervisor = await openHypervisor({ uri, ...(timeouts ? { timeouts } : {}) });
  try {
    return await work(hypervisor);
  } finally {
    await hypervisor.close();
  }
}

/** A VM name argument, checked against the one name grammar before it reaches libvirt. */
export function vmName(value: unknown): string {
  return validateVmName(value);
}
