import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { DomainDescription } from '../libvirt/inspect.js';
import { copyImage, requireQcow2 } from '../libvirt/images.js';
import { buildConfigDisk } from '../configdisk/image.js';
import {
  provisionVmCredentials,
  removeVmCredentials,
  type CredentialStores,
} from '../secrets/credentials.js';
import { diskPathOf, importedVmPaths } from '../spec/defaults.js';
import type { VmSpec } from '../spec/types.js';
import {
  AlreadyExistsError,
  InputError,
  NotFoundError,
  NotRunningError,
  TimeoutError,
} from '../util/errors.js';
import { renderImportDomainXml, vmConfigDiskFiles } from './artifacts.js';
import type { LockingConfigStore } from './create.js';
import {
  cleanUpUnfinished,
  interruptibleSteps,
  Journal,
  journalDir as defaultJournalDir,
  readJournal,
  refuseUnfinished,
  testStopPoint,
  type CleanupDeps,
  type CleanupReport,
  type JournalEntry,
} from './journal.js';
import { AGENT_SECRET_SERVICE, PASSWORD_SERVICE } from './ports.js';
import type { ConfigStore, DomainState, Hypervisor, SecretStore } from './ports.js';
import { ensureTemplateUnused } from './templates.js';
import { displayOwnerOption } from '../seamless/owner.js';
import { abandonCreate, pathExists, type UndoStep } from './undo.js';
import { requireOurVm } from './inventory.js';
import { consoleLogPath, ensureLogDir } from '../install/logs.js';

/**
 * VM lifecycle over the ports: every function takes the adapters it needs, so
 * the CLI wires real ones and tests pass real ones pointed at test services.
 * Only domains carrying our metadata are ever shown or touched.
 */

export { listVms, ourDomains, requireOurVm, type VmSummary } from './inventory.js';

export { startVm, type StartResult } from './start.js';
export { hasGraphicalSession, openViewer, viewerArgv } from './viewer.js';

export async function waitForState(
  hypervisor: Hypervisor,
  name: string,
  wanted: DomainState[],
  timeoutMs: number,
  pollMs = 250,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (wanted.includes((await hypervisor.info(name)).state)) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, Math.min(pollMs, Math.max(0, deadline - Date.now()))));
  }
}

export interface StopOptions {
  timeoutMs: number;
  /** Hard stop when the guest ignores the ACPI request within the timeout. */
  force?: boolean;
  /** Asked (on a terminal) whether to stop hard after the timeout; absent means no. */
  confirmHardStop?: () => Promise<boolean>;
}

export type StopOutcome = 'already-stopped' | 'shut-down' | 'forced';

/** ACPI shutdown, wait, then hard stop with `force` or consent; TimeoutError otherwise. */
export async function stopVm(
  hypervisor: Hypervisor,
  name: string,
  options: StopOptions,
): Promise<StopOutcome> {
  await requireOurVm(hypervisor, name);
  if ((await hypervisor.info(name)).state === 'shut off') return 'already-stopped';
  await hypervisor.shutdown(name);
  if (await waitForState(hypervisor, name, ['shut off'], options.timeoutMs)) return 'shut-down';
  if (options.force || (options.confirmHardStop && (await options.confirmHardStop()))) {
    await hardStop(hypervisor, name);
    return 'forced';
  }
  throw new TimeoutError(
    `VM '${name}' did not shut down within ${Math.round(options.timeoutMs / 1000)} s after the ACPI request; use --force to stop it hard`,
  );
}

/** Destroy, tolerating the guest powering off by itself in between. */
async function hardStop(hypervisor: Hypervisor, name: string): Promise<void> {
  try {
    await hypervisor.destroy(name);
  } catch (err) {
    if ((await hypervisor.info(name)).state !== 'shut off') throw err;
  }
}

export interface DestroyDeps {
  hypervisor: Hypervisor;
  configStore?: ConfigStore;
  /** One store per keyring service (VM password, agent secret); the VM's entries are deleted. */
  secretStores?: SecretStore[];
  /** With this, a VM whose create never finished (it has a journal) is cleaned up through its journal. */
  unfinished?: CleanupDeps;
}

export interface DestroyReport {
  removedFiles: string[];
  configRemoved: boolean;
  secretsDeleted: number;
  /** Set when the VM was an unfinished create, removed through its journal. */
  unfinished?: CleanupReport;
}

/**
 * Removes everything the VM owns: the domain (stopped hard first if running)
 * with NVRAM, managed save and snapshot metadata, its disk files (the config
 * disk too), the files its metadata lists as its own (`<vmp:file>`), its
 * config file and its keyring entries. A VM whose domain is gone but whose config is
 * left (an interrupted destroy) is cleaned up too.
 */
export async function destroyVm(deps: DestroyDeps, name: string): Promise<DestroyReport> {
  const { hypervisor } = deps;
  if (deps.unfinished && (await readJournal(name, deps.unfinished.dir))) {
    // Its journal lists a superset of what exists; names alone would be a guess.
    const cleaned = await cleanUpUnfinished(deps.unfinished, name);
    const files = cleaned.removed.flatMap((e) => (e.kind === 'file' ? [e.path] : []));
    return {
      removedFiles: files,
      configRemoved: cleaned.removed.some((e) => e.kind === 'config'),
      secretsDeleted: cleaned.removed.filter((e) => e.kind === 'keyring').length,
      unfinished: cleaned,
    };
  }
  const report: DestroyReport = { removedFiles: [], configRemoved: false, secretsDeleted: 0 };
  let description: DomainDescription | undefined;
  try {
    description = await requireOurVm(hypervisor, name);
  } catch (err) {
    if (!(err instanceof NotFoundError) || !(await deps.configStore?.exists(name))) throw err;
    // Only our own leftovers count: a foreign domain of that name stays untouched.
    if (await hypervisor.exists(name)) throw err;
  }
  if (description) {
    // A template's disk is the base of its app VMs: it goes only when none is left.
    if (description.role === 'template') await ensureTemplateUnused(hypervisor, name);
    if ((await hypervisor.info(name)).state !== 'shut off') await hardStop(hypervisor, name);
    await hypervisor.undefine(name);
    // Disks, then the files our metadata says the VM owns (a direct-boot kernel and initrd), then the wake FIFOs
    // the display socket and its console log (a new VM of this name must not append to it).
    const wake = description.wakePipe ? [`${description.wakePipe}.in`, `${description.wakePipe}.out`] : [];
    const display = description.display ? [description.display.socket] : [];
    const consoleLog = consoleLogPath(name);
    for (const file of [
      ...description.disks.map((d) => d.file),
      ...description.files,
      ...wake,
      ...display,
      consoleLog,
    ]) {
      if (!path.isAbsolute(file)) continue;
      try {
        await fs.rm(file);
        report.removedFiles.push(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
  }
  if (deps.configStore && (await deps.configStore.exists(name))) {
    await deps.configStore.remove(name);
    report.configRemoved = true;
  }
  for (const store of deps.secretStores ?? []) {
    if (await store.delete(name)) report.secretsDeleted += 1;
  }
  return report;
}

export async function consoleVm(hypervisor: Hypervisor, name: string): Promise<number> {
  await requireOurVm(hypervisor, name);
  // virsh console on an inactive domain prints libvirt's (and, through polkit, its agent's) noise
  // instead of saying the one thing that matters.
  const { state } = await hypervisor.info(name);
  if (state === 'shut off' || state === 'crashed') {
    throw new NotRunningError(
      `console: '${name}' is not running; start it with: vm-provisioner start ${name}`,
    );
  }
  return hypervisor.console(name);
}

export interface ImportDeps {
  hypervisor: Hypervisor;
  configStore: ConfigStore;
  /** Where the VM's password and agent secret are kept; the config disk carries them into the guest. */
  credentials: CredentialStores;
  /** Where the create journal goes; default $XDG_STATE_HOME/vm-provisioner/journal. */
  journalDir?: string;
}

export interface ImportOptions {
  /** An existing bootable qcow2 image; it is copied, never used or changed in place. */
  importDisk: string;
  /** Direct kernel boot: both files are copied into the VM's directory and owned by the VM. */
  boot?: { kernel: string; initrd: string; kernelArgs: string };
  version: string;
  /** Ctrl+C: checked between steps; what was made so far is removed and CancelledError thrown. */
  signal?: AbortSignal;
  /** Called once the VM is complete (config written); an interrupt after this must not undo it. */
  onCommitted?: () => void;
}

export interface ImportResult {
  diskPath: string;
  configDiskPath: string;
  /** The VM's copies of the kernel and initrd, with direct boot. */
  kernelPath?: string;
  initrdPath?: string;
}

/**
 * `create --import`: a VM from an existing disk, with no install. The
 * credentials go into the keyring first; the per-VM config disk carries
 * them (the password only as its hash), the agent config, the session
 * config and the app units to the guest's loader (docs/config-disk.md).
 * On any failure everything made so far is removed again.
 */
export async function createFromDisk(
  deps: ImportDeps,
  spec: VmSpec,
  options: ImportOptions,
): Promise<ImportResult> {
  const { hypervisor, configStore } = deps;
  const name = spec.name;
  const journalDir = deps.journalDir ?? defaultJournalDir();
  // Before the lock: a lock left by a crashed create must not hide the message saying what to run.
  await refuseUnfinished(name, journalDir);
  const lock = isLocking(configStore) ? await configStore.acquireLock(name) : undefined;
  try {
    await requireQcow2(options.importDisk);
    if (await hypervisor.exists(name)) {
      throw new AlreadyExistsError(`a domain named '${name}' already exists at ${hypervisor.uri}`);
    }
    if (await configStore.exists(name)) {
      throw new AlreadyExistsError(`VM '${name}' already has a config file: ${configStore.pathOf(name)}`);
    }
    const diskPath = diskPathOf(spec);
    const owned = importedVmPaths(spec);
    const made = [diskPath, owned.configDisk, ...(options.boot ? [owned.kernel, owned.initrd] : [])];
    for (const file of made) {
      if (await pathExists(file)) {
        throw new AlreadyExistsError(`${file} already exists; it is never overwritten`);
      }
    }
    // Rendered before anything is made: a value that breaks a grammar costs nothing.
    const xml = renderImportDomainXml(
      spec,
      options.boot,
      options.version,
      displayOwnerOption(hypervisor.uri),
    );

    const journal = await Journal.begin({
      vm: name,
      operation: 'create --import',
      connectUri: hypervisor.uri,
      entries: lockEntries(configStore, lock, name),
      dir: journalDir,
    });
    const undo: UndoStep[] = [];
    const removeFile = (file: string) => ({ what: file, run: () => fs.rm(file, { force: true }) });
    // Each step's undo is registered before the next step's interrupt check, so an interrupt never leaks what it made.
    const next = interruptibleSteps(journal, name, options.signal);
    try {
      await next('keyring', credentialEntries(name));
      undo.push({ what: 'keyring entries', run: () => removeVmCredentials(name, deps.credentials) });
      const credentials = await provisionVmCredentials(name, deps.credentials);
      const files = vmConfigDiskFiles(spec, credentials);
      await fs.mkdir(spec.vmDir, { recursive: true, mode: 0o711 });
      await next('config-disk', [{ kind: 'file', path: owned.configDisk }]);
      // Each step removes its own half-made file; undo is pushed only once the file is ours.
      await buildConfigDisk(files, owned.configDisk);
      undo.push(removeFile(owned.configDisk));
      await next('disk', [{ kind: 'file', path: diskPath }]);
      await copyImage(options.importDisk, diskPath);
      undo.push(removeFile(diskPath));
      if (options.boot) {
        await next('boot-files', [
          { kind: 'file', path: owned.kernel },
          { kind: 'file', path: owned.initrd },
        ]);
        await copyBootFile(options.boot.kernel, owned.kernel, '--kernel');
        undo.push(removeFile(owned.kernel));
        await copyBootFile(options.boot.initrd, owned.initrd, '--initrd');
        undo.push(removeFile(owned.initrd));
      }
      await next('domain', [{ kind: 'domain', name }]);
      await ensureLogDir();
      await hypervisor.define(xml);
      undo.push({ what: `domain '${name}'`, run: () => hypervisor.undefine(name) });
      await next('config', [{ kind: 'config', path: configStore.pathOf(name) }]);
      await configStore.write(spec, { exclusive: true });
    } catch (err) {
      throw await abandonCreate(err, {
        name,
        undo,
        journal,
        ...(options.signal ? { signal: options.signal } : {}),
      });
    }
    // The config is written: the VM is complete, whatever interrupt comes now.
    await journal.finish();
    options.onCommitted?.();
    testStopPoint('committed');
    return {
      diskPath,
      configDiskPath: owned.configDisk,
      ...(options.boot ? { kernelPath: owned.kernel, initrdPath: owned.initrd } : {}),
    };
  } finally {
    await lock?.release();
  }
}

/** The two keyring entries provisionVmCredentials makes for a VM. */
export function credentialEntries(name: string): JournalEntry[] {
  return [
    { kind: 'keyring', service: PASSWORD_SERVICE, account: name },
    { kind: 'keyring', service: AGENT_SECRET_SERVICE, account: name },
  ];
}

export function isLocking(store: ConfigStore): store is LockingConfigStore {
  return typeof (store as Partial<LockingConfigStore>).acquireLock === 'function';
}

/** The journal's first entry: the create lock this process holds, so a cleanup removes a dead one. */
export function lockEntries(store: ConfigStore, lock: unknown, name: string): JournalEntry[] {
  return lock && isLocking(store) && store.lockPathOf ? [{ kind: 'lock', path: store.lockPathOf(name) }] : [];
}

/** Copies a kernel or initrd for the VM: never over an existing file; a missing source is bad input. */
async function copyBootFile(from: string, to: string, flag: string): Promise<void> {
  try {
    await fs.copyFile(from, to, constants.COPYFILE_EXCL);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new AlreadyExistsError(`${to} already exists; it is never overwritten`);
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'EACCES') {
      throw new InputError(`${flag} file ${from} cannot be read: ${code}`);
    }
    throw err;
  }
  await fs.chmod(to, 0o600);
}
