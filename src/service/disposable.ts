import { randomInt } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { readyPaths } from '../disposable/ready-state.js';
import { consoleLogPath } from '../install/logs.js';
import { describeDomain, type DomainDescription } from '../libvirt/inspect.js';
import type { DisposableOwner } from '../render/domain-xml.js';
import type { CredentialStores } from '../secrets/credentials.js';
import { buildSpec } from '../spec/build.js';
import { validateFlatpakId } from '../spec/validate.js';
import type { VolumeStore } from '../storage/volumes.js';
import {
  AlreadyExistsError,
  CancelledError,
  InputError,
  NotFoundError,
  NotRunningError,
  VmpError,
} from '../util/errors.js';
import { stateDir } from '../util/paths.js';
import { ourDomains } from './inventory.js';
import {
  cleanUpUnfinished,
  currentProcess,
  isAlive,
  readJournal,
  type CleanupDeps,
  type ProcessIdentity,
} from './journal.js';
import { startVm } from './lifecycle.js';
import type { ConfigStore, Hypervisor } from './ports.js';
import { appVmPaths, createFromTemplate, inheritedFrom, requireTemplate } from './templates.js';
import { readTextIfExists } from '../util/read-if-exists.js';
import { trace } from '../util/trace.js';

/**
 * Disposable VMs (docs/disposables.md): a throwaway app VM on a template,
 * named `dispNNNN`, owned by the CLI process that made it and removed with
 * every file of it when its command ends, its last window closes or its CLI
 * is interrupted. Its domain's metadata says `role="disposable"` and names
 * the owning process (pid, start time, boot), so `gc` and the next
 * disposable remove it once that process is gone; before the domain exists
 * the create journal covers it.
 */

/** `disp` and four digits, as Qubes names its DispVMs. */
export const DISPOSABLE_NAME = /^disp\d{4}$/;
/** How many random names are tried before giving up (10 000 exist). */
export const NAME_TRIES = 40;

/** One random candidate name. */
export function disposableName(random: () => number = () => randomInt(0, 10_000)): string {
  return `disp${String(random()).padStart(4, '0')}`;
}

/** A free dispNNNN: random, retried while `isTaken` says the name is in use. */
export async function pickDisposableName(
  isTaken: (name: string) => Promise<boolean>,
  random?: () => number,
  tries = NAME_TRIES,
): Promise<string> {
  for (let i = 0; i < tries; i++) {
    const name = disposableName(random);
    if (!(await isTaken(name))) return name;
  }
  throw new AlreadyExistsError(
    `no free disposable name after ${tries} tries: remove old disposables (vm-provisioner gc)`,
  );
}

/** Whether a name is taken anywhere a disposable's things would go: libvirt, the config store, a journal. */
export function nameTakenCheck(
  hypervisor: Hypervisor,
  configStore: ConfigStore,
  journalDir?: string,
): (name: string) => Promise<boolean> {
  return async (name) =>
    (await hypervisor.exists(name)) ||
    (await configStore.exists(name)) ||
    (await readJournal(name, journalDir).catch(() => 'damaged')) !== undefined;
}

// ---------------------------------------------------------------------------
// The owner record

/**
 * A disposable's owner record, `$XDG_STATE_HOME/vm-provisioner/disposables/NAME.json`:
 * written (exclusively: it also reserves the name) before anything of the
 * disposable is made, and deleted after everything else is gone. While it
 * exists, `gc` knows the disposable, and touches libvirt only then.
 */
export interface OwnerRecord {
  version: 1;
  name: string;
  template: string;
  connectUri: string;
  owner: ProcessIdentity;
  createdAt: string;
  /**
   * Set once a preloaded disposable (docs/disposables-clones.md, "Preloaded
   * disposables") runs with its agent connected, waiting for a run to claim
   * it: `readySavedAt` is the ready state it was cloned from (a newer one
   * makes it stale), `bootedAfter` the time before its restore (its agent's
   * connection is newer). Its owner, the run that preloaded it, may be gone:
   * the sweep leaves it alone, `gc` removes it.
   */
  preloaded?: { readySavedAt: string; at: string; bootedAfter: number };
}

export function recordDir(): string {
  return path.join(stateDir(), 'disposables');
}

function recordPath(name: string, dir: string): string {
  if (!DISPOSABLE_NAME.test(name)) throw new InputError(`'${name}' is not a disposable's name (dispNNNN)`);
  return path.join(dir, `${name}.json`);
}

/** Writes the record; false if one of that name exists (another disposable has the name). */
export async function claimName(record: OwnerRecord, dir = recordDir()): Promise<boolean> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const file = recordPath(record.name, dir);
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.writeFile(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  try {
    // link() fails if the name exists: exclusive, with the whole content already there.
    await fs.link(tmp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

export async function readRecord(name: string, dir = recordDir()): Promise<OwnerRecord | undefined> {
  const text = await readTextIfExists(recordPath(name, dir));
  if (text === undefined) return undefined;
  const r = JSON.parse(text) as Partial<OwnerRecord>;
  if (
    r.version !== 1 ||
    r.name !== name ||
    typeof r.connectUri !== 'string' ||
    typeof r.owner?.pid !== 'number' ||
    (r.preloaded !== undefined &&
      (typeof r.preloaded.readySavedAt !== 'string' ||
        typeof r.preloaded.at !== 'string' ||
        typeof r.preloaded.bootedAfter !== 'number'))
  ) {
    throw new VmpError(`disposable record ${recordPath(name, dir)} is damaged; remove it by hand`);
  }
  return r as OwnerRecord;
}

export async function listRecords(dir = recordDir()): Promise<string[]> {
  const names = await fs.readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  return names
    .filter((n) => n.endsWith('.json'))
    .map((n) => n.slice(0, -'.json'.length))
    .filter((n) => DISPOSABLE_NAME.test(n))
    .sort();
}

async function dropRecord(name: string, dir: string): Promise<void> {
  await fs.rm(recordPath(name, dir), { force: true });
  await fs.rm(claimPath(name, dir), { force: true });
}

/** Replaces a record whole (write, then rename): a reader sees the old one or the new one. */
async function rewriteRecord(record: OwnerRecord, dir: string): Promise<void> {
  const file = recordPath(record.name, dir);
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.writeFile(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  await fs.rename(tmp, file);
}

/** `NAME.claim`: the run taking a preloaded disposable, while it rewrites the record as its own. */
function claimPath(name: string, dir: string): string {
  return path.join(dir, `${name}.claim`);
}

/** Marks a disposable this process made as preloaded: from now on no owner is needed to keep it. */
export async function markPreloaded(
  name: string,
  preloaded: NonNullable<OwnerRecord['preloaded']>,
  dir = recordDir(),
): Promise<void> {
  const record = await readRecord(name, dir);
  if (!record) throw new NotFoundError(`no record of disposable '${name}' to mark preloaded`);
  await rewriteRecord({ ...record, preloaded }, dir);
}

/**
 * Takes preloaded disposable `name` for `owner`: its record becomes an
 * ordinary one of `owner`'s. False when another run took it first. The
 * claim file is created exclusively, so of two runs only one gets past it;
 * a run killed while it holds the claim leaves a disposable the sweep
 * removes (the claim's owner is dead).
 */
export async function claimPreloaded(
  name: string,
  owner: ProcessIdentity,
  dir = recordDir(),
): Promise<boolean> {
  const claim = claimPath(name, dir);
  try {
    await fs.writeFile(claim, `${JSON.stringify(owner)}\n`, { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  const record = await readRecord(name, dir).catch(() => undefined);
  if (!record?.preloaded) {
    // Taken and rewritten by another run between our listing and our claim.
    await fs.rm(claim, { force: true });
    return false;
  }
  const { preloaded: _was, ...ordinary } = record;
  await rewriteRecord({ ...ordinary, owner, createdAt: new Date().toISOString() }, dir);
  await fs.rm(claim, { force: true });
  return true;
}

/** The owner in a preloaded disposable's claim file: undefined without one, null when unreadable. */
async function claimOwner(name: string, dir: string): Promise<ProcessIdentity | null | undefined> {
  const text = await readTextIfExists(claimPath(name, dir));
  if (text === undefined) return undefined;
  try {
    const owner = JSON.parse(text) as Partial<ProcessIdentity>;
    return typeof owner.pid === 'number' ? (owner as ProcessIdentity) : null;
  } catch {
    return null;
  }
}

/**
 * Whether a sweep removes the disposable of `record`: an ordinary one when
 * its owner is gone; a preloaded one when a run that was claiming it died
 * (`claim`: that run; null, a claim file that cannot be read), or unclaimed
 * when `preloaded` is `remove` (gc). A live claimer's is its own.
 */
export function sweeps(
  record: Pick<OwnerRecord, 'owner' | 'preloaded'>,
  claim: ProcessIdentity | null | undefined,
  preloaded: 'keep' | 'remove',
  alive: (owner: ProcessIdentity) => boolean = isAlive,
): boolean {
  if (!record.preloaded) return !alive(record.owner);
  if (claim === undefined) return preloaded === 'remove';
  return claim === null || !alive(claim);
}

/** The preloaded disposables of `template` at `connectUri` that no run is claiming, oldest first. */
export async function preloadedDisposables(
  template: string,
  connectUri: string,
  dir = recordDir(),
): Promise<OwnerRecord[]> {
  const found: OwnerRecord[] = [];
  for (const name of await listRecords(dir)) {
    const record = await readRecord(name, dir).catch(() => undefined);
    if (!record?.preloaded || record.template !== template || record.connectUri !== connectUri) continue;
    if ((await claimOwner(name, dir)) !== undefined) continue;
    found.push(record);
  }
  return found.sort((a, b) => a.preloaded!.at.localeCompare(b.preloaded!.at));
}

/**
 * Whether a disposable's owner is gone: a disposable whose metadata names no
 * owner counts as orphaned (nothing could ever claim it).
 */
export function isOrphaned(
  description: Pick<DomainDescription, 'role' | 'disposableOwner'>,
  alive: (owner: ProcessIdentity) => boolean = isAlive,
): boolean {
  if (description.role !== 'disposable') return false;
  return description.disposableOwner === undefined || !alive(description.disposableOwner);
}

/** The template a disposable uses: --template, else the defaults file's, else the only one there is. */
export function chooseTemplate(
  given: string | undefined,
  fromDefaults: { name: string; source: string } | undefined,
  templates: string[],
): { name: string; source: string } {
  if (given !== undefined) return { name: given, source: '--template' };
  if (fromDefaults) return fromDefaults;
  if (templates.length === 1) return { name: templates[0]!, source: 'the only template' };
  throw new InputError(
    templates.length === 0
      ? 'run --disposable: there is no template; make one (template import or template create) and pass --template'
      : `run --disposable: ${templates.length} templates (${templates.join(', ')}); pick one with --template or default_template in defaults.toml`,
  );
}

/** `--flatpak ID`: the argv that runs a Flatpak the template has, its ID checked first. */
export function flatpakArgv(id: unknown): string[] {
  return ['flatpak', 'run', validateFlatpakId(id)];
}

// ---------------------------------------------------------------------------
// The starter seam

/** What a starter is asked for. */
export interface StartRequest {
  /** The template's name (checked to be a template by the starter). */
  template: string;
  /** The disposable's name, free at the time it was picked (dispNNNN). */
  name: string;
  /** The owning process, to be recorded in the domain's metadata (`<vmp:disposable>`). */
  owner: DisposableOwner;
  /** Aborted on Ctrl+C or SIGTERM: a starter stops between steps and removes what it made. */
  signal?: AbortSignal;
}

/** A disposable a starter has running. */
export interface StartedDisposable {
  name: string;
  /** The SPICE endpoint, for the viewer (undefined if libvirt gave none). */
  spiceUri?: string;
  /**
   * Time (ms since the epoch) at or before which no connection of this VM's agent can be
   * current: `run` waits for a connection made after it (the proxy's connectedSince).
   */
  bootedAfter: number;
}

/**
 * Makes a disposable running. The contract (docs/disposables.md, "Starters"):
 * - resolve only once libvirt runs the domain `name`, defined with our metadata
 *   `role="disposable"` and `request.owner`, on `request.template`;
 * - from its first step until it resolves, everything it makes is journaled
 *   (the create journal) or recorded in that domain, so that `removeDisposable`
 *   or `gc` finds all of it after a SIGKILL;
 * - on failure or abort, remove what it made and reject (an abort rejects with
 *   CancelledError); never leave a domain without the disposable mark;
 * - each disposable gets its own identity (keyring password and agent secret
 *   under `name`): no two can authenticate as each other.
 */
export interface DisposableStarter {
  start(request: StartRequest): Promise<StartedDisposable>;
  /**
   * For preloading (docs/disposables-clones.md, "Preloaded disposables"):
   * the stamp of the template's current ready state (its savedAt), undefined
   * when it has none that is fresh. A starter without it never preloads.
   */
  readyStamp?(template: string): Promise<string | undefined>;
  /**
   * As `start`, but only the fast way (a clone of that ready state: never a
   * preparation or a cold boot); undefined when that cannot be had.
   */
  startPreloadable?(request: StartRequest): Promise<(StartedDisposable & { readyStamp: string }) | undefined>;
}

export interface ColdBootDeps {
  hypervisor: Hypervisor;
  volumes: VolumeStore;
  configStore: ConfigStore;
  credentials: CredentialStores;
  version: string;
  journalDir?: string;
}

/** The first starter: `create --template` with the disposable mark, then a cold boot (startVm). */
export class ColdBootStarter implements DisposableStarter {
  constructor(private readonly deps: ColdBootDeps) {}

  async start(request: StartRequest): Promise<StartedDisposable> {
    const { hypervisor, configStore, volumes } = this.deps;
    const template = await requireTemplate(hypervisor, request.template);
    const templateSpec = await configStore.read(template.name);
    // No apps, no Flatpak installs: the command comes through the agent once the VM runs.
    const spec = buildSpec({ name: request.name, template: template.name }, undefined, {
      base: inheritedFrom(templateSpec),
      connectUri: hypervisor.uri,
    });
    await createFromTemplate(this.deps, spec, {
      version: this.deps.version,
      disposable: request.owner,
      ...(this.deps.journalDir ? { journalDir: this.deps.journalDir } : {}),
      ...(request.signal ? { signal: request.signal } : {}),
    });
    const bootedAfter = Date.now();
    const started = await startVm(hypervisor, request.name, volumes);
    return { name: request.name, bootedAfter, ...(started.spiceUri ? { spiceUri: started.spiceUri } : {}) };
  }
}

// ---------------------------------------------------------------------------
// Removal

export interface RemoveDeps {
  hypervisor: Hypervisor;
  volumes: VolumeStore;
  configStore: ConfigStore;
  credentials: CredentialStores;
  /** Tells the proxy to forget the VM's windows; best effort (the proxy may not run). */
  forgetAtProxy?: (name: string) => Promise<void>;
  /** Where owner records live (default recordDir()). */
  recordDir?: string;
}

export interface RemovalReport {
  name: string;
  /** Files and volumes removed (paths). */
  removed: string[];
  configRemoved: boolean;
  secretsDeleted: number;
}

/**
 * Removes a disposable and every file of it: the domain is stopped hard
 * first and undefined after its files, volumes, config and keyring entries,
 * and the owner record goes last, so that a removal killed half-way is
 * finished by the next one. Refuses a domain that is not a disposable. With
 * no domain but an owner record (a removal killed after the undefine), the
 * config, keyring entries and record are removed. A clone's (docs/disposables-clones.md)
 * shared ready-state files, its config disk among its disks, are left alone.
 */
export async function removeDisposable(deps: RemoveDeps, name: string): Promise<RemovalReport> {
  const { hypervisor, volumes } = deps;
  const dir = deps.recordDir ?? recordDir();
  if (!DISPOSABLE_NAME.test(name)) throw new InputError(`'${name}' is not a disposable's name (dispNNNN)`);
  const report: RemovalReport = { name, removed: [], configRemoved: false, secretsDeleted: 0 };
  let description: DomainDescription | undefined;
  if (await hypervisor.exists(name)) {
    try {
      description = describeDomain(await hypervisor.xml(name, { inactive: true }));
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }
  if (description && (!description.ours || description.role !== 'disposable')) {
    throw new InputError(`'${name}' is not a disposable; remove it with destroy ${name}`);
  }
  if (!description && !(await readRecord(name, dir))) {
    throw new NotFoundError(`no disposable named '${name}' (at ${hypervisor.uri})`);
  }
  if (description) {
    try {
      if ((await hypervisor.info(name)).state !== 'shut off') await hypervisor.destroy(name);
    } catch (err) {
      if (!(err instanceof NotRunningError) && (await hypervisor.info(name)).state !== 'shut off') throw err;
    }
    const vmDir = description.disks[0] ? path.dirname(description.disks[0].file) : undefined;
    const volumePaths = vmDir ? appVmPaths({ name, vmDir }) : undefined;
    const asVolume = new Set(volumePaths ? [volumePaths.root, volumePaths.private] : []);
    // A clone (docs/disposables-clones.md) uses its template's ready state read-only: that stays.
    const shared = new Set(
      vmDir && description.template
        ? Object.values(readyPaths({ name: description.template.name, vmDir }))
        : [],
    );
    const wake = description.wakePipe ? [`${description.wakePipe}.in`, `${description.wakePipe}.out`] : [];
    const display = description.display ? [description.display.socket] : [];
    for (const file of [
      ...description.disks.map((d) => d.file),
      ...description.files,
      ...wake,
      ...display,
      consoleLogPath(name),
    ]) {
      if (!path.isAbsolute(file) || shared.has(file)) continue;
      // The overlay and the private volume go through the storage layer (a remote pool works too).
      if (asVolume.has(file)) {
        if (await volumes.remove(file)) report.removed.push(file);
        continue;
      }
      try {
        await fs.rm(file);
        report.removed.push(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
  }
  if (await deps.configStore.exists(name)) {
    await deps.configStore.remove(name);
    report.configRemoved = true;
  }
  for (const store of [deps.credentials.passwords, deps.credentials.agentSecrets]) {
    if (await store.delete(name)) report.secretsDeleted += 1;
  }
  // A clone not yet made persistent (killed between its restore and its definition) went with its stop.
  if (description && (await hypervisor.exists(name))) await hypervisor.undefine(name);
  await dropRecord(name, dir);
  await deps.forgetAtProxy?.(name).catch(() => undefined);
  return report;
}

export type SweepOutcome =
  | { name: string; status: 'removed'; detail: string; preloaded?: true }
  | { name: string; status: 'failed'; error: string };

export interface SweepDeps extends Omit<RemoveDeps, 'hypervisor' | 'volumes'> {
  /** The journal cleanup's adapters; its hypervisorFor opens each record's connection. */
  journal: CleanupDeps;
  volumesFor(uri: string): VolumeStore;
  /**
   * Also look at this hypervisor's domains for disposables with a dead owner
   * and no record (a record deleted by hand), among this user's VMs (a config
   * file in this config store): `run --disposable` does, having it open anyway.
   */
  scan?: Hypervisor;
  /**
   * Preloaded disposables (no owner needed while unclaimed): `keep` (a run's
   * sweep, the default) or `remove` (`gc`: they hold memory and are made
   * again by the next run).
   */
  preloaded?: 'keep' | 'remove';
}

/**
 * Removes every disposable whose owning process is gone, from its owner
 * record: what its killed create journaled, then the disposable itself.
 * Live ones are left alone. Run by `gc` and at the start of every
 * `run --disposable`; without records (and without `scan`) it touches
 * neither libvirt nor the keyring.
 */
export async function sweepOrphanedDisposables(
  deps: SweepDeps,
  alive: (owner: ProcessIdentity) => boolean = isAlive,
): Promise<SweepOutcome[]> {
  const dir = deps.recordDir ?? recordDir();
  const outcomes: SweepOutcome[] = [];
  const seen = new Set<string>();
  for (const name of await listRecords(dir)) {
    seen.add(name);
    try {
      const record = await readRecord(name, dir);
      if (!record) continue;
      const claim = record.preloaded ? await claimOwner(name, dir) : undefined;
      if (!sweeps(record, claim, deps.preloaded ?? 'keep', alive)) continue;
      // An unclaimed preload is taken first, as a run would take it: no run can claim it meanwhile.
      if (record.preloaded && claim === undefined && !(await claimPreloaded(name, currentProcess(), dir))) {
        continue;
      }
      const parts: string[] = [];
      const journal = await readJournal(name, deps.journal.dir);
      if (journal && !alive(journal.owner)) {
        const cleaned = await cleanUpUnfinished(deps.journal, name);
        parts.push(`${cleaned.removed.length} item(s) of its unfinished create`);
      }
      const hypervisor = await deps.journal.hypervisorFor(record.connectUri);
      const report = await removeDisposable(
        { ...deps, hypervisor, volumes: deps.volumesFor(record.connectUri) },
        name,
      );
      parts.push(describeRemoval(report));
      outcomes.push({
        name,
        status: 'removed',
        detail: parts.join('; '),
        ...(record.preloaded ? { preloaded: true as const } : {}),
      });
    } catch (err) {
      outcomes.push({ name, status: 'failed', error: (err as Error).message });
    }
  }
  if (deps.scan) {
    for (const d of await ourDomains(deps.scan)) {
      if (seen.has(d.name) || !isOrphaned(d, alive) || !(await isOurs(deps, d.name))) continue;
      try {
        const report = await removeDisposable(
          { ...deps, hypervisor: deps.scan, volumes: deps.volumesFor(deps.scan.uri) },
          d.name,
        );
        outcomes.push({ name: d.name, status: 'removed', detail: describeRemoval(report) });
      } catch (err) {
        if (err instanceof NotFoundError) continue; // removed by someone else meanwhile
        outcomes.push({ name: d.name, status: 'failed', error: (err as Error).message });
      }
    }
  }
  return outcomes;
}

/** This user's VM: a config file here, or (a clone has none) its agent secret in this user's keyring. */
async function isOurs(deps: Pick<SweepDeps, 'configStore' | 'credentials'>, name: string): Promise<boolean> {
  return (await deps.configStore.exists(name)) || (await deps.credentials.agentSecrets.get(name)) !== null;
}

/** What a removal took, in a few words. */
export function describeRemoval(report: RemovalReport): string {
  const n = report.secretsDeleted;
  return `${report.removed.length} file(s)${report.configRemoved ? ', config' : ''}, ${n} keyring entr${n === 1 ? 'y' : 'ies'}`;
}

// ---------------------------------------------------------------------------
// The whole lifetime

export interface DisposableContext {
  name: string;
  started: StartedDisposable;
  /** Aborted on Ctrl+C or SIGTERM of this process: the action should end at once. */
  signal: AbortSignal;
  /**
   * Preloads the next disposable of this template, once, in the background
   * (when preloading is on): the action calls it once its own window is up,
   * so that the restore does not slow that window down.
   */
  preloadNext(): void;
}

/** Preloading (`disposable_preload` in defaults.toml): how many to keep, and how to warm one up. */
export interface PreloadOptions {
  /** How many running disposables of a template to keep ready (0: none). */
  count: number;
  /**
   * Waits until the new disposable's agent is connected (a connection made at
   * or after `since`) and has started one process in its session: the paths a
   * claimed disposable runs first are then translated already (QEMU TCG).
   */
  warm(name: string, since: number, signal: AbortSignal): Promise<void>;
}

export interface WithDisposableOptions {
  starter: DisposableStarter;
  remove: RemoveDeps & SweepDeps;
  template: string;
  /** Aborted when the disposable must end (the CLI wires SIGINT and SIGTERM to it). */
  signal: AbortSignal;
  /** Progress lines (which name, what was cleaned up). */
  log?: (line: string) => void;
  /** Default: this process. */
  owner?: ProcessIdentity;
  /** Take a preloaded disposable when there is one, and preload the next (default: neither). */
  preload?: PreloadOptions;
}

/**
 * Makes a disposable, runs `action` with it, and removes it whatever happens:
 * the action returns or throws, or the signal aborts (the action is expected
 * to end when it sees the abort). Orphans of killed earlier runs are removed
 * first. Reusable: `run --disposable` and `open --disposable` differ only in
 * their action.
 */
export async function withDisposable<T>(
  options: WithDisposableOptions,
  action: (vm: DisposableContext) => Promise<T>,
): Promise<T> {
  const log = options.log ?? (() => undefined);
  const { hypervisor } = options.remove;
  const dir = options.remove.recordDir ?? recordDir();
  const owner = options.owner ?? currentProcess();
  let name: string;
  let started: StartedDisposable;
  const preloaded = await takePreloaded(options, owner, dir, log);
  if (preloaded) {
    ({ name } = preloaded);
    started = preloaded;
    log(`${name}: a preloaded disposable`);
  } else {
    name = await claimFreshName(options, owner, dir);
    trace('claimed');
    try {
      started = await options.starter.start({
        template: options.template,
        name,
        owner,
        signal: options.signal,
      });
    } catch (err) {
      // A start that failed after the domain was defined (the boot itself) leaves a marked domain.
      await removeDisposable(options.remove, name).catch((cleanupErr: Error) => {
        if (!(cleanupErr instanceof NotFoundError)) log(`${name}: left for gc: ${cleanupErr.message}`);
      });
      throw err;
    }
  }
  trace('started');
  // Orphans of killed runs go meanwhile, not before: nothing of theirs is in this one's way.
  const sweeping = sweepOrphanedDisposables({ ...options.remove, scan: hypervisor }).then(
    (outcomes) => {
      for (const outcome of outcomes) {
        if (outcome.status === 'removed')
          log(`${outcome.name}: removed (its owner was gone; ${outcome.detail})`);
        else log(`${outcome.name}: could not remove an orphaned disposable: ${outcome.error}`);
      }
    },
    (err: Error) => log(`could not sweep orphaned disposables: ${err.message}`),
  );
  log(`${name}: disposable on template ${options.template}`);
  let result: { value: T } | { error: unknown };
  let preloading: Promise<void> | undefined;
  const preloadNext = (): void => {
    preloading ??= preloadOne(options, owner, dir, log).catch((err: Error) => {
      if (!(err instanceof CancelledError)) log(`could not preload the next disposable: ${err.message}`);
    });
  };
  try {
    if (options.signal.aborted) throw new CancelledError(`disposable ${name} was interrupted as it started`);
    result = { value: await action({ name, started, signal: options.signal, preloadNext }) };
  } catch (error) {
    result = { error };
  }
  try {
    await removeDisposable(options.remove, name);
    log(`${name}: removed`);
  } catch (err) {
    // `destroy NAME` was first: nothing is left to remove.
    if (!(err instanceof NotFoundError)) throw err;
    log(`${name}: already removed`);
  }
  // After our own removal: the next one's preload (it removes itself if aborted) is not in our way.
  await preloading;
  await sweeping;
  if ('error' in result) throw result.error;
  return result.value;
}

/**
 * Removes the preloaded disposables of `template` (before the template
 * itself goes: they are backed by its ready state). One a live run is
 * claiming just then is left to that run. Returns the names removed.
 */
export async function removePreloadedOf(deps: RemoveDeps, template: string): Promise<string[]> {
  const dir = deps.recordDir ?? recordDir();
  const removed: string[] = [];
  for (const record of await preloadedDisposables(template, deps.hypervisor.uri, dir)) {
    if (!(await claimPreloaded(record.name, currentProcess(), dir))) continue;
    await removeDisposable(deps, record.name);
    removed.push(record.name);
  }
  return removed;
}

/** Picks a free dispNNNN name and writes its owner record (the claim), before anything is made. */
async function claimFreshName(
  options: WithDisposableOptions,
  owner: ProcessIdentity,
  dir: string,
): Promise<string> {
  const { hypervisor, configStore } = options.remove;
  const taken = nameTakenCheck(hypervisor, configStore, options.remove.journal.dir);
  // The record is the claim: written before anything is made, so a SIGKILL from here on leaves it for gc.
  for (let tries = 0; ; tries++) {
    const name = await pickDisposableName(taken);
    const claimed = await claimName(
      {
        version: 1,
        name,
        template: options.template,
        connectUri: hypervisor.uri,
        owner,
        createdAt: new Date().toISOString(),
      },
      dir,
    );
    if (claimed) return name;
    if (tries >= NAME_TRIES) throw new AlreadyExistsError('no free disposable name: run vm-provisioner gc');
  }
}

/**
 * A preloaded disposable of the template, claimed for `owner`: it runs, its
 * agent connected, so the command can be sent at once. Stale ones (cloned
 * from an older ready state) and ones no longer running met on the way are
 * removed and the next tried. Undefined when there is none (or preloading is
 * off).
 */
async function takePreloaded(
  options: WithDisposableOptions,
  owner: ProcessIdentity,
  dir: string,
  log: (line: string) => void,
): Promise<StartedDisposable | undefined> {
  const { hypervisor } = options.remove;
  if (!options.preload || !options.starter.readyStamp) return undefined;
  const candidates = await preloadedDisposables(options.template, hypervisor.uri, dir);
  if (candidates.length === 0) return undefined;
  const stamp = await options.starter.readyStamp(options.template);
  for (const record of candidates) {
    const { name } = record;
    if (!(await claimPreloaded(name, owner, dir))) continue;
    try {
      if (stamp === undefined) throw new VmpError('its template has no fresh ready state now');
      if (record.preloaded!.readySavedAt !== stamp) {
        throw new VmpError('it was cloned from an older ready state of its template');
      }
      const { state } = await hypervisor.info(name);
      if (state !== 'running' && state !== 'idle') throw new VmpError(`it is ${state}`);
      const description = describeDomain(await hypervisor.xml(name));
      const { bootedAfter } = record.preloaded!;
      return { name, bootedAfter, ...(description.spiceUri ? { spiceUri: description.spiceUri } : {}) };
    } catch (err) {
      log(`${name}: preloaded disposable not used (${(err as Error).message}); removing it`);
      await removeDisposable(options.remove, name).catch((cleanupErr: Error) => {
        if (!(cleanupErr instanceof NotFoundError)) log(`${name}: left for gc: ${cleanupErr.message}`);
      });
    }
  }
  return undefined;
}

/**
 * Preloads one disposable of the template when fewer than `preload.count`
 * are waiting: a clone of its ready state (never a cold boot), warmed up
 * (its agent connected, one process started), then marked preloaded. It is
 * left running, not paused: a paused guest's clock stops (it would resume
 * hours late), and a running one's agent link is already up when claimed.
 * Until marked it is an ordinary disposable of this process, so a SIGKILL
 * leaves it to the sweep; a failure or abort removes it.
 */
async function preloadOne(
  options: WithDisposableOptions,
  owner: ProcessIdentity,
  dir: string,
  log: (line: string) => void,
): Promise<void> {
  const { preload, starter } = options;
  const { hypervisor } = options.remove;
  if (!preload || preload.count <= 0 || !starter.startPreloadable || options.signal.aborted) return;
  const waiting = await preloadedDisposables(options.template, hypervisor.uri, dir);
  if (waiting.length >= preload.count) return;
  const name = await claimFreshName(options, owner, dir);
  try {
    const started = await starter.startPreloadable({
      template: options.template,
      name,
      owner,
      signal: options.signal,
    });
    if (!started) {
      await dropRecord(name, dir);
      return;
    }
    await preload.warm(name, started.bootedAfter, options.signal);
    await settle(hypervisor, name, options.signal);
    await markPreloaded(
      name,
      { readySavedAt: started.readyStamp, at: new Date().toISOString(), bootedAfter: started.bootedAfter },
      dir,
    );
    log(`${name}: preloaded for the next disposable on ${options.template}`);
  } catch (err) {
    await removeDisposable(options.remove, name).catch((cleanupErr: Error) => {
      if (!(cleanupErr instanceof NotFoundError)) log(`${name}: left for gc: ${cleanupErr.message}`);
    });
    throw err;
  }
}

/** A guest using less of one CPU than this counts as settled (idle TCG guests use a few per cent). */
const SETTLED_CPU_SHARE = 0.25;
/** The longest a preload waits for its guest to settle: a busy guest is still a usable disposable. */
const SETTLE_MAX_MS = 20_000;
const SETTLE_STEP_MS = 500;

/**
 * Waits until preloaded disposable `name` has settled: its guest used less
 * than SETTLED_CPU_SHARE of a CPU over the last half second (libvirt's CPU
 * time), or SETTLE_MAX_MS have passed. A clone is still busy for a while
 * after its identity (host name, machine ID, the warm-up); taken then, its
 * leftovers would compete with the taker's command for the host's CPUs.
 */
async function settle(hypervisor: Hypervisor, name: string, signal: AbortSignal): Promise<void> {
  const started = performance.now();
  let last = { ns: (await hypervisor.info(name)).cpuTimeNs, at: performance.now() };
  if (last.ns === undefined) return;
  while (performance.now() - started < SETTLE_MAX_MS) {
    await new Promise((resolve) => setTimeout(resolve, SETTLE_STEP_MS));
    if (signal.aborted) throw new CancelledError(`preloading ${name} was interrupted`);
    const now = { ns: (await hypervisor.info(name)).cpuTimeNs, at: performance.now() };
    if (now.ns === undefined) return;
    const share = (now.ns - last.ns!) / ((now.at - last.at) * 1e6);
    if (share < SETTLED_CPU_SHARE) {
      trace(
        `preload settled after ${Math.round(performance.now() - started)} ms (${(share * 100).toFixed(0)} % of a CPU)`,
      );
      return;
    }
    last = now;
  }
  trace(`preload not settled after ${SETTLE_MAX_MS} ms`);
}

// ---------------------------------------------------------------------------
// When it ends

/** What ends a disposable's command, from the proxy's events for its VM. */
export type DisposableEnd =
  | { reason: 'exited'; how: 'exited' | 'signalled'; code: number }
  | { reason: 'last-window-closed' }
  | { reason: 'agent-gone' };

/**
 * Follows one disposable's proxy events: its command's EXEC_EXITED, and its
 * window count (the agent reports client windows only, never bars or frames).
 * Ends when the command has exited, or when the VM had at least one window
 * and has none left. Pure: fed events, says when it is over.
 */
export class DisposableWatch {
  private readonly windows = new Set<number>();
  private hadWindow = false;
  /** Set once `run` has answered; an exit reported before that is remembered by id. */
  private execId: number | undefined;
  private readonly exits = new Map<number, DisposableEnd>();

  constructor(readonly vm: string) {}

  get windowCount(): number {
    return this.windows.size;
  }

  /** The exec id `run` answered; returns the end if that command had already exited. */
  started(execId: number): DisposableEnd | undefined {
    this.execId = execId;
    return this.exits.get(execId);
  }

  /** Feeds one event (any VM's; others are ignored); returns the end once there is one. */
  apply(event: { vm: string; type: string; [key: string]: unknown }): DisposableEnd | undefined {
    if (event.vm !== this.vm) return undefined;
    switch (event.type) {
      case 'window-list':
        this.windows.clear();
        for (const w of event.windows as Array<{ id: number }>) this.windows.add(w.id);
        break;
      case 'window-created':
        this.windows.add((event.window as { id: number }).id);
        break;
      case 'window-destroyed':
        this.windows.delete(event.id as number);
        break;
      case 'exec-exited': {
        const end: DisposableEnd = {
          reason: 'exited',
          how: event.how === 'signalled' ? 'signalled' : 'exited',
          code: event.code as number,
        };
        if (this.execId === undefined) {
          this.exits.set(event.execId as number, end);
          return undefined;
        }
        return event.execId === this.execId ? end : undefined;
      }
      case 'vm-forgotten':
        return { reason: 'agent-gone' };
      default:
        return undefined;
    }
    if (this.windows.size > 0) this.hadWindow = true;
    else if (this.hadWindow) return { reason: 'last-window-closed' };
    return undefined;
  }
}

/** One line on how a disposable ended. */
export function describeEnd(end: DisposableEnd): string {
  switch (end.reason) {
    case 'exited':
      return end.how === 'exited'
        ? `its command exited with status ${end.code}`
        : `its command was killed by signal ${end.code}`;
    case 'last-window-closed':
      return 'its last window closed';
    case 'agent-gone':
      return 'the VM went away';
  }
}
