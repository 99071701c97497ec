import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ConfigStore } from '../service/ports.js';
import { AlreadyExistsError, InputError, NotFoundError, VmpError } from '../util/errors.js';
import { FileTooLargeError, NotRegularFileError, readRegularFileBounded } from '../util/bounded-read.js';
import { configDir } from '../util/paths.js';
import { DEFAULTS_FILE_NAME } from './defaults-file.js';
import { describeSource, specFromToml, specToToml } from './toml.js';
import type { VmSpec } from './types.js';
import { validateVmName, VM_NAME_RULE } from './validate.js';

/**
 * Per-VM TOML files in $XDG_CONFIG_HOME/vm-provisioner/<name>.toml.
 *
 * Writes are atomic: a private temp file in the same directory, fsync, then
 * rename over the target, so a reader sees the old file or the new one and a
 * crash leaves at most a stray `.tmp`. Creating a VM is serialised per name by
 * an exclusive lock file `<name>.lock` (O_CREAT|O_EXCL): of two concurrent
 * creates of one name exactly one gets the lock, and it re-checks that the
 * config does not exist before writing.
 */

/** The predecessor kept plaintext passwords here; it is not a VM and `list` skips it. */
export const PREDECESSOR_PASSWORD_FILE = 'vm-passwords.toml';

/** Same bound as a --config file (build.ts): the store never reads an unbounded file either. */
const MAX_STORED_FILE_BYTES = 256 * 1024;

export interface ConfigLock {
  readonly name: string;
  /** Removes the lock file; safe to call twice. */
  release(): Promise<void>;
}

function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return isErrno(err, 'EPERM');
  }
}

export class FileConfigStore implements ConfigStore {
  /** Names this instance holds the lock for, so its own exclusive write does not trip over it. */
  private readonly held = new Set<string>();

  constructor(readonly dir: string = configDir()) {}

  pathOf(name: string): string {
    return path.join(this.dir, `${validateVmName(name)}.toml`);
  }

  lockPathOf(name: string): string {
    return path.join(this.dir, `${validateVmName(name)}.lock`);
  }

  async exists(name: string): Promise<boolean> {
    try {
      await fs.access(this.pathOf(name));
      return true;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false;
      throw err;
    }
  }

  async read(name: string): Promise<VmSpec> {
    const file = this.pathOf(name);
    let text: string;
    try {
      text = (await readRegularFileBounded(file, MAX_STORED_FILE_BYTES)).toString('utf8');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new NotFoundError(`no VM named "${name}" (no ${file})`);
      if (err instanceof NotRegularFileError) {
        throw new InputError(`${describeSource(file)} is not a regular file: a VM config must be one`);
      }
      if (err instanceof FileTooLargeError) {
        throw new InputError(
          `${describeSource(file)} is larger than ${MAX_STORED_FILE_BYTES} bytes: a VM config may hold at most ${MAX_STORED_FILE_BYTES} bytes`,
        );
      }
      throw new VmpError(`cannot read ${describeSource(file)}: ${(err as Error).message}`, { cause: err });
    }
    const spec = specFromToml(text, file);
    if (spec.name !== name) {
      throw new InputError(`${describeSource(file)}: name is "${spec.name}" but the file is for "${name}"`);
    }
    return spec;
  }

  /**
   * Takes the per-name create lock. Fails with AlreadyExistsError if another
   * live process holds it. A lock left by a process that no longer exists is
   * broken (its PID is in the file).
   */
  async acquireLock(name: string): Promise<ConfigLock> {
    const lockFile = this.lockPathOf(name);
    await this.ensureDir();
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const handle = await fs.open(lockFile, 'wx', 0o600);
        try {
          await handle.writeFile(`${process.pid}\n`);
        } finally {
          await handle.close();
        }
        this.held.add(name);
        let released = false;
        return {
          name,
          release: async () => {
            if (released) return;
            released = true;
            this.held.delete(name);
            await fs.rm(lockFile, { force: true });
          },
        };
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) throw err;
        const holder = await this.lockHolder(lockFile);
        if (attempt === 0 && holder !== undefined && !processAlive(holder)) {
          // Stale: its creator died without cleaning up.
          await fs.rm(lockFile, { force: true });
          continue;
        }
        throw new AlreadyExistsError(
          `VM "${name}" is being created by another process${holder ? ` (pid ${holder})` : ''}; ` +
            `if none is running, remove ${lockFile}`,
        );
      }
    }
    throw new AlreadyExistsError(`VM "${name}" is being created by another process`);
  }

  private async lockHolder(lockFile: string): Promise<number | undefined> {
    try {
      const text = await fs.readFile(lockFile, 'utf8');
      const pid = Number(text.trim());
      return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  async write(spec: VmSpec, options: { exclusive?: boolean } = {}): Promise<void> {
    // Validates every field before anything touches the disk.
    const text = specToToml(spec);
    const file = this.pathOf(spec.name);
    await this.ensureDir();
    if (!options.exclusive) {
      await this.atomicWrite(file, text);
      return;
    }
    const ownLock = this.held.has(spec.name) ? undefined : await this.acquireLock(spec.name);
    try {
      if (await this.exists(spec.name)) {
        throw new AlreadyExistsError(`a VM named "${spec.name}" already exists (${file})`);
      }
      await this.atomicWrite(file, text);
    } finally {
      await ownLock?.release();
    }
  }

  async remove(name: string): Promise<void> {
    await fs.rm(this.pathOf(name), { force: true });
  }

  async list(): Promise<Array<{ name: string; spec?: VmSpec; error?: string }>> {
    let entries: string[];
    try {
      entries = await fs.readdir(this.dir);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw err;
    }
    const files = entries
      .filter(
        (f) =>
          f.endsWith('.toml') &&
          !f.startsWith('.') &&
          f !== PREDECESSOR_PASSWORD_FILE &&
          f !== DEFAULTS_FILE_NAME,
      )
      .sort();
    const result: Array<{ name: string; spec?: VmSpec; error?: string }> = [];
    for (const file of files) {
      const name = file.slice(0, -'.toml'.length);
      try {
        validateVmName(name);
      } catch {
        result.push({
          name,
          error: `${describeSource(path.join(this.dir, file))}: not a VM name (${VM_NAME_RULE})`,
        });
        continue;
      }
      try {
        result.push({ name, spec: await this.read(name) });
      } catch (err) {
        if (!(err instanceof VmpError)) throw err;
        result.push({ name, error: err.message });
      }
    }
    return result;
  }

  private async ensureDir(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  private async atomicWrite(file: string, text: string): Promise<void> {
    const tmp = path.join(
      path.dirname(file),
      `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`,
    );
    const handle = await fs.open(tmp, 'wx', 0o600);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } catch (err) {
      await handle.close();
      await fs.rm(tmp, { force: true });
      throw err;
    }
    await handle.close();
    try {
      await fs.rename(tmp, file);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
  }
}
