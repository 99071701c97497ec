import { randomInt } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
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
} from '../util/errors.js';
import { ourDomains } from './inventory.js';
import {
  cleanUpUnfinished,
  currentProcess,
  isAlive,
  listJournals,
  readJournal,
  type CleanupDeps,
  type ProcessIdentity,
} from './journal.js';
import { startVm } from './lifecycle.js';
import type { ConfigStore, Hypervisor } from './ports.js';
import { appVmPaths, createFromTemplate, inheritedFrom, requireTemplate } from './templates.js';

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
 * first and undefined LAST, so that its mark (and so `gc`'s knowledge of it)
 * outlives everything else; a removal killed half-way is finished by the next
 * one. Refuses a domain that is not a disposable of ours.
 */
export async function removeDisposable(deps: RemoveDeps, name: string): Promise<RemovalReport> {
  const { hypervisor, volumes } = deps;
  if (!DISPOSABLE_NAME.test(name)) throw new InputError(`'${name}' is not a disposable's name (dispNNNN)`);
  const report: RemovalReport = { name, removed: [], configRemoved: false, secretsDeleted: 0 };
  let description: DomainDescription;
  try {
    if (!(await hypervisor.exists(name))) throw new NotFoundError(`no VM named '${name}'`);
    description = describeDomain(await hypervisor.xml(name, { inactive: true }));
  } catch (err) {
    if (err instanceof NotFoundError)
      throw new NotFoundError(`no disposable named '${name}' (at ${hypervisor.uri})`);
    throw err;
  }
  if (!description.ours || description.role !== 'disposable') {
    throw new InputError(`'${name}' is not a disposable; remove it with destroy ${name}`);
  }
  try {
    if ((await hypervisor.info(name)).state !== 'shut off') await hypervisor.destroy(name);
  } catch (err) {
    if (!(err instanceof NotRunningError) && (await hypervisor.info(name)).state !== 'shut off') throw err;
  }
  const vmDir = description.disks[0] ? path.dirname(description.disks[0].file) : undefined;
  const volumePaths = vmDir ? appVmPaths({ name, vmDir }) : undefined;
  const asVolume = new Set(volumePaths ? [volumePaths.root, volumePaths.private] : []);
  const wake = description.wakePipe ? [`${description.wakePipe}.in`, `${description.wakePipe}.out`] : [];
  const display = description.display ? [description.display.socket] : [];
  for (const file of [
    ...description.disks.map((d) => d.file),
    ...description.files,
    ...wake,
    ...display,
    consoleLogPath(name),
  ]) {
    if (!path.isAbsolute(file)) continue;
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
  if (await deps.configStore.exists(name)) {
    await deps.configStore.remove(name);
    report.configRemoved = true;
  }
  for (const store of [deps.credentials.passwords, deps.credentials.agentSecrets]) {
    if (await store.delete(name)) report.secretsDeleted += 1;
  }
  await hypervisor.undefine(name);
  await deps.forgetAtProxy?.(name).catch(() => undefined);
  return report;
}

export type SweepOutcome =
  | { name: string; status: 'removed'; how: 'domain' | 'journal'; detail: string }
  | { name: string; status: 'failed'; error: string };

/**
 * Removes every disposable whose owning process is gone: marked domains, and
 * disposables whose create was killed before the domain existed (their
 * journal). Live ones are left alone. Run by `gc` and at the start of every
 * `run --disposable`.
 */
export async function sweepOrphanedDisposables(
  deps: RemoveDeps & { journal: CleanupDeps },
  alive: (owner: ProcessIdentity) => boolean = isAlive,
): Promise<SweepOutcome[]> {
  const outcomes: SweepOutcome[] = [];
  for (const name of (await listJournals(deps.journal.dir)).filter((n) => DISPOSABLE_NAME.test(n))) {
    try {
      const record = await readJournal(name, deps.journal.dir);
      if (!record || record.operation !== 'run --disposable' || alive(record.owner)) continue;
      const cleaned = await cleanUpUnfinished(deps.journal, name);
      outcomes.push({ name, status: 'removed', how: 'journal', detail: `${cleaned.removed.length} item(s)` });
    } catch (err) {
      outcomes.push({ name, status: 'failed', error: (err as Error).message });
    }
  }
  for (const d of await ourDomains(deps.hypervisor)) {
    if (!isOrphaned(d, alive)) continue;
    try {
      const report = await removeDisposable(deps, d.name);
      outcomes.push({
        name: d.name,
        status: 'removed',
        how: 'domain',
        detail: `${report.removed.length} file(s), ${report.secretsDeleted} keyring entr${report.secretsDeleted === 1 ? 'y' : 'ies'}`,
      });
    } catch (err) {
      if (err instanceof NotFoundError) continue; // removed by someone else meanwhile
      outcomes.push({ name: d.name, status: 'failed', error: (err as Error).message });
    }
  }
  return outcomes;
}

// ---------------------------------------------------------------------------
// The whole lifetime

export interface DisposableContext {
  name: string;
  started: StartedDisposable;
  /** Aborted on Ctrl+C or SIGTERM of this process: the action should end at once. */
  signal: AbortSignal;
}

export interface WithDisposableOptions {
  starter: DisposableStarter;
  remove: RemoveDeps & { journal: CleanupDeps };
  template: string;
  /** Aborted when the disposable must end (the CLI wires SIGINT and SIGTERM to it). */
  signal: AbortSignal;
  /** Progress lines (which name, what was cleaned up). */
  log?: (line: string) => void;
  /** Default: this process. */
  owner?: ProcessIdentity;
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
  const { hypervisor, configStore } = options.remove;
  for (const outcome of await sweepOrphanedDisposables(options.remove)) {
    if (outcome.status === 'removed') log(`${outcome.name}: removed (its owner was gone; ${outcome.detail})`);
    else log(`${outcome.name}: could not remove an orphaned disposable: ${outcome.error}`);
  }
  const owner = options.owner ?? currentProcess();
  let started: StartedDisposable | undefined;
  let name = '';
  for (let attempt = 0; ; attempt++) {
    name = await pickDisposableName(nameTakenCheck(hypervisor, configStore, options.remove.journal.dir));
    try {
      started = await options.starter.start({
        template: options.template,
        name,
        owner,
        signal: options.signal,
      });
      break;
    } catch (err) {
      // Another disposable took the name between the check and the create: pick another.
      if (err instanceof AlreadyExistsError && attempt < 3 && !options.signal.aborted) continue;
      // A start that failed after the domain was defined (the boot itself) leaves a marked domain.
      await removeIfOurs(options.remove, name, owner);
      throw err;
    }
  }
  log(`${name}: disposable on template ${options.template}`);
  try {
    if (options.signal.aborted) throw new CancelledError(`disposable ${name} was interrupted as it started`);
    return await action({ name, started, signal: options.signal });
  } finally {
    await removeDisposable(options.remove, name);
    log(`${name}: removed`);
  }
}

/** Removes `name` if it is a disposable this owner made (never another process's of the same name). */
async function removeIfOurs(deps: RemoveDeps, name: string, owner: ProcessIdentity): Promise<void> {
  try {
    if (!(await deps.hypervisor.exists(name))) return;
    const d = describeDomain(await deps.hypervisor.xml(name, { inactive: true }));
    const mine = d.disposableOwner?.pid === owner.pid && d.disposableOwner.startTicks === owner.startTicks;
    if (d.ours && d.role === 'disposable' && mine) await removeDisposable(deps, name);
  } catch {
    // Left for gc: the domain carries the mark and a dead owner once this process ends.
  }
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
