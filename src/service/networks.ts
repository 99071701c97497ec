import { networkState, type NetworkState } from '../libvirt/networks.js';
import { DEFAULT_MODE_NETWORK } from '../render/xml-names.js';
import type { VmSpec } from '../spec/types.js';
import { InputError, VmpError } from '../util/errors.js';

/**
 * The network check of `create` and `start`: a VM on an inactive (or missing)
 * libvirt network would be made and then fail to boot with libvirt's raw
 * message, so both say first, in one line, what to run.
 */

/** The libvirt network a spec's network mode attaches to, if any. */
export function libvirtNetworkOf(mode: VmSpec['networkMode']): string | undefined {
  return mode === 'default' ? DEFAULT_MODE_NETWORK : undefined;
}

export type NetworkProbe = (uri: string, name: string) => Promise<NetworkState>;

function remedy(uri: string, name: string, state: Exclude<NetworkState, 'active'>): string {
  return state === 'inactive'
    ? `start it with: virsh -c ${uri} net-start ${name} (virsh net-autostart ${name} keeps it on)`
    : `define it (virsh -c ${uri} net-define /usr/share/libvirt/networks/${name}.xml, then net-start ${name})`;
}

/** `create`: the network of the spec's mode must exist and be active; InputError (exit 2) if not, nothing made. */
export async function checkNetworkForCreate(
  uri: string,
  mode: VmSpec['networkMode'],
  probe: NetworkProbe = networkState,
  network: string | undefined = libvirtNetworkOf(mode),
): Promise<void> {
  if (network === undefined) return;
  const state = await probe(uri, network);
  if (state === 'active') return;
  throw new InputError(
    `network ${mode}: libvirt network '${network}' at ${uri} ${state === 'inactive' ? 'is not active' : 'does not exist'}; ` +
      `${remedy(uri, network, state)}, or use --network user`,
  );
}

/** `start`: every libvirt network the domain attaches to must be active. */
export async function checkNetworksForStart(
  uri: string,
  vm: string,
  networks: readonly string[],
  probe: NetworkProbe = networkState,
): Promise<void> {
  for (const network of networks) {
    const state = await probe(uri, network);
    if (state === 'active') continue;
    throw new VmpError(
      `start: '${vm}' uses libvirt network '${network}', which ${state === 'inactive' ? 'is not active' : 'does not exist'} at ${uri}; ` +
        remedy(uri, network, state),
    );
  }
}
