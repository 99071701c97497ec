import { execa } from 'execa';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AlreadyExistsError, InputError, TimeoutError, VmpError } from '../util/errors.js';
import { CONFIG_DISK_LABEL, type ConfigDiskFile } from './layout.js';

/**
 * Writes a config disk's files into a raw ext4 image with `mkfs.ext4 -d`:
 * no loop mount, no root. The files pass through a private staging directory
 * that is removed whatever happens (it holds the agent secret and the
 * password hash); the image itself is created exclusively, mode 0600.
 */

export const CONFIG_DISK_SIZE_MIB = 4;
/** The disk's files are a few KiB; far more than that means something is wrong upstream. */
const MAX_CONTENT_BYTES = 1024 * 1024;
const MKFS_TIMEOUT_MS = 60_000;
/** Non-root users' PATH often lacks the sbin directories mkfs.ext4 lives in. */
const MKFS_DIRS = ['/usr/sbin', '/sbin'];

const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,254}$/;
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

export interface BuildConfigDiskOptions {
  sizeMiB?: number;
  /** Where the private staging directory is made. Default os.tmpdir(). */
  stagingParent?: string;
}

function checkFiles(files: ConfigDiskFile[]): void {
  let total = 0;
  const seen = new Set<string>();
  for (const file of files) {
    const segments = file.path.split('/');
    if (!segments.every((s) => SEGMENT.test(s) && s !== '..') || seen.has(file.path)) {
      throw new InputError(
        `config disk file name '${file.path}' is invalid: must be unique relative segments of letters, digits and . _ - (no '..')`,
      );
    }
    if (file.mode !== 0o644 && file.mode !== 0o600) {
      throw new InputError(
        `config disk file '${file.path}' mode ${file.mode.toString(8)} is invalid: 644 or 600`,
      );
    }
    seen.add(file.path);
    total += Buffer.byteLength(file.content);
  }
  if (total > MAX_CONTENT_BYTES) {
    throw new InputError(`config disk content of ${total} bytes is invalid: at most ${MAX_CONTENT_BYTES}`);
  }
}

/** mkfs.ext4 from PATH, else from the sbin directories. */
export async function findMkfsExt4(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const dirs = [...(env.PATH ?? '').split(':').filter((d) => path.isAbsolute(d)), ...MKFS_DIRS];
  for (const dir of dirs) {
    const candidate = path.join(dir, 'mkfs.ext4');
    try {
      await fs.access(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  throw new VmpError('mkfs.ext4 is not installed (package e2fsprogs): it builds the VM config disk');
}

/** Builds the raw ext4 image `target` (absolute, must not exist) holding `files`. */
export async function buildConfigDisk(
  files: ConfigDiskFile[],
  target: string,
  options: BuildConfigDiskOptions = {},
): Promise<void> {
  if (!path.isAbsolute(target) || CONTROL_CHARS.test(target)) {
    throw new InputError(
      `config disk path '${target}' is invalid: must be absolute with no control characters`,
    );
  }
  checkFiles(files);
  const sizeMiB = options.sizeMiB ?? CONFIG_DISK_SIZE_MIB;
  const mkfs = await findMkfsExt4();

  // Reserving the name first means an image that appeared meanwhile is never overwritten.
  try {
    await (await fs.open(target, 'wx', 0o600)).close();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new AlreadyExistsError(`config disk ${target} already exists; it is never overwritten`);
    }
    throw err;
  }
  let staging: string | undefined;
  try {
    staging = await fs.mkdtemp(path.join(options.stagingParent ?? os.tmpdir(), 'vmp-configdisk-'));
    await fs.chmod(staging, 0o700);
    for (const file of files) {
      const full = path.join(staging, ...file.path.split('/'));
      await fs.mkdir(path.dirname(full), { recursive: true, mode: 0o755 });
      await fs.writeFile(full, file.content, { mode: file.mode, flag: 'wx' });
      // The umask may have taken bits away; mkfs.ext4 -d copies modes as they are.
      await fs.chmod(full, file.mode);
    }
    await runMkfs(mkfs, [
      '-q',
      '-t',
      'ext4',
      '-O',
      '^has_journal',
      '-L',
      CONFIG_DISK_LABEL,
      '-E',
      'root_owner=0:0',
      '-d',
      staging,
      target,
      `${sizeMiB}M`,
    ]);
    await fs.chmod(target, 0o600);
  } catch (err) {
    await fs.rm(target, { force: true });
    throw err;
  } finally {
    if (staging !== undefined) await fs.rm(staging, { recursive: true, force: true });
  }
}

async function runMkfs(mkfs: string, args: string[]): Promise<void> {
  try {
    // stdin ignored: mke2fs asks before reusing a device, and must never wait for an answer.
    await execa(mkfs, args, { timeout: MKFS_TIMEOUT_MS, stdin: 'ignore', env: { LC_ALL: 'C' } });
  } catch (err) {
    const e = err as { timedOut?: boolean; stderr?: string };
    if (e.timedOut) throw new TimeoutError(`mkfs.ext4 did not finish within ${MKFS_TIMEOUT_MS / 1000} s`);
    const message = (e.stderr ?? String(err)).trim().split('\n').pop() ?? '';
    throw new VmpError(`building the config disk failed: mkfs.ext4: ${message}`, { cause: err });
  }
}
