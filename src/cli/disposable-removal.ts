import { controlRequest } from '../proxy/control-client.js';
import type { CredentialStores } from '../secrets/credentials.js';
import type { RemoveDeps } from '../service/disposable.js';
import type { ConfigStore, Hypervisor } from '../service/ports.js';
import { LibvirtVolumeStore } from '../storage/volumes.js';

/**
 * What removing a disposable from a command needs (`destroy dispNNNN`,
 * `template destroy` of its preloaded ones): its volumes through the storage
 * layer at its libvirt, and the proxy told to forget its windows (best
 * effort: the proxy may not run).
 */
export function disposableRemoval(
  hypervisor: Hypervisor,
  configStore: ConfigStore,
  credentials: CredentialStores,
): RemoveDeps {
  return {
    hypervisor,
    volumes: new LibvirtVolumeStore(hypervisor.uri),
    configStore,
    credentials,
    forgetAtProxy: async (vm) => {
      await controlRequest('forget', { vm }, { timeoutMs: 5_000 });
    },
  };
}
