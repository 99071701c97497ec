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

/** A domain's run state, named as `virsh domstate` names them. */
export type DomainState =
  'running' | 'idle' | 'paused' | 'in shutdown' | 'shut off' | 'crashed' | 'pmsuspended' | 'no state';

export interface DomainInfo {
  name: string;
  state: DomainState;
  maxMemoryKiB: number;
  memoryKiB: number;
  vcpus: number;
  /** CPU time the domain has used, in ns (from `info` only; undefined where the adapter cannot tell). */
  cpuTimeNs?: number;
}

/** One domain as `listDomainDetails` gives it: its inactive XML (which names it) and its info. */
export interface DomainDetails {
  inactiveXml: string;
  info: Omit<DomainInfo, 'name'>;
}

/** One line of `virsh event`: a lifecycle change of one domain. */
export interface DomainEvent {
  domain: string;
  /** e.g. `Started`, `Stopped`, `Shutdown`, `Defined`, `Undefined`, `Suspended`, `Resumed`. */
  event: string;
  /** e.g. `Booted`, `Destroyed`, `Finished after guest request`. */
  detail: string;
}

/** A live stream of lifecycle events; `close()` ends it. */
export interface DomainEventStream extends AsyncIterable<DomainEvent> {
  close(): void;
}

/**
 * The libvirt adapter (src/libvirt). Every call has a deadline and fails with
 * a typed error: NotFoundError, AlreadyExistsError, NotRunningError,
 * AlreadyRunningError, ServiceUnavailableError, TimeoutError or
 * HypervisorError, each keeping libvirt's own message.
 */
export interface Hypervisor {
  readonly uri: string;
  /** Which implementation serves the calls the binding covers. */
  readonly backend: 'binding' | 'virsh';
  /** Names of every domain, running or not, ours or not. */
  listDomains(): Promise<string[]>;
  /**
   * Every domain's persistent definition and info, in as few calls as the backend allows (`list`);
   * a domain undefined meanwhile is left out.
   */
  listDomainDetails(): Promise<DomainDetails[]>;
  exists(name: string): Promise<boolean>;
  /** Defines (persistently) a domain from XML. AlreadyExistsError if the name is taken. */
  define(xml: string): Promise<void>;
  /** Live XML, or the persistent definition with `inactive`. */
  xml(name: string, options?: { inactive?: boolean }): Promise<string>;
  info(name: string): Promise<DomainInfo>;
  start(name: string): Promise<void>;
  /** Asks the guest to power off (ACPI); returns at once. */
  shutdown(name: string): Promise<void>;
  /** Hard stop: pulls the plug. */
  destroy(name: string): Promise<void>;
  /** Removes the definition with its NVRAM, managed-save image and snapshot metadata. */
  undefine(name: string): Promise<void>;
  /** Saves the running VM's memory to libvirt's managed-save image and stops it; `start` resumes it. */
  managedSave(name: string): Promise<void>;
  hasManagedSave(name: string): Promise<boolean>;
  /** Names of every domain that has a managed-save image: one call for `list`, instead of one per domain. */
  listManagedSaved(): Promise<string[]>;
  /** Throws the saved memory image away; the next start is a cold boot. */
  managedSaveRemove(name: string): Promise<void>;
  /** Freezes a running VM's vCPUs; its memory stays in the QEMU process. */
  suspend(name: string): Promise<void>;
  resume(name: string): Promise<void>;
  /** An internal snapshot: of the disks of a shut-off VM, of disks and memory of a running one. */
  snapshotCreate(name: string, snapshot: string, description?: string): Promise<void>;
  /** libvirt's own description of one snapshot (`snapshot-dumpxml`). */
  snapshotXml(name: string, snapshot: string): Promise<string>;
  snapshotList(name: string): Promise<string[]>;
  /** With `force`, libvirt may stop or replace a running VM to do it. */
  snapshotRevert(name: string, snapshot: string, options?: { force?: boolean }): Promise<void>;
  snapshotDelete(name: string, snapshot: string): Promise<void>;
  /** Lifecycle events, of one domain or all; events just after the call may be missed while it subscribes. */
  events(domain?: string): DomainEventStream;
  /** Attaches the serial console to this terminal (interactive: no deadline); resolves with virsh's exit code. */
  console(name: string): Promise<number>;
  close(): Promise<void>;
}
