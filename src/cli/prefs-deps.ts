import { keyringCredentialStores, type CredentialStores } from '../secrets/credentials.js';
import type { Hypervisor } from '../service/ports.js';
import type { PrefChange, PrefsDeps } from '../service/prefs.js';
import { FileConfigStore } from '../spec/store.js';

/** The settings the host's desktop launchers are made from: their icon's colour and one launcher per app. */
const LAUNCHER_KEYS: ReadonlySet<string> = new Set(['label', 'auto_launch_apps']);

/**
 * The adapters `set` and `apply` change VMs with. `afterChange` is the one
 * place where what follows a committed setting is wired: a VM whose label or
 * apps changed gets its launchers written again (docs/launchers.md), best
 * effort, as create and destroy do.
 */
export function prefsDeps(
  hypervisor: Hypervisor,
  configStore = new FileConfigStore(),
): PrefsDeps & { credentials: CredentialStores } {
  return {
    hypervisor,
    configStore,
    credentials: keyringCredentialStores(),
    afterChange: async (change: PrefChange) => {
      if (!change.keys.some((key) => LAUNCHER_KEYS.has(key))) return;
      const { syncLaunchersQuietly } = await import('../service/launchers.js');
      process.stdout.write(`${await syncLaunchersQuietly({ hypervisor, configStore })}\n`);
    },
  };
}
