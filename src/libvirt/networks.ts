import { DEFAULT_TIMEOUTS, type Timeouts, VirshHypervisor } from './virsh.js';

/**
 * libvirt networks, read only: whether the network a VM attaches to is up.
 * libvirt itself only says so when the VM starts, as a raw "network 'default'
 * is not active" deep in a start failure.
 */

export type NetworkState = 'active' | 'inactive' | 'missing';

/** Through `virsh net-info` (libvirt's message classified as elsewhere), with the usual call deadline. */
export async function networkState(
  uri: string,
  name: string,
  timeouts: Timeouts = DEFAULT_TIMEOUTS,
): Promise<NetworkState> {
  const virsh = new VirshHypervisor(uri, timeouts);
  try {
    const info = await virsh.virsh(`read libvirt network '${name}'`, ['net-info', name]);
    return /^Active:\s*yes\s*$/im.test(info) ? 'active' : 'inactive';
  } catch (err) {
    if (err instanceof Error && /Network not found|no network with matching name/i.test(err.message)) {
      return 'missing';
    }
    throw err;
  }
}

/** The libvirt networks a domain's interfaces attach to (`<interface type='network'><source network=.../>`). */
export function networksOfDomainXml(xml: string): string[] {
  const names: string[] = [];
  for (const match of xml.matchAll(/<interface\b[^>]*\btype=(['"])network\1[^>]*>([\s\S]*?)<\/interface>/g)) {
    const source = /<source\b[^>]*\bnetwork=(['"])([^'"]+)\1/.exec(match[2] ?? '');
    if (source?.[2] && !names.includes(source[2])) names.push(source[2]);
  }
  return names;
}
