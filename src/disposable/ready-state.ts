import { randomUUID } from 'node:crypto';
import { constants, openSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { buildConfigDisk } from '../configdisk/image.js';
import type { ConfigDiskFile } from '../configdisk/layout.js';
import { IDENTITY_READY_LINE } from '../protocol/identity.js';
import { renderDomainXml, wakePipeBase, displaySocketPath } from '../render/domain-xml.js';
import { displayOwnerOption } from '../seamless/owner.js';
import {
  provisionVmCredentials,
  removeVmCredentials,
  type CredentialStores,
} from '../secrets/credentials.js';
import { vmConfigDiskFiles } from '../service/artifacts.js';
import type { ConfigStore, Hypervisor } from '../service/ports.js';
import { ensureWakePipe } from '../service/state.js';
import { appVmPaths, inheritedFrom, requireTemplate, templateDiskProblem } from '../service/templates.js';
import { defaultSpec } from '../spec/defaults.js';
import type { NetworkMode, VmSpec } from '../spec/types.js';
import { readSaveHead } from '../storage/save-file.js';
import type { VolumeStore } from '../storage/volumes.js';
import { AlreadyRunningError, CancelledError, InputError, TimeoutError, VmpError } from '../util/errors.js';
import { readTextIfExists } from '../util/read-if-exists.js';

/**
 * A template's ready state (docs/disposables-clones.md): a "clone source" VM
 * booted once on the template to its session, its agent idle and waiting for
 * an identity, then saved. Its root overlay and private volume are frozen
 * (read-only) as the backing files of every clone's own overlays, and its
 * save image is what each clone is restored from, under a rewritten head.
 */

/** Runs one virsh command with a deadline; src/libvirt/virsh.ts's VirshHypervisor.virsh fits. */
export type VirshRunner = (
  operation: string,
  args: string[],
  options?: { timeout?: number },
) => Promise<string>;

export interface CloneDeps {
  hypervisor: Hypervisor;
  volumes: VolumeStore;
  configStore: ConfigStore;
  credentials: CredentialStores;
  virsh: VirshRunner;
}

/** What ready.json records; a clone is refused (and booted instead) when any of it no longer holds. */
export interface ReadyState {
  format: 1;
  template: string;
  /** The template's disk and its seal when the state was saved: a template update makes the state stale. */
  templateDisk: string;
  seal: { mtimeNs: string; sizeBytes: number };
  /** The clone source's name (its domain is gone; the name is in the save image's XML). */
  source: string;
  saveImage: string;
  root: { file: string; capacityBytes: number };
  private: { file: string; capacityBytes: number };
  configDisk: string;
  /** The network each clone gets hot-plugged: the template's mode. */
  networkMode: NetworkMode;
  vmDir: string;
  savedAt: string;
}

/** The clone source's name and every file of the ready state, all in the template's VM directory. */
export function readyPaths(template: Pick<VmSpec, 'name' | 'vmDir'>): {
  source: string;
  record: string;
  saveImage: string;
  /** The domain XML the source was started with, kept beside its save image. */
  saveXml: string;
  root: string;
  private: string;
  configDisk: string;
  wakeBase: string;
  displaySocket: string;
} {
  const source = `${template.name}-ready`;
  const own = appVmPaths({ name: source, vmDir: template.vmDir });
  return {
    source,
    record: path.join(template.vmDir, `${source}.json`),
    saveImage: path.join(template.vmDir, `${source}.save`),
    saveXml: path.join(template.vmDir, `${source}.save.xml`),
    root: own.root,
    private: own.private,
    configDisk: own.configDisk,
    wakeBase: wakePipeBase(own.root, source),
    displaySocket: displaySocketPath(own.root, source),
  };
}

/**
 * The ready state's plain files, apart from its record and its two volumes: what removing it deletes and
 * what a preparation journals, so that the two can never differ.
 */
export function readyStateFiles(paths: ReturnType<typeof readyPaths>): string[] {
  return [
    paths.configDisk,
    paths.saveImage,
    paths.saveXml,
    `${paths.wakeBase}.in`,
    `${paths.wakeBase}.out`,
    paths.displaySocket,
  ];
}

/** The ready state of `template`, or undefined if none was prepared. */
export async function readReadyState(
  templateSpec: Pick<VmSpec, 'name' | 'vmDir'>,
): Promise<ReadyState | undefined> {
  const file = readyPaths(templateSpec).record;
  const text = await readTextIfExists(file);
  if (text === undefined) return undefined;
  const state = JSON.parse(text) as ReadyState;
  if (state.format !== 1) throw new VmpError(`${file}: ready-state format ${String(state.format)} is not 1`);
  return state;
}

export interface PrepareOptions {
  version: string;
  /** Commands the session starts (as `create --autostart-app`); every clone starts with them running. */
  apps?: string[];
  /** How long the clone source may take to boot to its waiting agent (default 10 minutes under emulation). */
  bootTimeoutMs?: number;
  /** Called once the agent waits and before the save: a test can wait here for an app's window. */
  beforeSave?: (source: string) => Promise<void>;
  log?: (line: string) => void;
  /** Ctrl+C / SIGTERM: the wait for the clone source ends, what was made is removed, CancelledError. */
  signal?: AbortSignal;
}

/**
 * Why `state` cannot be cloned for the template as it is now (a `template update`
 * since, or another disk), or undefined when it can. Pure.
 */
export function readyStateProblem(
  state: Pick<ReadyState, 'templateDisk' | 'seal'>,
  template: { name: string; disk: string; seal?: { mtimeNs: string; sizeBytes: number } },
): string | undefined {
  const seal = template.seal;
  if (
    state.templateDisk !== template.disk ||
    !seal ||
    seal.mtimeNs !== state.seal.mtimeNs ||
    seal.sizeBytes !== state.seal.sizeBytes
  ) {
    return `the ready state of template '${template.name}' is stale: the template changed after it was saved`;
  }
  return undefined;
}

/**
 * Root ports for the clone source, more than its devices take: libvirt puts each PCIe device on a free
 * root port and adds ports only when none is free, so those left over stay empty in the saved state,
 * and a clone's NIC is hot-plugged into one of them after the restore (q35's root complex itself
 * takes no hot-plug). The root complex is named first: libvirt numbers controllers without an index in
 * order, and index 0 must be it.
 */
const SPARE_ROOT_PORTS = 16;
const ROOT_PORTS = `<controller type='pci' index='0' model='pcie-root'/>${"<controller type='pci' model='pcie-root-port'/>".repeat(SPARE_ROOT_PORTS)}`;

/**
 * Boots the clone source on `templateName`, waits for its agent's ready line
 * on the wake channel, saves it and freezes its volumes. Replaces an earlier
 * ready state of the template (call it again after `template update`).
 * Everything made is removed again on failure.
 */
export async function prepareReadyState(
  deps: CloneDeps,
  templateName: string,
  options: PrepareOptions,
): Promise<ReadyState> {
  const log = options.log ?? (() => undefined);
  const template = await requireTemplate(deps.hypervisor, templateName);
  if ((await deps.hypervisor.info(template.name)).state !== 'shut off') {
    throw new AlreadyRunningError(
      `template '${template.name}' is running; prepare its ready state once it has shut down`,
    );
  }
  const backing = await deps.volumes.info(template.disk);
  const problem = templateDiskProblem(template, backing);
  if (problem || !backing || !template.description.seal) {
    throw new InputError(
      `${problem ?? 'the template is not sealed'}; run vm-provisioner template update ${template.name}`,
    );
  }
  const templateSpec = await deps.configStore.read(template.name);
  const paths = readyPaths(templateSpec);
  await removeReadyState(deps, templateSpec);

  const spec: VmSpec = defaultSpec(paths.source, {
    ...inheritedFrom(templateSpec),
    template: template.name,
    autoLaunchApps: options.apps ?? [],
    // No NIC: virtio-net's state (its MAC) would be in every clone's memory.
    networkMode: 'none',
  });
  const made: Array<() => Promise<unknown>> = [];
  try {
    made.push(() => removeVmCredentials(paths.source, deps.credentials));
    const credentials = await provisionVmCredentials(paths.source, deps.credentials);
    const files = awaitIdentityFiles(
      vmConfigDiskFiles({ ...spec, networkMode: templateSpec.networkMode }, credentials),
    );
    made.push(() => fs.rm(paths.configDisk, { force: true }));
    await buildConfigDisk(files, paths.configDisk);
    made.push(() => deps.volumes.remove(paths.root));
    await deps.volumes.createOverlay(paths.root, template.disk, backing.capacityBytes);
    made.push(() => deps.volumes.remove(paths.private));
    await deps.volumes.createBlank(paths.private, spec.diskSizeGb * 1024 ** 3);
    const xml = renderDomainXml(spec, {
      diskPath: paths.root,
      configDiskPath: paths.configDisk,
      template: { name: template.name, disk: template.disk, privateDisk: paths.private },
      ...(template.description.boot ? { boot: template.description.boot } : {}),
      version: options.version,
      uuid: randomUUID(),
      // As every VM made for a libvirt on this host: the agent's virtio-serial link, so a clone's agent
      // reaches the proxy without waiting for the NIC hot-plugged after its restore.
      ...displayOwnerOption(deps.hypervisor.uri),
    }).replace('</devices>', `  ${ROOT_PORTS}\n  </devices>`);
    made.push(() => removeFiles([`${paths.wakeBase}.in`, `${paths.wakeBase}.out`, paths.displaySocket]));
    await ensureWakePipe({ wakePipe: paths.wakeBase });
    const xmlFile = paths.saveXml;
    await fs.writeFile(xmlFile, xml, { mode: 0o600 });
    made.push(() =>
      deps.virsh(`stop clone source ${paths.source}`, ['destroy', paths.source]).catch(() => ''),
    );
    try {
      // Transient: once saved, the domain is gone and only the image is left.
      await deps.virsh(`boot clone source ${paths.source}`, ['create', xmlFile]);
    } finally {
      await fs.rm(xmlFile, { force: true });
    }
    // QEMU holds the FIFO's write end from here on, so a non-blocking reader does not see end of file.
    const ready = readyLine(`${paths.wakeBase}.out`, options.bootTimeoutMs ?? 600_000, options.signal);
    try {
      log(`clone source ${paths.source} booting; waiting for its agent to wait for an identity`);
      await ready.done;
    } finally {
      ready.cancel();
    }
    await options.beforeSave?.(paths.source);
    if (options.signal?.aborted)
      throw new CancelledError(`preparing the ready state of '${template.name}' was interrupted`);
    made.push(() => fs.rm(paths.saveImage, { force: true }));
    await deps.virsh(
      `save clone source ${paths.source}`,
      ['save', paths.source, paths.saveImage, '--running'],
      {
        timeout: 300_000,
      },
    );
    log(`clone source saved to ${paths.saveImage}`);
    // The source's own secret is in every clone's memory: it must authenticate nothing.
    await deps.credentials.agentSecrets.delete(paths.source);
    await removeFiles([`${paths.wakeBase}.in`, `${paths.wakeBase}.out`, paths.displaySocket]);
    // Frozen: read by every clone's QEMU (through a relabel='no' backing store), written by none.
    for (const file of [paths.root, paths.private, paths.configDisk]) await fs.chmod(file, 0o444);
    const head = await readSaveHead(paths.saveImage);
    const [root, priv] = await Promise.all([deps.volumes.info(paths.root), deps.volumes.info(paths.private)]);
    const state: ReadyState = {
      format: 1,
      template: template.name,
      templateDisk: template.disk,
      seal: { mtimeNs: template.description.seal.mtimeNs, sizeBytes: template.description.seal.sizeBytes },
      source: paths.source,
      saveImage: paths.saveImage,
      root: { file: paths.root, capacityBytes: root!.capacityBytes },
      private: { file: paths.private, capacityBytes: priv!.capacityBytes },
      configDisk: paths.configDisk,
      networkMode: templateSpec.networkMode,
      vmDir: templateSpec.vmDir,
      savedAt: new Date().toISOString(),
    };
    if (!head.xml.includes(`<name>${paths.source}</name>`)) {
      throw new VmpError(`${paths.saveImage} does not hold the clone source's domain XML`);
    }
    await fs.writeFile(paths.record, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
    return state;
  } catch (err) {
    for (const undo of made.reverse()) await undo().catch(() => undefined);
    throw err;
  }
}

/** Removes a template's ready state: the record first (so no clone starts from a half-removed state), then its files. */
export async function removeReadyState(
  deps: Pick<CloneDeps, 'volumes' | 'credentials' | 'virsh'>,
  templateSpec: Pick<VmSpec, 'name' | 'vmDir'>,
): Promise<void> {
  const paths = readyPaths(templateSpec);
  await fs.rm(paths.record, { force: true });
  await deps.virsh(`stop clone source ${paths.source}`, ['destroy', paths.source]).catch(() => '');
  for (const file of [paths.root, paths.private]) {
    await fs.chmod(file, 0o600).catch(() => undefined);
    await deps.volumes.remove(file);
  }
  await removeFiles(readyStateFiles(paths));
  await removeVmCredentials(paths.source, deps.credentials);
}

/** removeReadyState when any file of one is there (`template destroy`: most templates have none); true if so. */
export async function removeReadyStateIfAny(
  deps: Pick<CloneDeps, 'volumes' | 'credentials' | 'virsh'>,
  templateSpec: Pick<VmSpec, 'name' | 'vmDir'>,
): Promise<boolean> {
  const paths = readyPaths(templateSpec);
  const files = [paths.record, paths.saveImage, paths.root, paths.private, paths.configDisk];
  const there = await Promise.all(
    files.map((file) =>
      fs.lstat(file).then(
        () => true,
        () => false,
      ),
    ),
  );
  if (!there.includes(true)) return false;
  await removeReadyState(deps, templateSpec);
  return true;
}

/** The clone source's agent.conf says so: VMP_AWAIT_IDENTITY=1 (guest-agent/src/identity.ts). */
function awaitIdentityFiles(files: ConfigDiskFile[]): ConfigDiskFile[] {
  return files.map((file) =>
    file.path === 'agent.conf'
      ? { ...file, content: `${file.content.trimEnd()}\nVMP_AWAIT_IDENTITY=1\n` }
      : file,
  );
}

async function removeFiles(files: string[]): Promise<void> {
  await Promise.all(files.map((file) => fs.rm(file, { force: true })));
}

/**
 * Resolves once the agent writes IDENTITY_READY_LINE on the wake channel
 * (QEMU passes it to `<base>.out`). Opened non-blocking, as a socket, so that
 * `cancel` never leaves a read stuck in the thread pool.
 */
function readyLine(
  fifo: string,
  timeoutMs: number,
  signal?: AbortSignal,
): { done: Promise<void>; cancel: () => void } {
  let socket: net.Socket | undefined;
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const done = (async (): Promise<void> => {
    // A bare descriptor, owned by the socket, which closes it.
    const fd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    socket = new net.Socket({ fd, readable: true, writable: false });
    const sock = socket;
    await new Promise<void>((resolve, reject) => {
      let seen = '';
      timer = setTimeout(
        () =>
          reject(
            new TimeoutError(
              `the clone source's agent did not say it was ready within ${timeoutMs / 1000} s`,
            ),
          ),
        timeoutMs,
      );
      onAbort = () => reject(new CancelledError('preparing the ready state was interrupted'));
      if (signal?.aborted) onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      sock.on('data', (chunk: Buffer) => {
        seen = (seen + chunk.toString('latin1')).slice(-256);
        if (seen.includes(IDENTITY_READY_LINE)) resolve();
      });
      sock.on('error', reject);
      sock.on('end', () => reject(new VmpError('the clone source stopped before its agent was ready')));
    });
  })();
  return {
    done,
    cancel: () => {
      if (timer) clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
      socket?.destroy();
    },
  };
}
