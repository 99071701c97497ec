import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  defaultTreeUrl,
  fetchInstallMedia,
  installKernelCmdline,
  consoleLogPath,
  ensureLogDir,
  installLogPath,
  monitorInstall,
  removeInstallBoot,
  stageInstallBoot,
  validateTreeUrl,
  type DownloadProgress,
  type InstallBootFiles,
  type InstallMedia,
  type InstallOutcome,
  type ProgressEvent,
} from '../install/index.js';
import { createQcow2 } from '../libvirt/images.js';
import { renderDomainXml } from '../render/domain-xml.js';
import {
  provisionVmCredentials,
  removeVmCredentials,
  type CredentialStores,
} from '../secrets/credentials.js';
import { diskPathOf } from '../spec/defaults.js';
import type { VmSpec } from '../spec/types.js';
import {
  AlreadyExistsError,
  CancelledError,
  NotFoundError,
  NotRunningError,
  TimeoutError,
  VmpError,
} from '../util/errors.js';
import { renderVmFiles } from './artifacts.js';
import type { ConfigStore, Hypervisor } from './ports.js';
import { Journal, journalDir as defaultJournalDir, refuseUnfinished, testStopPoint } from './journal.js';
import { credentialEntries } from './lifecycle.js';
import { displayOwnerOption } from '../seamless/owner.js';
import { pathExists, undoAll, type UndoStep } from './undo.js';

/**
 * `create` for real, the way virt-install does it: credentials into the
 * keyring, the tree's PXE kernel and initrd (cached), the kickstart appended
 * to a private copy of the initrd, a new qcow2 disk, one install boot of a
 * domain with direct kernel boot whose serial console is logged and
 * followed, and when the installer has powered off after reporting success,
 * the same domain (same UUID) redefined to boot from its disk, and the
 * config saved. Everything it makes is undone, in reverse, when any step
 * fails, the install times out, or the caller aborts (Ctrl+C).
 */

/** A config store that can hold a VM name for the whole of a create. */
export interface LockingConfigStore extends ConfigStore {
  acquireLock(name: string): Promise<{ release(): Promise<void> }>;
  /** The lock's file, so a create journal can name it for gc. */
  lockPathOf?(name: string): string;
}

export interface CreateDeps {
  hypervisor: Hypervisor;
  configStore: LockingConfigStore;
  credentials: CredentialStores;
  /** Milliseconds, monotonic; for the install duration. Default performance.now. */
  now?: () => number;
  /** Media cache root. Default $XDG_CACHE_HOME/vm-provisioner/install-media. */
  mediaCacheRoot?: string;
  /** Parent of the private directory holding the kernel and injected initrd. Default os.tmpdir(). */
  stagingDir?: string;
  /** How often the install domain's state is polled. Default 1000 ms. */
  pollIntervalMs?: number;
  /** Where the create journal goes; default $XDG_STATE_HOME/vm-provisioner/journal. */
  journalDir?: string;
}

export interface CreateVmOptions {
  /** Install tree URL; default: the release's Everything tree on Fedora's mirror. */
  location?: string;
  /** Give up on the install after this long. */
  installTimeoutMs: number;
  /** vm-provisioner version, recorded in the domain metadata. */
  version: string;
  /** The guest agent bundle the kickstart installs. */
  agentBundle: string;
  /** `template create`: the kickstart also installs the config-disk loader (sealing is the caller's). */
  template?: boolean;
  /** Abort (Ctrl+C): everything made so far is removed and CancelledError thrown. */
  signal?: AbortSignal;
  /** Called once the VM is complete (config written); an interrupt after this must not undo it. */
  onCommitted?: () => void;
  onEvent?: (event: CreateEvent) => void;
}

export type CreateStep =
  'credentials' | 'media' | 'initrd' | 'disk' | 'install-domain' | 'install' | 'define' | 'config';

export type CreateEvent =
  | { type: 'step'; step: CreateStep; message: string }
  | { type: 'download'; progress: DownloadProgress }
  | { type: 'media'; media: InstallMedia }
  | { type: 'install-started'; logPath: string }
  | { type: 'install-progress'; event: ProgressEvent }
  | { type: 'rollback'; reason: string }
  | { type: 'rollback-step'; what: string; error?: string };

export interface CreateResult {
  name: string;
  uuid: string;
  diskPath: string;
  configPath: string;
  installLogPath: string;
  /** False when the kernel and initrd came from the cache. */
  mediaDownloaded: boolean;
  /** From starting the install domain to confirmed success. */
  installMs: number;
}

/** Lines of the install log quoted in a failure message. */
const LOG_TAIL_LINES = 10;
/** After the domain shut off: time for virtlogd to write the last console output. */
const LOG_SETTLE_MS = 1000;

export async function createVm(
  deps: CreateDeps,
  spec: VmSpec,
  options: CreateVmOptions,
): Promise<CreateResult> {
  const { hypervisor, configStore } = deps;
  const emit = (event: CreateEvent): void => options.onEvent?.(event);
  const now = deps.now ?? (() => performance.now());
  const signal = options.signal;
  const checkCancelled = (): void => {
    if (signal?.aborted) throw new CancelledError(`creating VM '${spec.name}' was interrupted`);
  };
  const name = spec.name;
  const diskPath = diskPathOf(spec);
  const treeUrl = validateTreeUrl(options.location ?? defaultTreeUrl(spec.fedoraRelease, spec.arch));
  const logPath = installLogPath(name);

  const journalDir = deps.journalDir ?? defaultJournalDir();
  // Before the lock: a lock left by a crashed create must not hide the message saying what to run.
  await refuseUnfinished(name, journalDir);
  const lock = await configStore.acquireLock(name);
  const undo: UndoStep[] = [];
  let staged: InstallBootFiles | undefined;
  let journal: Journal | undefined;
  try {
    try {
      if (await hypervisor.exists(name)) {
        throw new AlreadyExistsError(`a domain named '${name}' already exists at ${hypervisor.uri}`);
      }
      if (await configStore.exists(name)) {
        throw new AlreadyExistsError(`VM '${name}' already has a config file: ${configStore.pathOf(name)}`);
      }
      if (await pathExists(diskPath)) {
        throw new AlreadyExistsError(`disk image ${diskPath} already exists; it is never overwritten`);
      }
      checkCancelled();
      journal = await Journal.begin({
        vm: name,
        operation: 'create',
        connectUri: hypervisor.uri,
        entries: configStore.lockPathOf ? [{ kind: 'lock', path: configStore.lockPathOf(name) }] : [],
        dir: journalDir,
      });

      // Keyring first: a desktop whose keyring is locked or absent fails here, before any download.
      emit({
        type: 'step',
        step: 'credentials',
        message: 'Storing the VM password and agent secret in the keyring',
      });
      await journal.step('keyring', credentialEntries(name));
      undo.push({
        what: 'keyring entries',
        run: () => removeVmCredentials(name, deps.credentials),
      });
      const credentials = await provisionVmCredentials(name, deps.credentials);
      const { kickstart } = renderVmFiles(
        spec,
        options.location !== undefined ? { location: treeUrl } : {},
        credentials,
        options.agentBundle,
        options.template === true,
      );
      checkCancelled();

      emit({ type: 'step', step: 'media', message: `Fetching the installer from ${treeUrl}` });
      const media = await fetchInstallMedia({
        treeUrl,
        arch: spec.arch,
        ...(deps.mediaCacheRoot !== undefined ? { cacheRoot: deps.mediaCacheRoot } : {}),
        onProgress: (progress) => emit({ type: 'download', progress }),
        ...(signal ? { signal } : {}),
      }).catch((err: unknown) => {
        checkCancelled();
        throw err;
      });
      emit({ type: 'media', media });
      checkCancelled();

      emit({ type: 'step', step: 'initrd', message: 'Adding the kickstart to a private copy of the initrd' });
      staged = await stageInstallBoot(
        media,
        kickstart,
        deps.stagingDir !== undefined ? { parentDir: deps.stagingDir } : {},
      );
      // Named only once made (mkdtemp picks the name); it holds the password hash, so gc must find it.
      await journal.step('initrd', [{ kind: 'directory', path: staged.dir }]);
      checkCancelled();

      emit({ type: 'step', step: 'disk', message: `Creating ${diskPath} (${spec.diskSizeGb} GB, qcow2)` });
      await fs.mkdir(spec.vmDir, { recursive: true, mode: 0o711 });
      // Pre-checked absent above, under the lock; reserveFile still refuses to take over a file that appeared.
      await journal.step('disk', [{ kind: 'file', path: diskPath }]);
      await reserveFile(diskPath);
      undo.push({ what: `disk ${diskPath}`, run: () => fs.rm(diskPath, { force: true }) });
      await createQcow2(diskPath, spec.diskSizeGb);
      checkCancelled();

      emit({ type: 'step', step: 'install-domain', message: `Starting the install of '${name}'` });
      const uuid = randomUUID();
      await prepareLog(logPath);
      const installXml = renderDomainXml(spec, {
        diskPath,
        version: options.version,
        uuid,
        install: {
          kernel: staged.kernelPath,
          initrd: staged.initrdPath,
          cmdline: installKernelCmdline({ treeUrl }),
          consoleLog: logPath,
        },
      });
      await journal.step('install-domain', [{ kind: 'domain', name }]);
      undo.push({ what: `domain '${name}'`, run: () => removeDomain(hypervisor, name) });
      await hypervisor.define(installXml);
      checkCancelled();
      const started = now();
      await hypervisor.start(name);
      emit({ type: 'install-started', logPath });
      checkCancelled();

      emit({ type: 'step', step: 'install', message: 'Installing (unattended)' });
      const stopWatching = new AbortController();
      let outcome: InstallOutcome;
      try {
        outcome = await monitorInstall({
          logPath,
          vmName: name,
          domainStopped: waitForShutOff(hypervisor, name, stopWatching.signal, deps.pollIntervalMs ?? 1000),
          onEvent: (event) => emit({ type: 'install-progress', event }),
          timeoutMs: options.installTimeoutMs,
          ...(signal ? { signal } : {}),
        });
      } finally {
        stopWatching.abort();
      }
      if (outcome.status !== 'succeeded' || !outcome.domainStopped) {
        throw installFailure(name, outcome, logPath);
      }
      const installMs = now() - started;

      emit({ type: 'step', step: 'define', message: 'Defining the installed VM (boots from its disk)' });
      await ensureLogDir();
      await hypervisor.define(
        renderDomainXml(spec, {
          diskPath,
          consoleLog: consoleLogPath(name),
          ...displayOwnerOption(hypervisor.uri),
          version: options.version,
          uuid,
        }),
      );
      checkCancelled();

      emit({ type: 'step', step: 'config', message: `Saving ${configStore.pathOf(name)}` });
      await journal.step('config', [{ kind: 'config', path: configStore.pathOf(name) }]);
      undo.push({ what: `config ${configStore.pathOf(name)}`, run: () => configStore.remove(name) });
      await configStore.write(spec, { exclusive: true });
      // The config is written: the VM is complete, and an interrupt from now on must not undo it.
      await journal.finish();
      options.onCommitted?.();
      testStopPoint('committed');

      return {
        name,
        uuid,
        diskPath,
        configPath: configStore.pathOf(name),
        installLogPath: logPath,
        mediaDownloaded: media.downloaded,
        installMs,
      };
    } catch (err) {
      const error =
        signal?.aborted && !(err instanceof CancelledError)
          ? new CancelledError(`creating VM '${name}' was interrupted`, { cause: err })
          : err;
      const result = await rollback(undo, error, emit);
      // Kept when something could not be removed, so gc can finish the job later.
      if (result === error) await journal?.finish();
      throw result;
    } finally {
      // The copy holds the password hash: gone whatever the outcome.
      if (staged) await removeInstallBoot(staged);
    }
  } finally {
    await lock.release();
  }
}

/** Creates the file exclusively, so a disk that appeared meanwhile is never overwritten. */
async function reserveFile(file: string): Promise<void> {
  try {
    const handle = await fs.open(file, 'wx', 0o600);
    await handle.close();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new AlreadyExistsError(`disk image ${file} already exists; it is never overwritten`);
    }
    throw err;
  }
}

/**
 * A fresh, empty log owned by us: a previous install's log must not be read
 * as this one's, and a file that exists is appended to by virtlogd without
 * changing its owner, so the (unprivileged) CLI can follow it.
 */
async function prepareLog(logPath: string): Promise<void> {
  await fs.mkdir(path.dirname(logPath), { recursive: true, mode: 0o700 });
  await fs.rm(logPath, { force: true });
  const handle = await fs.open(logPath, 'wx', 0o600);
  await handle.close();
}

/** Resolves when the domain is shut off (or gone); never rejects, so a flaky libvirtd only delays it. */
async function waitForShutOff(
  hypervisor: Hypervisor,
  name: string,
  signal: AbortSignal,
  pollMs: number,
): Promise<void> {
  while (!signal.aborted) {
    try {
      const { state } = await hypervisor.info(name);
      if (state === 'shut off' || state === 'crashed') break;
    } catch (err) {
      if (err instanceof NotFoundError) break;
    }
    await sleep(pollMs, signal);
  }
  if (!signal.aborted) await sleep(LOG_SETTLE_MS, signal);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Stops the domain if it runs, then undefines it with its metadata; a domain already gone is fine. */
async function removeDomain(hypervisor: Hypervisor, name: string): Promise<void> {
  if (!(await hypervisor.exists(name))) return;
  let state;
  try {
    state = (await hypervisor.info(name)).state;
  } catch (err) {
    if (err instanceof NotFoundError) return;
    throw err;
  }
  if (state !== 'shut off') {
    try {
      await hypervisor.destroy(name);
    } catch (err) {
      if (!(err instanceof NotRunningError) && !(err instanceof NotFoundError)) throw err;
    }
  }
  try {
    await hypervisor.undefine(name);
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
  }
}

function installFailure(name: string, outcome: InstallOutcome, logPath: string): VmpError {
  const tail = outcome.progress.recentLines.slice(-LOG_TAIL_LINES);
  const quoted =
    tail.length > 0 ? `\nlast lines of ${logPath}:\n${tail.map((l) => `  | ${l}`).join('\n')}` : '';
  const message = `installing VM '${name}' failed: ${outcome.message}${quoted}`;
  switch (outcome.status) {
    case 'timed-out':
      return new TimeoutError(message);
    case 'cancelled':
      return new CancelledError(`creating VM '${name}' was interrupted during the install${quoted}`);
    case 'succeeded':
      // Success marker seen, but the domain did not power off (only possible on a cancel race).
      return new VmpError(`installing VM '${name}' failed: the installer did not power off${quoted}`);
    default:
      return new VmpError(message);
  }
}

/** Undoes every step in reverse, each tried 3 times, so one lost call does not leave half a VM. */
async function rollback(
  undo: UndoStep[],
  error: unknown,
  emit: (event: CreateEvent) => void,
): Promise<unknown> {
  if (undo.length === 0) return error;
  const reason = error instanceof Error ? error.message.split('\n')[0]! : String(error);
  emit({ type: 'rollback', reason });
  return undoAll(undo, error, {
    attempts: 3,
    onStep: (what, message) =>
      emit({ type: 'rollback-step', what, ...(message !== undefined ? { error: message } : {}) }),
  });
}

/** A Fedora network install under KVM takes 15-40 minutes; emulation (TCG) is several times slower. */
export const DEFAULT_INSTALL_TIMEOUT_MINUTES = 90;
