import { keyringCredentialStores, listVmPasswords, type CredentialStores } from '../secrets/credentials.js';
import { FileConfigStore } from '../spec/store.js';
import type { ConfigStore } from './ports.js';

export interface VmPasswordRow {
  name: string;
  /** Null when the VM has a config file but the keyring holds no password for it. */
  password: string | null;
}

/**
 * Every VM of ours with its password: each keyring entry under service
 * `vm-provisioner`, plus each configured VM whose password is missing from the
 * keyring (shown, so that a lost entry is noticed rather than hidden).
 */
export async function vmPasswordReport(
  deps: { config?: ConfigStore; stores?: CredentialStores } = {},
): Promise<VmPasswordRow[]> {
  const config = deps.config ?? new FileConfigStore();
  const [stored, configured] = await Promise.all([
    listVmPasswords(deps.stores ?? keyringCredentialStores()),
    config.list(),
  ]);
  const rows = new Map<string, VmPasswordRow>(stored.map((r) => [r.name, r]));
  for (const { name } of configured) if (!rows.has(name)) rows.set(name, { name, password: null });
  return [...rows.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
