import type { Hypervisor } from '../service/ports.js';
import { validateConnectUri } from '../spec/validate.js';
import { InputError } from '../util/errors.js';
import { BindingHypervisor, loadBinding } from './binding.js';
import { DEFAULT_URI, takeEarlyConnection, takeEarlyProbe } from './early-open.js';
import { connectTimeoutFromEnv, DEFAULT_TIMEOUTS, VirshHypervisor, type Timeouts } from './virsh.js';

export { describeDomain, type DomainDescription, type DomainDisk } from './inspect.js';
export {
  CONNECT_TIMEOUT_ENV,
  connectTimeoutFromEnv,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_TIMEOUTS,
  type Timeouts,
} from './virsh.js';

export { DEFAULT_URI } from './early-open.js';

/** Where the connection URI came from, as the plan shows it. */
export type UriSource = '--connect' | 'LIBVIRT_DEFAULT_URI' | 'defaults file' | 'built-in default';

/**
 * As virsh: `--connect`, else LIBVIRT_DEFAULT_URI, else (ours) the `connect`
 * of the user's defaults file, else the system daemon.
 */
export function resolveConnection(
  connect?: string,
  env: NodeJS.ProcessEnv = process.env,
  fromDefaults?: string,
): { uri: string; source: UriSource } {
  if (connect) return { uri: validateConnectUri(connect), source: '--connect' };
  if (env.LIBVIRT_DEFAULT_URI) {
    return { uri: validateConnectUri(env.LIBVIRT_DEFAULT_URI), source: 'LIBVIRT_DEFAULT_URI' };
  }
  if (fromDefaults) return { uri: validateConnectUri(fromDefaults), source: 'defaults file' };
  return { uri: DEFAULT_URI, source: 'built-in default' };
}

/** The URI alone; see resolveConnection. */
export function resolveUri(
  connect?: string,
  env: NodeJS.ProcessEnv = process.env,
  fromDefaults?: string,
): string {
  return resolveConnection(connect, env, fromDefaults).uri;
}

/** True when neither --connect nor LIBVIRT_DEFAULT_URI decides, so the defaults file is worth reading. */
export function needsDefaultsForUri(connect?: string, env: NodeJS.ProcessEnv = process.env): boolean {
  return !connect && !env.LIBVIRT_DEFAULT_URI;
}

export type Backend = 'auto' | 'binding' | 'virsh';

export interface OpenOptions {
  uri?: string;
  /** `auto` (default): the binding when it is installed, else virsh. VMP_LIBVIRT_BACKEND overrides. */
  backend?: Backend;
  timeouts?: Timeouts;
}

/** Opens the one libvirt adapter; fails with ServiceUnavailableError when libvirtd cannot be reached. */
export async function openHypervisor(options: OpenOptions = {}): Promise<Hypervisor> {
  const uri = options.uri ?? resolveUri();
  // Read the connect deadline now: a bad VMP_LIBVIRT_CONNECT_TIMEOUT_MS is an
  // InputError before anything is attempted, and callers' timeouts (create's
  // long ones) need not know about it.
  const timeouts = { ...(options.timeouts ?? DEFAULT_TIMEOUTS) };
  timeouts.connect ??= connectTimeoutFromEnv();
  const backend = options.backend ?? (process.env.VMP_LIBVIRT_BACKEND as Backend | undefined) ?? 'auto';
  if (!['auto', 'binding', 'virsh'].includes(backend)) {
    throw new InputError(`libvirt backend '${backend}' is invalid: use auto, binding or virsh`);
  }
  if (backend !== 'virsh') {
    // `list --json` may have started opening this URI before its modules loaded.
    const early = takeEarlyConnection(uri);
    if (early) return BindingHypervisor.adopt(early, timeouts);
    const binding = await loadBinding();
    if (binding) return BindingHypervisor.open(binding, uri, timeouts);
    if (backend === 'binding') {
      throw new InputError(
        'libvirt backend "binding" requested but @unraid/libvirt is not installed or did not build',
      );
    }
  }
  const hypervisor = new VirshHypervisor(uri, timeouts);
  await hypervisor.probe(takeEarlyProbe(uri));
  return hypervisor;
}
