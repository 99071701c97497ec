import { describeDomain, openHypervisor } from '../../libvirt/index.js';
import { resolveConnectionFor } from '../hypervisor.js';
import { ourDomains } from '../../service/lifecycle.js';
import type { Hypervisor } from '../../service/ports.js';
import { validateVmName } from '../../spec/validate.js';
import { withTimeout } from '../../util/timeout.js';

/**
 * The names a completion script offers, straight from libvirt: the VMs and
 * templates vm-provisioner made (by their metadata, as `list` and `template
 * list` find them) and one VM's snapshots. A completion must never hang the
 * shell, so the whole lookup has one short deadline.
 */

export type NameKind = 'vms' | 'templates' | 'snapshots';

/** Long enough for libvirtd on a busy host, short enough that a TAB never feels stuck. */
export const COMPLETION_DEADLINE_MS = 3000;

export async function completionNames(
  kind: NameKind,
  connect: string | undefined,
  vm?: string,
  deadlineMs = COMPLETION_DEADLINE_MS,
): Promise<string[]> {
  const limits = { call: deadlineMs, save: deadlineMs, connect: deadlineMs };
  const lookup = async (): Promise<string[]> => {
    const { uri } = await resolveConnectionFor(connect);
    const hypervisor = await openHypervisor({ uri, timeouts: limits });
    try {
      return await namesFrom(hypervisor, kind, vm);
    } finally {
      await hypervisor.close();
    }
  };
  return withTimeout(lookup(), deadlineMs, `completion of ${kind}`);
}

async function namesFrom(hypervisor: Hypervisor, kind: NameKind, vm?: string): Promise<string[]> {
  if (kind === 'snapshots') {
    const name = validateVmName(vm);
    if (!(await hypervisor.exists(name))) return [];
    const ours = describeDomain(await hypervisor.xml(name, { inactive: true })).ours;
    return ours ? (await hypervisor.snapshotList(name)).sort() : [];
  }
  const domains = await ourDomains(hypervisor);
  return domains
    .filter((d) => (kind === 'templates' ? d.role === 'template' : d.role !== 'template'))
    .map((d) => d.name);
}
