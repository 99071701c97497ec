import { createHash } from 'node:crypto';
import path from 'node:path';
import { VirshHypervisor, DEFAULT_TIMEOUTS, type Timeouts } from '../libvirt/virsh.js';
import { parseXmlObject } from '../libvirt/xml-object.js';
import { AlreadyExistsError, HypervisorError, InputError, NotFoundError } from '../util/errors.js';

/**
 * Disk volumes through libvirt's storage API (`virsh pool-*` / `vol-*`), not
 * through local files: the same calls work against a remote libvirt host
 * (`--connect qemu+ssh://...`), where the disks live on that host. A VM
 * directory becomes a libvirt `dir` pool: one already defined for it, or a
 * transient one we create (gone at libvirtd's next restart, so nothing to
 * clean up). Volumes are addressed by their absolute path, libvirt's key for
 * file volumes.
 */

/** What libvirt reports of one file volume. */
export interface VolumeInfo {
  path: string;
  format: string;
  capacityBytes: number;
  /** Bytes the file really takes on the host (sparse and copy-on-write files take little). */
  allocationBytes: number;
  /** The file's length (for qcow2, what its header and clusters span). */
  physicalBytes: number;
  /** Permission bits, e.g. 0o444. */
  mode: number;
  /** Modification time in nanoseconds since the epoch, as a decimal string (exact, unlike a double). */
  mtimeNs: string;
  backingPath?: string;
}

export interface VolumeStore {
  /** A copy-on-write qcow2 volume at `file` whose reads fall through to `backing` (qcow2), which is never written. */
  createOverlay(file: string, backing: string, capacityBytes: number): Promise<void>;
  /** An empty sparse qcow2 volume (the guest formats it on first use). */
  createBlank(file: string, capacityBytes: number): Promise<void>;
  /** Removes the volume; false if there was none. */
  remove(file: string): Promise<boolean>;
  /** Undefined if no such volume. */
  info(file: string): Promise<VolumeInfo | undefined>;
}

/** Names and parses; pure, tested on strings. */
export function poolNameFor(dir: string): string {
  return `vmp-${createHash('sha256').update(path.resolve(dir)).digest('hex').slice(0, 12)}`;
}

type Node = { [key: string]: unknown };
const text = (value: unknown): string =>
  typeof value === 'string'
    ? value
    : value && typeof value === 'object' && '#' in value
      ? String((value as Node)['#'])
      : '';

export function parseVolumeXml(xml: string): VolumeInfo {
  // The small reader, not a DOM library: `start` constructs this store, and loading one is start-up time.
  const volume = ((parseXmlObject(xml) as Node).volume ?? {}) as Node;
  const target = (volume.target ?? {}) as Node;
  const permissions = (target.permissions ?? {}) as Node;
  const timestamps = (target.timestamps ?? {}) as Node;
  const format = (target.format ?? {}) as Node;
  const info: VolumeInfo = {
    path: text(target.path),
    format: typeof format['@type'] === 'string' ? format['@type'] : '',
    capacityBytes: Number(text(volume.capacity)),
    allocationBytes: Number(text(volume.allocation)),
    physicalBytes: Number(text(volume.physical)),
    mode: Number.parseInt(text(permissions.mode) || '0', 8),
    mtimeNs: timestampNs(text(timestamps.mtime)),
  };
  const backing = volume.backingStore as Node | undefined;
  if (backing && text(backing.path)) info.backingPath = text(backing.path);
  return info;
}

/** `1796416023.764538841` to `1796416023764538841`: nanoseconds, exactly. */
function timestampNs(value: string): string {
  const [seconds = '0', fraction = ''] = value.split('.');
  return (BigInt(seconds || '0') * 1_000_000_000n + BigInt((fraction + '000000000').slice(0, 9))).toString();
}

const VOLUME_NOT_FOUND = /Storage volume not found|no storage vol with matching/i;
const POOL_CONFLICT = /Storage source conflict with pool:?\s*'([^']+)'/i;

export class LibvirtVolumeStore implements VolumeStore {
  private readonly virsh: VirshHypervisor;
  private readonly pools = new Map<string, string>();

  constructor(uri: string, timeouts: Timeouts = DEFAULT_TIMEOUTS) {
    this.virsh = new VirshHypervisor(uri, timeouts);
  }

  /** The pool that serves `dir`: ours, or the one already defined over it. */
  async poolFor(dir: string): Promise<string> {
    const resolved = path.resolve(dir);
    const known = this.pools.get(resolved);
    if (known) return known;
    const name = poolNameFor(resolved);
    let pool = name;
    try {
      await this.run(`look up storage pool for ${resolved}`, ['pool-info', '--pool', name]);
    } catch (err) {
      if (!(err instanceof NotFoundError || /no storage pool|Storage pool not found/i.test(String(err)))) {
        throw err;
      }
      try {
        await this.run(`make storage pool for ${resolved}`, [
          'pool-create-as',
          '--name',
          name,
          '--type',
          'dir',
          '--target',
          resolved,
        ]);
      } catch (createErr) {
        const conflict = POOL_CONFLICT.exec(String((createErr as Error).message));
        // Someone (virt-manager's `default`, an admin) already serves this directory.
        if (!conflict) throw createErr;
        pool = conflict[1]!;
        await this.run(`start storage pool ${pool}`, ['pool-start', '--pool', pool]).catch((e: unknown) => {
          if (!/already active/i.test(String(e))) throw e;
        });
      }
    }
    this.pools.set(resolved, pool);
    return pool;
  }

  async createOverlay(file: string, backing: string, capacityBytes: number): Promise<void> {
    await this.create(file, capacityBytes, ['--backing-vol', backing, '--backing-vol-format', 'qcow2']);
  }

  async createBlank(file: string, capacityBytes: number): Promise<void> {
    await this.create(file, capacityBytes, []);
  }

  private async create(file: string, capacityBytes: number, extra: string[]): Promise<void> {
    checkPath(file);
    const pool = await this.poolFor(path.dirname(file));
    try {
      await this.run(`create volume ${file}`, [
        'vol-create-as',
        '--pool',
        pool,
        '--name',
        path.basename(file),
        '--capacity',
        `${capacityBytes}b`,
        '--format',
        'qcow2',
        ...extra,
      ]);
    } catch (err) {
      // libvirt creates the file exclusively, so a file it did not know of is never overwritten either.
      if (
        err instanceof AlreadyExistsError ||
        /File exists|exists already|already exists/i.test(String((err as Error).message))
      ) {
        throw new AlreadyExistsError(`disk image '${file}' already exists; it is never overwritten`, {
          cause: err,
        });
      }
      throw err;
    }
  }

  async remove(file: string): Promise<boolean> {
    checkPath(file);
    const pool = await this.poolFor(path.dirname(file));
    try {
      await this.run(`remove volume ${file}`, ['vol-delete', '--pool', pool, '--vol', path.basename(file)]);
      return true;
    } catch (err) {
      if (!VOLUME_NOT_FOUND.test(String((err as Error).message))) throw err;
      // Made outside libvirt since the pool last looked: look again once.
      await this.refresh(pool);
      try {
        await this.run(`remove volume ${file}`, ['vol-delete', '--pool', pool, '--vol', path.basename(file)]);
        return true;
      } catch (again) {
        if (VOLUME_NOT_FOUND.test(String((again as Error).message))) return false;
        throw again;
      }
    }
  }

  async info(file: string): Promise<VolumeInfo | undefined> {
    checkPath(file);
    const pool = await this.poolFor(path.dirname(file));
    const read = (): Promise<string> =>
      this.run(`read volume ${file}`, ['vol-dumpxml', '--pool', pool, '--vol', path.basename(file)]);
    try {
      return parseVolumeXml(await read());
    } catch (err) {
      if (!VOLUME_NOT_FOUND.test(String((err as Error).message))) throw err;
    }
    await this.refresh(pool);
    try {
      return parseVolumeXml(await read());
    } catch (err) {
      if (VOLUME_NOT_FOUND.test(String((err as Error).message))) return undefined;
      throw err;
    }
  }

  private async refresh(pool: string): Promise<void> {
    await this.run(`refresh storage pool ${pool}`, ['pool-refresh', '--pool', pool]);
  }

  private async run(operation: string, args: string[]): Promise<string> {
    try {
      return await this.virsh.virsh(operation, args);
    } catch (err) {
      // libvirt's volume and pool messages are not among the domain ones the adapter classifies.
      if (err instanceof HypervisorError && /no storage pool|Storage pool not found/i.test(err.message)) {
        throw new NotFoundError(err.message, { cause: err });
      }
      throw err;
    }
  }
}

function checkPath(file: string): void {
  // eslint-disable-next-line no-control-regex
  if (!path.isAbsolute(file) || /[\u0000-\u001f\u007f]/.test(file)) {
    throw new InputError(`volume path '${file}' is invalid: must be absolute with no control characters`);
  }
}
