import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describeDomain, describeListing, type DomainDescription } from '../libvirt/inspect.js';
import type { DisplayMode, Label } from '../spec/types.js';
import { NotFoundError } from '../util/errors.js';
import { mapPooled } from '../util/pool.js';
import type { DomainDetails, DomainState, Hypervisor } from './ports.js';

/**
 * Which of the hypervisor's domains are ours, and what `list` shows of them.
 * Kept apart from lifecycle.ts, and light in what it imports, because `list`
 * and every command that looks up a VM need it first (docs/architecture.md,
 * "Start-up").
 */

/** The domain, if it exists and is ours; NotFoundError (exit 2) otherwise, with no hint of foreign domains' content. */
export async function requireOurVm(hypervisor: Hypervisor, name: string): Promise<DomainDescription> {
  const notFound = new NotFoundError(`no VM named '${name}' (at ${hypervisor.uri})`);
  if (!(await hypervisor.exists(name))) throw notFound;
  let description: DomainDescription;
  try {
    description = describeDomain(await hypervisor.xml(name, { inactive: true }));
  } catch (err) {
    // It vanished between the two calls.
    if (err instanceof NotFoundError) throw notFound;
    throw err;
  }
  if (!description.ours) throw notFound;
  return description;
}

export interface VmSummary {
  name: string;
  /** libvirt's state, or `saved` for a shut-off VM with saved memory that `start` resumes. */
  state: DomainState | 'saved';
  /** Size of the saved memory image, when saved and visible to us. */
  savedBytes?: number;
  /** What `stop` does by default (the VM's on_stop); filled in from its config by the CLI. */
  onStop?: 'save' | 'shutdown';
  /** Trust colour and display mode (the VM's label and display); filled in from its config by the CLI. */
  label?: Label;
  display?: DisplayMode;
  memoryMb: number;
  vcpus: number;
  apps: string[];
  /** The template an app VM is built on. */
  template?: string;
  /** A disposable (docs/disposables.md); listed only when asked for. */
  disposable?: true;
  /** Flatpaks it installs at its first boot and has not been seen to have installed yet. */
  pendingFlatpaks: string[];
}

/** Per-domain libvirt calls in flight at once (see mapPooled). */
const DOMAIN_CALLS_IN_FLIGHT = 4;

/** Every domain carrying our metadata (app VMs and templates), sorted by name, each definition read once. */
export async function ourDomains(hypervisor: Hypervisor): Promise<DomainDescription[]> {
  const names = (await hypervisor.listDomains()).sort();
  const described = await mapPooled(names, DOMAIN_CALLS_IN_FLIGHT, async (name) => {
    try {
      return describeDomain(await hypervisor.xml(name, { inactive: true }));
    } catch (err) {
      // Undefined by someone else while we were listing.
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  });
  return described.filter((d): d is DomainDescription => d?.ours === true);
}

/**
 * Our VMs, sorted by name; domains we did not make, and templates, are left
 * out, and so are disposables unless `disposables` asks for them.
 */
export async function listVms(
  hypervisor: Hypervisor,
  options: {
    disposables?: boolean;
    /** describeListing, or the same from a cache of it (src/libvirt/listing-cache.ts). */
    describe?: (inactiveXml: string) => DomainDescription;
  } = {},
): Promise<VmSummary[]> {
  const describe = options.describe ?? describeListing;
  const ours: Array<{ description: DomainDescription; info: DomainDetails['info'] }> = [];
  // Each definition and info in as few calls as the backend allows, not a lookup and two calls per name.
  for (const { inactiveXml, info } of await hypervisor.listDomainDetails()) {
    const description = describe(inactiveXml);
    // Templates are listed by `template list`: they are bases, not VMs anyone runs. Disposables are
    // throwaway VMs that vanish on their own: shown only with `list --disposables`.
    if (!description.ours || description.role === 'template') continue;
    if (description.role === 'disposable' && options.disposables !== true) continue;
    ours.push({ description, info });
  }
  ours.sort((a, b) => compareNames(a.description.name, b.description.name));
  // One call for all of them: asking per domain spawned virsh once for every VM that was off.
  const withSavedState = ours.length > 0 ? new Set(await hypervisor.listManagedSaved()) : new Set();
  const saved = ours.map(
    ({ description, info }) => info.state === 'shut off' && withSavedState.has(description.name),
  );
  // Only a saved VM has an image to stat: the rest need no promise each.
  const savedBytes = await Promise.all(
    ours.map(({ description }, i) =>
      saved[i] ? savedStateBytes(hypervisor.uri, description.name) : undefined,
    ),
  );
  return ours.map(({ description, info }, i) => {
    const bytes = savedBytes[i];
    const summary: VmSummary = {
      name: description.name,
      state: saved[i] ? 'saved' : info.state,
      ...(bytes !== undefined ? { savedBytes: bytes } : {}),
      memoryMb: Math.round(info.maxMemoryKiB / 1024),
      vcpus: info.vcpus,
      apps: description.apps,
      ...(description.template ? { template: description.template.name } : {}),
      ...(description.role === 'disposable' ? { disposable: true as const } : {}),
      pendingFlatpaks: description.pendingFlatpaks,
    };
    return summary;
  });
}

/** The order Array.prototype.sort gives strings (UTF-16 code units), as ourDomains sorts names. */
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Where libvirt keeps a managed-save image (libvirt's qemu driver layout), if we know for this URI. */
export function managedSavePath(
  uri: string,
  name: string,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  if (/^qemu(\+unix)?:\/\/\/system$/.test(uri)) return `/var/lib/libvirt/qemu/save/${name}.save`;
  if (/^qemu(\+unix)?:\/\/\/session$/.test(uri)) {
    const config = env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
    return path.join(config, 'libvirt', 'qemu', 'save', `${name}.save`);
  }
  return undefined;
}

/** Size of the VM's saved memory image in bytes; undefined when there is none or it cannot be seen. */
export async function savedStateBytes(uri: string, name: string): Promise<number | undefined> {
  const file = managedSavePath(uri, name);
  if (!file) return undefined;
  return (await fs.stat(file).catch(() => undefined))?.size;
}
