import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describeDomain } from '../libvirt/inspect.js';
import {
  AlreadyExistsError,
  CancelledError,
  NotFoundError,
  NotRunningError,
  VmpError,
} from '../util/errors.js';
import { stateDir } from '../util/paths.js';
import type { Hypervisor, SecretStore } from './ports.js';
import { readTextIfExists } from '../util/read-if-exists.js';

/**
 * The create journal: a crash-proof list of what an unfinished create may
 * have made, so the tool can clean up after its own SIGKILL, power loss or
 * OOM kill. A create writes the journal BEFORE each step, naming what that
 * step is about to make; when the create completes, or its in-process undo
 * has removed everything, the journal is deleted. A journal whose creating
 * process is gone therefore lists a superset of what is left, and `gc` or
 * `destroy NAME` removes exactly what it lists, never more and never by
 * guessing from names.
 *
 * One file per VM: `$XDG_STATE_HOME/vm-provisioner/journal/<name>.json`, mode
 * 0600, replaced atomically (temp file, fsync, rename, fsync of the
 * directory) on every step, so a reader sees the old or the new list, never
 * half of one.
 */

export const JOURNAL_VERSION = 1;

/**
 * Test hook: when set to a step name (or `committed`), the creating process
 * stops itself with SIGSTOP right after the journal names that step, before
 * the step runs, so a test can SIGKILL or interrupt it at a known point.
 * Never set it outside tests.
 */
export const TEST_STOP_ENV = 'VMP_TEST_STOP_AT';

/** A libvirt storage volume, by pool and volume name or by its path. */
export type VolumeEntry = { kind: 'volume'; pool: string; name: string } | { kind: 'volume'; path: string };

export type JournalEntry =
  /** A regular file; removed with rm (a missing file is fine). */
  | { kind: 'file'; path: string }
  /** A keyring entry: service and account. */
  | { kind: 'keyring'; service: string; account: string }
  /** A libvirt domain at the journal's URI; removed only if it carries our metadata. */
  | { kind: 'domain'; name: string }
  | VolumeEntry
  /** A private directory this create made (mkdtemp), removed with its contents. */
  | { kind: 'directory'; path: string }
  /** The VM's TOML config file. */
  | { kind: 'config'; path: string }
  /** The per-name create lock; removed only while it still names the journal's (dead) owner. */
  | { kind: 'lock'; path: string };

/** Who is creating: a pid alone could be reused after a crash, so its start time and the boot are recorded. */
export interface ProcessIdentity {
  pid: number;
  /** Field 22 of /proc/PID/stat (clock ticks after boot); null where /proc is unreadable. */
  startTicks: string | null;
  /** /proc/sys/kernel/random/boot_id; null where unreadable. */
  bootId: string | null;
}

export interface JournalRecord {
  version: typeof JOURNAL_VERSION;
  vm: string;
  /** What is being made, e.g. `create`, `create --import`; shown to the user. */
  operation: string;
  /** libvirt URI of any `domain` and `volume` entries. */
  connectUri: string;
  owner: ProcessIdentity;
  /** ISO time the create began. */
  startedAt: string;
  /** Every step named so far, in order; entries may not exist (the step may not have run). */
  steps: Array<{ step: string; entries: JournalEntry[] }>;
}

export function journalDir(): string {
  return path.join(stateDir(), 'journal');
}

export function journalPathOf(vm: string, dir = journalDir()): string {
  // VM names are validated long before a journal is written; this only keeps a bad one out of other paths.
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(vm)) throw new VmpError(`invalid VM name for a journal: ${vm}`);
  return path.join(dir, `${vm}.json`);
}

/** The current process's identity (call once per create). */
export function currentProcess(): ProcessIdentity {
  return identityOf(process.pid);
}

function identityOf(pid: number): ProcessIdentity {
  return { pid, startTicks: startTicksOf(pid), bootId: bootId() };
}

function startTicksOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses; fields after the last ')' are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

function bootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return null;
  }
}

/**
 * True if the recorded process still runs: same boot, pid exists, and the
 * process with that pid started when the recorded one did. Where /proc does
 * not tell, a pid that exists counts as alive, so a live create is never
 * cleaned up from under itself.
 */
export function isAlive(owner: ProcessIdentity): boolean {
  const now = bootId();
  if (owner.bootId !== null && now !== null && owner.bootId !== now) return false;
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const ticks = startTicksOf(owner.pid);
  if (owner.startTicks !== null && ticks !== null) return owner.startTicks === ticks;
  return true;
}

/** Stops this process (SIGSTOP) at `point` when the test hook asks for it; see TEST_STOP_ENV. */
export function testStopPoint(point: string): void {
  if (process.env[TEST_STOP_ENV] === point) process.kill(process.pid, 'SIGSTOP');
}

export interface BeginOptions {
  vm: string;
  operation: string;
  connectUri: string;
  /** Entries made before the first step (the create lock). */
  entries?: JournalEntry[];
  /** Default journalDir(). */
  dir?: string;
}

/** An open journal of one create in this process. */
export class Journal {
  private finished = false;

  private constructor(
    readonly file: string,
    private readonly data: JournalRecord,
  ) {}

  /**
   * Starts the journal of a create; fails with AlreadyExistsError, saying
   * what to run, when a journal for that VM exists (a live create, or an
   * unfinished one to clean up first).
   */
  static async begin(options: BeginOptions): Promise<Journal> {
    const dir = options.dir ?? journalDir();
    const file = journalPathOf(options.vm, dir);
    await refuseUnfinished(options.vm, dir);
    const data: JournalRecord = {
      version: JOURNAL_VERSION,
      vm: options.vm,
      operation: options.operation,
      connectUri: options.connectUri,
      owner: currentProcess(),
      startedAt: new Date().toISOString(),
      steps: options.entries?.length ? [{ step: 'begin', entries: options.entries }] : [],
    };
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const tmp = await writeTemp(file, data);
    try {
      // link() fails if the name exists: exclusive creation, with the whole content already there.
      await fs.link(tmp, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new AlreadyExistsError(await unfinishedMessage(options.vm, dir));
      }
      throw err;
    } finally {
      await fs.rm(tmp, { force: true });
    }
    await syncDir(dir);
    return new Journal(file, data);
  }

  get record(): Readonly<JournalRecord> {
    return this.data;
  }

  /** Records, durably, what step `step` is about to make; call it before the step. */
  async step(step: string, entries: JournalEntry[]): Promise<void> {
    if (this.finished) throw new VmpError(`journal ${this.file} is already finished`);
    this.data.steps.push({ step, entries });
    const tmp = await writeTemp(this.file, this.data);
    await fs.rename(tmp, this.file);
    await syncDir(path.dirname(this.file));
    testStopPoint(step);
  }

  /** Deletes the journal: the create completed, or everything it made was removed. */
  async finish(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    await fs.rm(this.file, { force: true });
    await syncDir(path.dirname(this.file));
  }
}

/**
 * The steps of an interruptible create: each call journals its step, then
 * lets a Ctrl+C that is already pending reach its handler, and throws
 * CancelledError if it did, before the step makes anything. Signals arrive
 * through the event loop: one turn runs the check phase before the next poll
 * reads the signal, two see it.
 */
export function interruptibleSteps(
  journal: Journal,
  vm: string,
  signal?: AbortSignal,
): (step: string, entries: JournalEntry[]) => Promise<void> {
  return async (step, entries) => {
    await journal.step(step, entries);
    for (let turn = 0; turn < 2; turn++) await new Promise((resolve) => setImmediate(resolve));
    if (signal?.aborted) throw new CancelledError(`creating VM '${vm}' was interrupted`);
  };
}

async function writeTemp(file: string, data: JournalRecord): Promise<string> {
  const tmp = `${file}.tmp-${process.pid}`;
  const handle = await fs.open(tmp, 'w', 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(data, null, 2)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return tmp;
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The journal of VM `vm`, or undefined if there is none. A damaged journal is an error naming the file. */
export async function readJournal(vm: string, dir = journalDir()): Promise<JournalRecord | undefined> {
  const file = journalPathOf(vm, dir);
  const text = await readTextIfExists(file);
  return text === undefined ? undefined : parseRecord(text, file);
}

function parseRecord(text: string, file: string): JournalRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new VmpError(`journal ${file} is not valid JSON; look at it and remove it by hand`);
  }
  const r = value as Partial<JournalRecord>;
  if (
    r?.version !== JOURNAL_VERSION ||
    typeof r.vm !== 'string' ||
    typeof r.connectUri !== 'string' ||
    typeof r.owner?.pid !== 'number' ||
    !Array.isArray(r.steps)
  ) {
    throw new VmpError(`journal ${file} is not a version ${JOURNAL_VERSION} journal; remove it by hand`);
  }
  return r as JournalRecord;
}

/** Names of every VM with a journal (finished or not), sorted. */
export async function listJournals(dir = journalDir()): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names
    .filter((n) => n.endsWith('.json'))
    .map((n) => n.slice(0, -'.json'.length))
    .sort();
}

/** Throws AlreadyExistsError, saying what to run, if VM `vm` has a journal. */
export async function refuseUnfinished(vm: string, dir = journalDir()): Promise<void> {
  if ((await readJournal(vm, dir).catch(() => 'damaged')) !== undefined) {
    throw new AlreadyExistsError(await unfinishedMessage(vm, dir));
  }
}

async function unfinishedMessage(vm: string, dir: string): Promise<string> {
  const file = journalPathOf(vm, dir);
  const record = await readJournal(vm, dir).catch(() => undefined);
  if (record && isAlive(record.owner)) {
    return `VM '${vm}' is being created by another process (pid ${record.owner.pid}); wait for it or interrupt it`;
  }
  return (
    `VM '${vm}' was left unfinished by an earlier ${record?.operation ?? 'create'} that did not complete (journal ${file}); ` +
    `run "vm-provisioner gc" or "vm-provisioner destroy ${vm}" to remove what it made, then create again`
  );
}

export interface CleanupDeps {
  /** The hypervisor at a journal's URI; asked only for journals that list a domain or volume. */
  hypervisorFor(uri: string): Promise<Hypervisor>;
  /** The keyring store of one service. */
  secretStoreFor(service: string): SecretStore;
  /** Deletes a storage volume; true if it was there. Needed only for journals that list one. */
  removeVolume?(hypervisor: Hypervisor, entry: VolumeEntry): Promise<boolean>;
  /** Default journalDir(). */
  dir?: string;
}

export interface CleanupReport {
  vm: string;
  /** What was there and is gone now, newest first. */
  removed: JournalEntry[];
  /** Listed but deliberately kept: a domain without our metadata, a lock a newer create holds. */
  kept: Array<{ entry: JournalEntry; reason: string }>;
}

/**
 * Removes what VM `vm`'s journal lists, newest step first, then the journal.
 * Throws NotFoundError if there is no journal, AlreadyExistsError if its
 * creating process still runs, and a VmpError listing what could not be
 * removed (the journal is then kept, so a later run can try again).
 */
export async function cleanUpUnfinished(deps: CleanupDeps, vm: string): Promise<CleanupReport> {
  const dir = deps.dir ?? journalDir();
  const record = await readJournal(vm, dir);
  if (!record) throw new NotFoundError(`VM '${vm}' has no unfinished create`);
  if (isAlive(record.owner)) {
    throw new AlreadyExistsError(
      `VM '${vm}' is still being created (pid ${record.owner.pid}); wait for it, or interrupt that create, which removes what it made`,
    );
  }
  const report: CleanupReport = { vm, removed: [], kept: [] };
  const failures: string[] = [];
  const entries = record.steps.flatMap((s) => s.entries).reverse();
  for (const entry of entries) {
    try {
      await removeEntry(deps, record, entry, report);
    } catch (err) {
      failures.push(`${describeEntry(entry)}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (failures.length > 0) {
    throw new VmpError(
      `could not remove all that the unfinished create of '${vm}' made (journal ${journalPathOf(vm, dir)} kept, run again): ${failures.join('; ')}`,
    );
  }
  await fs.rm(journalPathOf(vm, dir), { force: true });
  await syncDir(dir).catch(() => undefined);
  return report;
}

export type GcOutcome =
  | { vm: string; status: 'removed'; report: CleanupReport }
  | { vm: string; status: 'in-progress'; pid: number; operation: string }
  | { vm: string; status: 'failed'; error: string };

/** `gc`: every unfinished create whose process is gone is cleaned up; live ones are left alone and reported. */
export async function collectGarbage(deps: CleanupDeps): Promise<GcOutcome[]> {
  const dir = deps.dir ?? journalDir();
  const outcomes: GcOutcome[] = [];
  for (const vm of await listJournals(dir)) {
    let record: JournalRecord | undefined;
    try {
      record = await readJournal(vm, dir);
      if (!record) continue;
      if (isAlive(record.owner)) {
        outcomes.push({ vm, status: 'in-progress', pid: record.owner.pid, operation: record.operation });
        continue;
      }
      outcomes.push({ vm, status: 'removed', report: await cleanUpUnfinished(deps, vm) });
    } catch (err) {
      outcomes.push({ vm, status: 'failed', error: err instanceof Error ? err.message : String(err) });
    }
  }
  return outcomes;
}

export function describeEntry(entry: JournalEntry): string {
  switch (entry.kind) {
    case 'file':
    case 'directory':
    case 'config':
    case 'lock':
      return entry.path;
    case 'keyring':
      return `keyring ${entry.service}/${entry.account}`;
    case 'domain':
      return `domain '${entry.name}'`;
    case 'volume':
      return 'path' in entry ? `volume ${entry.path}` : `volume ${entry.pool}/${entry.name}`;
  }
}

async function removeEntry(
  deps: CleanupDeps,
  record: JournalRecord,
  entry: JournalEntry,
  report: CleanupReport,
): Promise<void> {
  switch (entry.kind) {
    case 'file':
    case 'config':
      if (await removeFile(entry.path)) report.removed.push(entry);
      return;
    case 'directory':
      if (await pathExistsHere(entry.path)) {
        await fs.rm(entry.path, { recursive: true, force: true });
        report.removed.push(entry);
      }
      return;
    case 'lock': {
      const text = await fs.readFile(entry.path, 'utf8').catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      });
      if (text === undefined) return;
      // A newer create may have broken the stale lock and taken it: that one is not ours to remove.
      if (Number(text.trim()) !== record.owner.pid) {
        report.kept.push({ entry, reason: `held by pid ${text.trim()}` });
        return;
      }
      if (await removeFile(entry.path)) report.removed.push(entry);
      return;
    }
    case 'keyring':
      if (await deps.secretStoreFor(entry.service).delete(entry.account)) report.removed.push(entry);
      return;
    case 'domain': {
      const hypervisor = await deps.hypervisorFor(record.connectUri);
      const outcome = await removeOurDomain(hypervisor, entry.name);
      if (outcome === 'removed') report.removed.push(entry);
      else if (outcome === 'foreign')
        report.kept.push({ entry, reason: 'no vm-provisioner metadata: not ours' });
      return;
    }
    case 'volume': {
      if (!deps.removeVolume) throw new VmpError('this vm-provisioner cannot remove storage volumes');
      const hypervisor = await deps.hypervisorFor(record.connectUri);
      if (await deps.removeVolume(hypervisor, entry)) report.removed.push(entry);
      return;
    }
  }
}

async function pathExistsHere(file: string): Promise<boolean> {
  try {
    await fs.lstat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

async function removeFile(file: string): Promise<boolean> {
  try {
    await fs.rm(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Stops and undefines the domain if it exists and carries our metadata; a foreign one is left alone. */
async function removeOurDomain(
  hypervisor: Hypervisor,
  name: string,
): Promise<'removed' | 'absent' | 'foreign'> {
  try {
    if (!(await hypervisor.exists(name))) return 'absent';
    if (!describeDomain(await hypervisor.xml(name, { inactive: true })).ours) return 'foreign';
    if ((await hypervisor.info(name)).state !== 'shut off') {
      try {
        await hypervisor.destroy(name);
      } catch (err) {
        if (!(err instanceof NotRunningError)) throw err;
      }
    }
    await hypervisor.undefine(name);
    return 'removed';
  } catch (err) {
    if (err instanceof NotFoundError) return 'absent';
    throw err;
  }
}
