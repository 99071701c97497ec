import type { VmSpec } from '../spec/types.js';

/**
 * The interfaces the service layer depends on. Adapters in src/spec (config
 * store), src/secrets (keyring) and src/libvirt implement them; tests can use
 * real adapters pointed at temporary directories and test services.
 */

/** Per-VM TOML settings under $XDG_CONFIG_HOME/vm-provisioner/. Never holds a secret. */
export interface ConfigStore {
  /** Absolute path of the VM's config file. */
  pathOf(name: string): string;
  exists(name: string): Promise<boolean>;
  /** Throws NotFoundError when absent, InputError naming file and line when damaged. */
  read(name: string): Promise<VmSpec>;
  /** Atomic (temp file + rename, mode 0600). With `exclusive`, fails if the VM already exists. */
  write(spec: VmSpec, options?: { exclusive?: boolean }): Promise<void>;
  /** Removes the file; no error if it is already gone. */
  remove(name: string): Promise<void>;
  /** Every VM config; a damaged file is reported in `error` and does not hide the others. */
  list(): Promise<Array<{ name: string; spec?: VmSpec; error?: string }>>;
}

/** Keyring service names: the VM's login password, and the guest agent's proxy secret. */
export const PASSWORD_SERVICE = 'vm-provisioner';
export const AGENT_SECRET_SERVICE = 'vm-provisioner-agent';

/** One keyring service's secrets, keyed by account (the VM name). Every call has a hard timeout. */
export interface SecretStore {
  set(account: string, secret: string): Promise<void>;
  get(account: string): Promise<string | null>;
  /** True if something was deleted. */
  delete(account: string): Promise<boolean>;
  list(): Promise<Array<{ account: string; secret: string }>>;
}
