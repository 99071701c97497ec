import { keyringCredentialStores, type CredentialStores } from '../secrets/credentials.js';
import type { Hypervisor } from '../service/ports.js';
import type { PrefsDeps } from '../service/prefs.js';
import { FileConfigStore } from '../spec/store.js';

/**
 * The adapters `set` and `apply` change VMs with. `afterChange` is the one
 * place where what follows a committed setting is wired (the host launchers
 * of a VM whose label changed); nothing follows yet.
 */
export function prefsDeps(
  hypervisor: Hypervisor,
  configStore = new FileConfigStore(),
): PrefsDeps & { credentials: CredentialStores } {
  return { hypervisor, configStore, credentials: keyringCredentialStores() };
}
