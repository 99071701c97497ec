import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import { describeDomain, type DomainDescription } from '../libvirt/inspect.js';
import { parseXmlObject } from '../libvirt/xml-object.js';
import { SNAPSHOT_NAME_PATTERN } from '../spec/snapshot-name.js';
import { AlreadyExistsError, HypervisorError, InputError, NotFoundError, VmpError } from '../util/errors.js';
import { requireOurVm, savedStateBytes } from './inventory.js';
import type { DomainState, Hypervisor } from './ports.js';

/**
 * Saved state, pause and snapshots (docs/snapshots.md): a VM that comes back
 * the way a laptop wakes. Memory goes to libvirt's managed-save image, or into
 * an internal qcow2 snapshot with the disks; after any resume the host pokes
 * the guest agent through the wake channel so it reconnects at once
 * (docs/protocol.md, "Resume").
 */

const ACTIVE: DomainState[] = ['running', 'idle', 'paused', 'in shutdown', 'pmsuspended'];

export function isActive(state: DomainState): boolean {
  return ACTIVE.includes(state);
}

export function validateSnapshotName(value: unknown): string {
  if (typeof value !== 'string' || !SNAPSHOT_NAME_PATTERN.test(value)) {
    throw new InputError(
      `snapshot name ${JSON.stringify(value)} is invalid: use 1-64 letters, digits, '_' or '-', starting with a letter or digit`,
    );
  }
  return value;
}

// ---- the wake channel ------------------------------------------------------

/** QEMU opens `<base>.in` and `<base>.out` at every start and restore: they must exist first. */
export async function ensureWakePipe(vm: Pick<DomainDescription, 'wakePipe'>): Promise<void> {
  if (vm.wakePipe === undefined) return;
  for (const file of [`${vm.wakePipe}.in`, `${vm.wakePipe}.out`]) {
    const stat = await fs.lstat(file).catch(() => undefined);
    if (stat?.isFIFO()) continue;
    if (stat) throw new VmpError(`${file} should be the VM's wake FIFO but is another kind of file`);
    // Node has no mkfifo(3); coreutils' does it without a shell. execa is loaded only here: a VM's FIFOs
    // exist from its first start on, and `start` reaches libvirt's restore without loading it.
    const { execa } = await import('execa');
    await execa('mkfifo', ['-m', '0600', file]);
  }
}

/**
 * Tells the guest agent its VM has just resumed: one byte into the FIFO QEMU
 * reads and passes to the agent's virtio-serial port. Never blocks and never
 * fails the command: without the channel the agent still reconnects at its
 * next heartbeat. Returns whether the byte was written.
 */
export async function wakeAgent(vm: Pick<DomainDescription, 'wakePipe'>): Promise<boolean> {
  if (vm.wakePipe === undefined) return false;
  let handle: fs.FileHandle | undefined;
  try {
    // O_NONBLOCK: with no reader (QEMU gone) open fails with ENXIO instead of waiting.
    handle = await fs.open(`${vm.wakePipe}.in`, constants.O_WRONLY | constants.O_NONBLOCK);
    await handle.write(Buffer.from('w'));
    return true;
  } catch {
    return false;
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/**
 * For a restore from managed save: the wake byte goes into the FIFO before
 * libvirt starts QEMU, so the guest finds it the moment it runs again instead
 * of after libvirt's restore call has returned (docs/protocol.md, "Resume").
 * O_RDWR opens a FIFO without a reader and without blocking (Linux); the
 * returned handle must stay open until QEMU has opened the FIFO too (a FIFO
 * no one holds open drops its contents), so close it once the start call has
 * returned, whatever its outcome. Undefined when the byte could not be
 * written: then `wakeAgent` after the start does the job.
 */
export async function primeWake(vm: Pick<DomainDescription, 'wakePipe'>): Promise<fs.FileHandle | undefined> {
  if (vm.wakePipe === undefined) return undefined;
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(`${vm.wakePipe}.in`, constants.O_RDWR | constants.O_NONBLOCK);
    await handle.write(Buffer.from('w'));
    return handle;
  } catch {
    await handle?.close().catch(() => undefined);
    return undefined;
  }
}

// ---- saved state -----------------------------------------------------------

export { managedSavePath, savedStateBytes } from './inventory.js';

export interface SaveResult {
  ms: number;
  bytes: number | undefined;
}

/**
 * `stop --save`: the VM's memory to libvirt's managed-save image, then it is
 * off; `start` resumes it. A VM with a device libvirt cannot save is refused
 * (exit 2) and keeps running.
 */
export async function saveVm(hypervisor: Hypervisor, name: string): Promise<SaveResult | 'already-stopped'> {
  await requireNotTemplate(hypervisor, name);
  const { state } = await hypervisor.info(name);
  if (!isActive(state)) return 'already-stopped';
  const live = describeDomain(await hypervisor.xml(name));
  if (live.unsaveableDevices.length > 0) {
    throw new InputError(
      `cannot save VM '${name}' (it keeps running): its ${live.unsaveableDevices.join(', ')} cannot be saved with its memory; stop it with stop --no-save`,
    );
  }
  const started = performance.now();
  try {
    await hypervisor.managedSave(name);
  } catch (err) {
    // QEMU's migration blockers (devices it cannot serialise) fail the save before the VM stops.
    if (
      err instanceof HypervisorError &&
      /cannot migrate|migration is disabled|not supported/i.test(err.message)
    ) {
      throw new InputError(
        `cannot save VM '${name}' (it keeps running): ${err.message}; stop it with stop --no-save`,
        {
          cause: err,
        },
      );
    }
    throw err;
  }
  return { ms: performance.now() - started, bytes: await savedStateBytes(hypervisor.uri, name) };
}

// ---- pause and resume --------------------------------------------------------

export async function pauseVm(hypervisor: Hypervisor, name: string): Promise<'paused' | 'already-paused'> {
  await requireNotTemplate(hypervisor, name);
  const { state } = await hypervisor.info(name);
  if (state === 'paused') return 'already-paused';
  if (state !== 'running' && state !== 'idle') {
    throw new InputError(`VM '${name}' is ${state}: only a running VM can be paused`);
  }
  await hypervisor.suspend(name);
  return 'paused';
}

export async function resumeVm(hypervisor: Hypervisor, name: string): Promise<'resumed' | 'already-running'> {
  const vm = await requireNotTemplate(hypervisor, name);
  const { state } = await hypervisor.info(name);
  if (state === 'running' || state === 'idle') return 'already-running';
  if (state !== 'paused') {
    throw new InputError(
      `VM '${name}' is ${state}: only a paused VM can be resumed (a saved one resumes with start)`,
    );
  }
  await hypervisor.resume(name);
  await wakeAgent(vm);
  return 'resumed';
}

// ---- snapshots -------------------------------------------------------------

export interface SnapshotInfo {
  name: string;
  /** ISO-8601. */
  createdAt: string;
  /** The VM's state when it was taken, as libvirt names it (`shutoff`, `running`, `paused`). */
  state: string;
  /** Whether it holds the VM's memory (a revert resumes the VM as it ran). */
  memory: boolean;
  /** The disks it covers; read-only disks (the config disk) are never in it. */
  disks: string[];
  description?: string;
}

type XNode = { [key: string]: unknown };
const arr = (v: unknown): XNode[] => (v === undefined ? [] : ((Array.isArray(v) ? v : [v]) as XNode[]));
const txt = (v: unknown): string =>
  typeof v === 'string' ? v : v && typeof v === 'object' && '#' in v ? String((v as XNode)['#']) : '';

/** `virsh snapshot-dumpxml` to SnapshotInfo. Pure. */
export function parseSnapshotXml(xml: string): SnapshotInfo {
  const root = ((parseXmlObject(xml) as XNode).domainsnapshot ?? {}) as XNode;
  const created = Number(txt(root.creationTime));
  const disks = arr(arr(root.disks)[0]?.disk)
    .filter((d) => d['@snapshot'] !== 'no')
    .map((d) => String(d['@name']));
  const description = txt(root.description);
  return {
    name: txt(root.name),
    createdAt: new Date(created * 1000).toISOString(),
    state: txt(root.state),
    memory:
      arr(root.memory)[0]?.['@snapshot'] === 'internal' || arr(root.memory)[0]?.['@snapshot'] === 'external',
    disks,
    ...(description ? { description } : {}),
  };
}

export async function listSnapshots(hypervisor: Hypervisor, name: string): Promise<SnapshotInfo[]> {
  await requireOurVm(hypervisor, name);
  const infos: SnapshotInfo[] = [];
  for (const snapshot of await hypervisor.snapshotList(name)) {
    infos.push(parseSnapshotXml(await hypervisor.snapshotXml(name, snapshot)));
  }
  return infos.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.name.localeCompare(b.name));
}

async function requireSnapshot(hypervisor: Hypervisor, name: string, snapshot: string): Promise<void> {
  if (!(await hypervisor.snapshotList(name)).includes(snapshot)) {
    throw new NotFoundError(
      `VM '${name}' has no snapshot named '${snapshot}'; see vm-provisioner snapshot list ${name}`,
    );
  }
}

/**
 * The proxy's resume tickets of snapshots with memory (docs/protocol.md, "Resume: tickets"): a snapshot
 * holds the agent as it was, with the ticket it had then, which a later session used up. Pinned at
 * create, re-armed before a revert, unpinned at delete. Best effort: the proxy may not run, and an agent
 * without a good ticket is challenged as before.
 */
export interface SnapshotTickets {
  pin(vm: string, snapshot: string): Promise<void>;
  rearm(vm: string, snapshot: string): Promise<void>;
  unpin(vm: string, snapshot: string): Promise<void>;
}

export async function createSnapshot(
  hypervisor: Hypervisor,
  name: string,
  snapshot: string,
  options: { memory?: boolean; tickets?: SnapshotTickets } = {},
): Promise<SnapshotInfo> {
  validateSnapshotName(snapshot);
  await requireNotTemplate(hypervisor, name);
  const { state } = await hypervisor.info(name);
  if (isActive(state) && !options.memory) {
    throw new InputError(
      `VM '${name}' is ${state}: a snapshot of a running VM holds its memory too; pass --memory, or stop it for a disk-only snapshot`,
    );
  }
  if (!isActive(state) && options.memory) {
    throw new InputError(`VM '${name}' is shut off: it has no memory to snapshot; leave out --memory`);
  }
  if (await hypervisor.hasManagedSave(name)) {
    throw new InputError(
      `VM '${name}' has saved state: start it first (a snapshot would not hold the saved memory)`,
    );
  }
  if ((await hypervisor.snapshotList(name)).includes(snapshot)) {
    throw new AlreadyExistsError(`VM '${name}' already has a snapshot named '${snapshot}'`);
  }
  // libvirt leaves read-only disks (the config disk) out by itself, and a template's disk is only an
  // overlay's backing file: internal snapshots are written into the overlay and the private volume.
  await hypervisor.snapshotCreate(name, snapshot);
  if (options.memory) await options.tickets?.pin(name, snapshot).catch(() => undefined);
  return parseSnapshotXml(await hypervisor.snapshotXml(name, snapshot));
}

export interface RevertResult {
  state: DomainState;
  /** The agent was told at once that its VM resumed. */
  woke: boolean;
}

/**
 * Back to a snapshot. Whatever the VM is now (running, paused, saved) is
 * thrown away, so that takes `force`. A snapshot with memory leaves the VM
 * running as it was; a disk-only one leaves it shut off.
 */
export async function revertSnapshot(
  hypervisor: Hypervisor,
  name: string,
  snapshot: string,
  options: { force?: boolean; tickets?: SnapshotTickets } = {},
): Promise<RevertResult> {
  validateSnapshotName(snapshot);
  const vm = await requireNotTemplate(hypervisor, name);
  await requireSnapshot(hypervisor, name, snapshot);
  const { state } = await hypervisor.info(name);
  const saved = !isActive(state) && (await hypervisor.hasManagedSave(name));
  if ((isActive(state) || saved) && !options.force) {
    throw new InputError(
      `VM '${name}' is ${saved ? 'saved' : state}: reverting to '${snapshot}' throws its current state away; pass --force`,
    );
  }
  if (saved) await hypervisor.managedSaveRemove(name);
  await ensureWakePipe(vm);
  // Before the guest runs again: its agent comes back with the ticket it held at the snapshot.
  await options.tickets?.rearm(name, snapshot).catch(() => undefined);
  // The guest runs again when libvirt resumes it, some 100 ms before the revert call returns (libvirt
  // still records the snapshot's state then): its lifecycle event says so first, and the wake goes at
  // once. The byte cannot go ahead as for a restore: the running guest would read it before the revert
  // replaced it. One wake only: a second, while the first's handshake runs, would start it over.
  const events = hypervisor.events(name);
  let wokeEarly: Promise<boolean> | undefined;
  const watching = (async () => {
    for await (const e of events) {
      if (e.domain === name && (e.event === 'Resumed' || e.event === 'Started')) {
        wokeEarly = wakeAgent(vm);
        return;
      }
    }
  })().catch(() => undefined);
  try {
    await hypervisor.snapshotRevert(name, snapshot, { force: Boolean(options.force) });
  } finally {
    events.close();
    await watching;
  }
  const after = (await hypervisor.info(name)).state;
  const woke = isActive(after) ? (wokeEarly ? await wokeEarly : false) || (await wakeAgent(vm)) : false;
  return { state: after, woke };
}

export async function deleteSnapshot(
  hypervisor: Hypervisor,
  name: string,
  snapshot: string,
  options: { tickets?: SnapshotTickets } = {},
): Promise<void> {
  validateSnapshotName(snapshot);
  await requireNotTemplate(hypervisor, name);
  await requireSnapshot(hypervisor, name, snapshot);
  await hypervisor.snapshotDelete(name, snapshot);
  await options.tickets?.unpin(name, snapshot).catch(() => undefined);
}

/** Templates change only through `template update`; their app VMs carry the state. */
async function requireNotTemplate(hypervisor: Hypervisor, name: string): Promise<DomainDescription> {
  const vm = await requireOurVm(hypervisor, name);
  if (vm.role === 'template') {
    throw new InputError(
      `'${name}' is a template: it has no saved state or snapshots of its own; use its app VMs`,
    );
  }
  return vm;
}
