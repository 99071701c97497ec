import { consoleLogPath, ensureLogDir } from '../install/logs.js';
import { displayOwnerOption } from '../seamless/owner.js';
import fs from 'node:fs/promises';
import path from 'node:path';
import { buildConfigDisk } from '../configdisk/image.js';
import type { DomainDescription } from '../libvirt/inspect.js';
import { renderDomainXml, type DisposableOwner, type TemplateSeal } from '../render/domain-xml.js';
import {
  provisionVmCredentials,
  removeVmCredentials,
  type CredentialStores,
} from '../secrets/credentials.js';
import type { VmSpec } from '../spec/types.js';
import type { VolumeInfo, VolumeStore } from '../storage/volumes.js';
import {
  AlreadyExistsError,
  AlreadyRunningError,
  InputError,
  NotFoundError,
  TimeoutError,
  VmpError,
} from '../util/errors.js';
import { guestAgentReady, guestExec, type GuestExecResult } from '../libvirt/qemu-agent.js';
import { vmConfigDiskFiles } from './artifacts.js';
import type { ConfigStore, Hypervisor } from './ports.js';
import { abandonCreate, pathExists, type UndoStep } from './undo.js';
import {
  interruptibleSteps,
  Journal,
  journalDir as defaultJournalDir,
  refuseUnfinished,
  testStopPoint,
} from './journal.js';
import {
  createFromDisk,
  credentialEntries,
  destroyVm,
  isLocking,
  lockEntries,
  ourDomains,
  requireOurVm,
  type ImportDeps,
  type ImportOptions,
  type ImportResult,
} from './lifecycle.js';

/**
 * Templates, the Qubes storage model (docs/templates.md): one installed base
 * disk, sealed read-only; each app VM on it is a copy-on-write overlay of that
 * disk (its root, made afresh at every cold start), a private volume (its
 * /home, kept) and its per-VM config disk (its identity). Disks are made and
 * removed through libvirt's storage API (src/storage/).
 */

export interface TemplateDeps {
  hypervisor: Hypervisor;
  volumes: VolumeStore;
  configStore: ConfigStore;
  credentials: CredentialStores;
}

/** The files of an app VM on a template, all in its VM directory. */
export function appVmPaths(spec: Pick<VmSpec, 'name' | 'vmDir'>): {
  root: string;
  private: string;
  configDisk: string;
} {
  return {
    root: path.join(spec.vmDir, `${spec.name}-root.qcow2`),
    private: path.join(spec.vmDir, `${spec.name}-private.qcow2`),
    configDisk: path.join(spec.vmDir, `${spec.name}-config.img`),
  };
}

const GIB = 1024 ** 3;

/** A template: one of our domains whose metadata marks it so. */
export interface TemplateView {
  name: string;
  description: DomainDescription;
  /** Its system disk (vda), the backing file of every app VM on it. */
  disk: string;
}

/** The template `name`; NotFoundError (exit 2) naming it when there is none, InputError when it is an app VM. */
export async function requireTemplate(hypervisor: Hypervisor, name: string): Promise<TemplateView> {
  let description: DomainDescription;
  try {
    description = await requireOurVm(hypervisor, name);
  } catch (err) {
    if (err instanceof NotFoundError) {
      throw new NotFoundError(
        `no template named '${name}' (at ${hypervisor.uri}); see vm-provisioner template list`,
      );
    }
    throw err;
  }
  if (description.role !== 'template') {
    throw new InputError(`'${name}' is an app VM, not a template; see vm-provisioner template list`);
  }
  const disk = description.disks[0]?.file;
  if (disk === undefined) throw new VmpError(`template '${name}' has no system disk in its definition`);
  return { name, description, disk };
}

/** The app VMs built on `template`, by name. */
export async function appVmsOf(hypervisor: Hypervisor, template: string): Promise<string[]> {
  return (await ourDomains(hypervisor)).filter((d) => d.template?.name === template).map((d) => d.name);
}

/**
 * Seals a shut-off template: its disk (and a direct-boot kernel and initrd)
 * read-only on the host, and the disk's stamp as libvirt reports it recorded
 * in the domain's metadata. An app VM's start compares the disk against it.
 */
export async function sealTemplate(
  deps: Pick<TemplateDeps, 'hypervisor' | 'volumes' | 'configStore'>,
  name: string,
  version: string,
  origin: TemplateSeal['origin'],
): Promise<TemplateSeal> {
  const { hypervisor } = deps;
  const description = await requireOurVm(hypervisor, name);
  if ((await hypervisor.info(name)).state !== 'shut off') {
    throw new AlreadyRunningError(`template '${name}' is running: it is sealed only when shut off`);
  }
  const disk = description.disks[0]?.file;
  if (disk === undefined) throw new VmpError(`template '${name}' has no system disk in its definition`);
  // The host mode is set on the file itself: libvirt's storage API has no call that changes a volume's mode.
  for (const file of [
    disk,
    ...(description.boot ? [description.boot.kernel, description.boot.initrd] : []),
  ]) {
    await fs.chmod(file, 0o444);
  }
  const info = await deps.volumes.info(disk);
  if (!info) throw new NotFoundError(`template '${name}': its disk ${disk} is missing`);
  const seal: TemplateSeal = { mtimeNs: info.mtimeNs, sizeBytes: info.physicalBytes, origin };
  const spec = await deps.configStore.read(name);
  const configDisk = description.disks.find((d) => d.serial === 'vmp-config')?.file;
  await hypervisor.define(
    renderDomainXml(spec, {
      diskPath: disk,
      ...(configDisk ? { configDiskPath: configDisk } : {}),
      ...(description.boot ? { boot: description.boot } : {}),
      ownedFiles: description.files,
      seal,
      version,
      ...(description.uuid ? { uuid: description.uuid } : {}),
    }),
  );
  return seal;
}

/**
 * `template import`: a VM made from the image as `create --import` makes one,
 * then sealed. A template that cannot be sealed is no template: it is removed whole.
 */
export async function importTemplate(
  deps: ImportDeps & { volumes: VolumeStore },
  spec: VmSpec,
  options: ImportOptions,
): Promise<ImportResult> {
  const result = await createFromDisk(deps, spec, options);
  try {
    await sealTemplate(deps, spec.name, options.version, 'import');
  } catch (err) {
    await destroyVm(
      {
        hypervisor: deps.hypervisor,
        configStore: deps.configStore,
        secretStores: [deps.credentials.passwords, deps.credentials.agentSecrets],
      },
      spec.name,
    );
    throw err;
  }
  return result;
}

/**
 * Why a template's disk may not be used as it stands, or undefined when it is
 * as it was sealed: present at the recorded path, read-only, unchanged.
 */
export function templateDiskProblem(
  template: TemplateView,
  /** What libvirt reports of the template's disk now; undefined if it has no such volume. */
  info: VolumeInfo | undefined,
  recordedDisk?: string,
): string | undefined {
  const { name, disk, description } = template;
  if (recordedDisk !== undefined && recordedDisk !== disk) {
    return `template '${name}' disk moved from ${recordedDisk} to ${disk}`;
  }
  if (!info) return `template '${name}' disk ${disk} is missing (moved or deleted)`;
  const seal = description.seal;
  if (!seal) return `template '${name}' is not sealed`;
  if ((info.mode & 0o222) !== 0) {
    return `template '${name}' disk ${disk} is writable (mode ${info.mode.toString(8)}), so it is not sealed`;
  }
  if (info.mtimeNs !== seal.mtimeNs || info.physicalBytes !== seal.sizeBytes) {
    return `template '${name}' disk ${disk} changed since it was sealed`;
  }
  return undefined;
}

export interface TemplateSummary {
  name: string;
  state: string;
  disk: string;
  /** What the disk takes on the host; undefined if it is missing. */
  diskBytes?: number;
  virtualBytes?: number;
  appVms: string[];
}

export async function listTemplates(
  deps: Pick<TemplateDeps, 'hypervisor' | 'volumes'>,
): Promise<TemplateSummary[]> {
  const domains = await ourDomains(deps.hypervisor);
  const summaries: TemplateSummary[] = [];
  for (const d of domains.filter((x) => x.role === 'template')) {
    const disk = d.disks[0]?.file ?? '';
    const info = disk ? await deps.volumes.info(disk) : undefined;
    let state: string;
    try {
      state = (await deps.hypervisor.info(d.name)).state;
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      continue;
    }
    summaries.push({
      name: d.name,
      state,
      disk,
      ...(info ? { diskBytes: info.physicalBytes, virtualBytes: info.capacityBytes } : {}),
      appVms: domains.filter((x) => x.template?.name === d.name).map((x) => x.name),
    });
  }
  return summaries;
}

/** Refuses while any app VM is built on it, naming them. */
export async function ensureTemplateUnused(hypervisor: Hypervisor, name: string): Promise<void> {
  const users = await appVmsOf(hypervisor, name);
  if (users.length > 0) {
    throw new InputError(
      `template '${name}' is used by ${users.length} app VM(s): ${users.join(', ')}; destroy them first`,
    );
  }
}

/** What an app VM takes from its template unless a flag or its --config file says otherwise. */
export function inheritedFrom(template: VmSpec): Partial<VmSpec> {
  return {
    memoryMb: template.memoryMb,
    vcpus: template.vcpus,
    vmDir: template.vmDir,
    networkMode: template.networkMode,
    virtType: template.virtType,
    arch: template.arch,
    graphicsBackend: template.graphicsBackend,
    fedoraRelease: template.fedoraRelease,
    enableAudio: template.enableAudio,
    enableClipboard: template.enableClipboard,
    enableUsbPassthrough: template.enableUsbPassthrough,
    enableAutoLogin: template.enableAutoLogin,
    firewallRules: template.firewallRules,
  };
}

export interface TemplatePlan {
  template: TemplateView;
  /** The template's disk as libvirt reports it: the overlay's size comes from it. */
  backing: VolumeInfo | undefined;
  paths: ReturnType<typeof appVmPaths>;
  pendingFlatpaks: string[];
  /** The app VM's domain XML. */
  xml: string;
}

/**
 * Everything `create --template` checks and renders before it makes anything,
 * reading only: the template (there, a template, shut off, sealed and
 * unchanged), the name and files free, the Flatpaks the template lacks, the
 * domain XML. `--dry-run` stops here.
 */
export async function planOnTemplate(
  deps: Pick<TemplateDeps, 'hypervisor' | 'volumes' | 'configStore'>,
  spec: VmSpec,
  version: string,
  /** A disposable's owner (docs/disposables.md): recorded in the domain's metadata. */
  disposable?: DisposableOwner,
): Promise<TemplatePlan> {
  const { hypervisor, configStore, volumes } = deps;
  const name = spec.name;
  if (spec.template === undefined) throw new InputError('no template given');
  if (spec.systemPackages.length > 0) {
    throw new InputError(
      `--system ${spec.systemPackages.join(' ')} cannot go into an app VM on template '${spec.template}': ` +
        'its root is made afresh from the template at every cold start; install them into the template',
    );
  }
  const template = await requireTemplate(hypervisor, spec.template);
  if ((await hypervisor.info(template.name)).state !== 'shut off') {
    throw new AlreadyRunningError(
      `template '${template.name}' is running (being updated?); create app VMs on it once it has shut down`,
    );
  }
  const backing = await volumes.info(template.disk);
  const problem = templateDiskProblem(template, backing);
  if (problem) throw new InputError(`${problem}; run vm-provisioner template update ${template.name}`);
  if (await hypervisor.exists(name)) {
    throw new AlreadyExistsError(`a domain named '${name}' already exists at ${hypervisor.uri}`);
  }
  if (await configStore.exists(name)) {
    throw new AlreadyExistsError(`VM '${name}' already has a config file: ${configStore.pathOf(name)}`);
  }
  const paths = appVmPaths(spec);
  for (const file of Object.values(paths)) {
    if (await pathExists(file))
      throw new AlreadyExistsError(`${file} already exists; it is never overwritten`);
  }
  const templateSpec = await configStore.read(template.name).catch(() => undefined);
  const installed = new Set(templateSpec?.flatpakPackages ?? []);
  const pendingFlatpaks = spec.flatpakPackages.filter((id) => !installed.has(id));
  const xml = renderDomainXml(spec, {
    diskPath: paths.root,
    configDiskPath: paths.configDisk,
    template: { name: template.name, disk: template.disk, privateDisk: paths.private },
    ...(template.description.boot ? { boot: template.description.boot } : {}),
    pendingFlatpaks,
    ...(disposable ? { disposable } : {}),
    consoleLog: consoleLogPath(spec.name),
    ...displayOwnerOption(hypervisor.uri),
    version,
  });
  return { template, backing, paths, pendingFlatpaks, xml };
}

export interface FromTemplateOptions {
  version: string;
  /** Ctrl+C: checked between steps; what was made so far is removed and CancelledError thrown. */
  signal?: AbortSignal;
  /** Called once the VM is complete (its config written): an interrupt after this keeps it. */
  onCommitted?: () => void;
  /** Where the create journal lives (default: the state directory's). */
  journalDir?: string;
  /** Make it a disposable owned by this process (docs/disposables.md). */
  disposable?: DisposableOwner;
}

export interface FromTemplateResult {
  root: string;
  private: string;
  configDisk: string;
  pendingFlatpaks: string[];
}

/**
 * `create --template`: an app VM as an overlay of the template's disk, an
 * empty private volume and its config disk. No installer, no download, no
 * copy of the base. Everything made is removed again on any failure.
 */
export async function createFromTemplate(
  deps: TemplateDeps,
  spec: VmSpec,
  options: FromTemplateOptions,
): Promise<FromTemplateResult> {
  const { hypervisor, configStore, volumes } = deps;
  const name = spec.name;
  const journalDir = options.journalDir ?? defaultJournalDir();
  // Before the lock: a lock left by a crashed create must not hide the message saying what to run.
  await refuseUnfinished(name, journalDir);
  const lock = isLocking(configStore) ? await configStore.acquireLock(name) : undefined;
  try {
    const { template, backing, paths, pendingFlatpaks, xml } = await planOnTemplate(
      deps,
      spec,
      options.version,
      options.disposable,
    );

    const journal = await Journal.begin({
      vm: name,
      operation: options.disposable ? 'run --disposable' : 'create --template',
      connectUri: hypervisor.uri,
      entries: lockEntries(configStore, lock, name),
      dir: journalDir,
    });
    const undo: UndoStep[] = [];
    const next = interruptibleSteps(journal, name, options.signal);
    try {
      await next('keyring', credentialEntries(name));
      undo.push({ what: 'keyring entries', run: () => removeVmCredentials(name, deps.credentials) });
      const credentials = await provisionVmCredentials(name, deps.credentials);
      await fs.mkdir(spec.vmDir, { recursive: true, mode: 0o711 });
      await next('config-disk', [{ kind: 'file', path: paths.configDisk }]);
      await buildConfigDisk(vmConfigDiskFiles(spec, credentials, { pendingFlatpaks }), paths.configDisk);
      undo.push({ what: paths.configDisk, run: () => fs.rm(paths.configDisk, { force: true }) });
      await next('root-volume', [{ kind: 'volume', path: paths.root }]);
      undo.push({ what: paths.root, run: () => volumes.remove(paths.root) });
      await volumes.createOverlay(paths.root, template.disk, backing?.capacityBytes ?? spec.diskSizeGb * GIB);
      await next('private-volume', [{ kind: 'volume', path: paths.private }]);
      undo.push({ what: paths.private, run: () => volumes.remove(paths.private) });
      await volumes.createBlank(paths.private, spec.diskSizeGb * GIB);
      await next('domain', [{ kind: 'domain', name }]);
      undo.push({ what: `domain '${name}'`, run: () => hypervisor.undefine(name).catch(ignoreNotFound) });
      await ensureLogDir();
      await hypervisor.define(xml);
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
    return { ...paths, pendingFlatpaks };
  } finally {
    await lock?.release();
  }
}

function ignoreNotFound(err: unknown): void {
  if (!(err instanceof NotFoundError)) throw err;
}

/**
 * The Qubes model's cold start of an app VM on a template: its root overlay is
 * thrown away and made afresh from the template's sealed disk. Refused, with
 * the template named, when the template is running, gone, moved or changed.
 */
export async function resetAppVmRoot(
  deps: Pick<TemplateDeps, 'hypervisor' | 'volumes'>,
  vm: DomainDescription,
): Promise<void> {
  const use = vm.template;
  if (!use) return;
  let template: TemplateView;
  try {
    template = await requireTemplate(deps.hypervisor, use.name);
  } catch (err) {
    if (err instanceof NotFoundError) {
      throw new NotFoundError(`VM '${vm.name}' is built on template '${use.name}', which no longer exists`);
    }
    throw err;
  }
  if ((await deps.hypervisor.info(template.name)).state !== 'shut off') {
    throw new AlreadyRunningError(
      `template '${template.name}' of VM '${vm.name}' is running (being updated?); start '${vm.name}' once it has shut down`,
    );
  }
  const backing = await deps.volumes.info(template.disk);
  const problem = templateDiskProblem(template, backing, use.disk);
  if (problem) {
    throw new InputError(
      `cannot start '${vm.name}': ${problem}; run vm-provisioner template update ${template.name} to seal it again`,
    );
  }
  const root = vm.disks[0]?.file;
  if (root === undefined) throw new VmpError(`VM '${vm.name}' has no system disk in its definition`);
  await deps.volumes.remove(root);
  await deps.volumes.createOverlay(root, template.disk, backing!.capacityBytes);
}

/** Where the guest's first-boot installer records the Flatpaks it has installed (docs/templates.md). */
export const GUEST_FLATPAKS_DONE = '/home/user/.local/share/vm-provisioner/flatpaks-installed';

/**
 * Pending Flatpaks of a running app VM that its guest now reports installed
 * (read through the QEMU guest agent) are dropped from its metadata, so
 * `list` stops showing them. Returns what is still pending; a guest that does
 * not answer leaves the list as it was.
 */
export async function settlePendingFlatpaks(
  hypervisor: Hypervisor,
  name: string,
  pending: string[],
  readGuestFile: (file: string) => Promise<string | undefined>,
): Promise<string[]> {
  if (pending.length === 0) return pending;
  let report: string | undefined;
  try {
    report = await readGuestFile(GUEST_FLATPAKS_DONE);
  } catch {
    return pending;
  }
  if (report === undefined) return pending;
  const done = new Set(report.split('\n').map((l) => l.trim()));
  const still = pending.filter((id) => !done.has(id));
  if (still.length === pending.length) return pending;
  let xml = await hypervisor.xml(name, { inactive: true });
  for (const id of pending.filter((p) => done.has(p))) {
    // IDs passed the Flatpak grammar when they were written: no regex metacharacter but '.'.
    const element = new RegExp(
      `\\s*<(\\w+):pending-flatpak>${id.replace(/\./g, '\\.')}</\\1:pending-flatpak>`,
    );
    xml = xml.replace(element, '');
  }
  await hypervisor.define(xml);
  return still;
}

export interface UpdateOptions {
  /** argv run in the template as root; default: `dnf -y upgrade` and `flatpak update -y` (installed templates only). */
  command?: string[];
  version: string;
  /** How long the command may run. */
  commandTimeoutMs: number;
  /** How long the template may take to boot until its guest agent answers, and to shut down. */
  bootTimeoutMs: number;
  onProgress?: (line: string) => void;
}

export interface UpdateResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  seal: TemplateSeal;
}

/** The commands `template update` runs in a template installed by `template create`. */
export const DEFAULT_UPDATE_COMMAND = [
  '/bin/sh',
  '-c',
  'dnf -y upgrade && flatpak update -y --noninteractive',
];

/**
 * `template update`: boots the template, runs the command in it through the
 * QEMU guest agent, shuts it down and seals it again. Every app VM on it
 * must be shut off without saved state (their memory refers to the old disk);
 * each sees the new disk at its next cold start.
 */
export async function updateTemplate(
  deps: TemplateDeps,
  name: string,
  options: UpdateOptions,
): Promise<UpdateResult> {
  const { hypervisor } = deps;
  const template = await requireTemplate(hypervisor, name);
  const command =
    options.command ?? (template.description.seal?.origin === 'install' ? DEFAULT_UPDATE_COMMAND : undefined);
  if (command === undefined) {
    throw new InputError(
      `template '${name}' was imported, so there is no package manager to run by default: give the command, as in template update ${name} -- CMD...`,
    );
  }
  for (const arg of command) {
    if (arg.includes('\0'))
      throw new InputError(`command argument ${JSON.stringify(arg)} is invalid: no NUL bytes`);
  }
  if ((await hypervisor.info(name)).state !== 'shut off') {
    throw new AlreadyRunningError(`template '${name}' is already running (another update?)`);
  }
  const busy: string[] = [];
  for (const vm of await appVmsOf(hypervisor, name)) {
    const state = (await hypervisor.info(vm)).state;
    if (state !== 'shut off') busy.push(`${vm} (${state})`);
    else if (await hypervisor.hasManagedSave(vm)) busy.push(`${vm} (saved)`);
    // Its snapshots sit in a root overlay made on the old disk: the new one would corrupt them.
    else if ((await hypervisor.snapshotList(vm)).length > 0) busy.push(`${vm} (has snapshots)`);
  }
  if (busy.length > 0) {
    throw new AlreadyRunningError(
      `template '${name}' cannot change under running or saved app VMs or their snapshots: ${busy.join(', ')}; stop them (and delete their snapshots) first`,
    );
  }
  const say = options.onProgress ?? (() => undefined);
  // Unsealed for the update; an interrupted update leaves it writable, and app VMs then refuse to start
  // until `template update` has sealed it again.
  await fs.chmod(template.disk, 0o644);
  let result: GuestExecResult | undefined;
  let failure: unknown;
  try {
    say(`booting template ${name}`);
    await hypervisor.start(name);
    await waitFor(
      () => guestAgentReady(hypervisor.uri, name),
      options.bootTimeoutMs,
      `the guest agent of template '${name}' to answer`,
    );
    say(`running ${command.join(' ')}`);
    result = await guestExec(hypervisor.uri, name, command, options.commandTimeoutMs);
    // The command's writes must be on the disk before the power goes.
    await guestExec(hypervisor.uri, name, ['/bin/sync'], 60_000).catch(() => undefined);
  } catch (err) {
    failure = err;
  }
  say(`shutting template ${name} down`);
  if ((await hypervisor.info(name)).state !== 'shut off') {
    await hypervisor.shutdown(name).catch(() => undefined);
    const deadline = Date.now() + options.bootTimeoutMs;
    while ((await hypervisor.info(name)).state !== 'shut off' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
    }
    if ((await hypervisor.info(name)).state !== 'shut off') await hypervisor.destroy(name);
  }
  const seal = await sealTemplate(deps, name, options.version, template.description.seal?.origin ?? 'import');
  if (failure) throw failure;
  return { ...result!, seal };
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() >= deadline)
      throw new TimeoutError(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}
