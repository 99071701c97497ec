import { randomBytes } from 'node:crypto';
import { constants, promises as fs, type BigIntStats } from 'node:fs';
import path from 'node:path';
import { fileNameProblem, MAX_FILE_BYTES } from '../protocol/index.js';

/**
 * The host side of `open` and `copy-to-vm`: reading the one file the user
 * named (a regular file, never through a symlink, at most MAX_FILE_BYTES),
 * and, for `open --writeback`, replacing exactly that file with a version the
 * guest sent back, atomically, and only if nobody changed it meanwhile.
 */

/** Why a host file cannot be sent; `rule` is the one-line reason shown to the user. */
export class HostFileError extends Error {
  constructor(
    readonly file: string,
    readonly rule: string,
  ) {
    super(`cannot send ${JSON.stringify(file)}: ${rule}`);
    this.name = 'HostFileError';
  }
}

/** What identifies one version of a host file: a writeback only replaces the version it started from. */
export interface FileIdentity {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

export interface HostFile {
  /** Absolute path, as given. */
  path: string;
  /** Its name in the guest: the last path segment, checked against the protocol's file name rule. */
  name: string;
  data: Buffer;
  identity: FileIdentity;
  mode: number;
}

function identityOf(st: BigIntStats): FileIdentity {
  return { dev: st.dev, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs };
}

function sameIdentity(a: FileIdentity, b: FileIdentity): boolean {
  return (
    a.dev === b.dev &&
    a.ino === b.ino &&
    a.size === b.size &&
    a.mtimeNs === b.mtimeNs &&
    a.ctimeNs === b.ctimeNs
  );
}

function typeName(st: BigIntStats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

/**
 * Why `file` (an absolute path) may not be sent, or null. Checks the path
 * itself with lstat, so a symlink is refused rather than followed.
 */
export function hostPathProblem(file: unknown): string | null {
  if (typeof file !== 'string' || file === '') return 'the path is empty';
  if (file.includes('\0')) return 'the path contains a NUL byte';
  if (!path.isAbsolute(file)) return 'the path is not absolute';
  if (Buffer.byteLength(file, 'utf8') > 4096) return 'the path is over 4096 bytes';
  const problem = fileNameProblem(path.basename(file));
  if (problem) return `its name cannot be used in the guest: ${problem}`;
  return null;
}

/**
 * Reads the file for sending. O_NOFOLLOW refuses a symlink in the last
 * segment, O_NONBLOCK keeps a FIFO from blocking the open, and the checks are
 * made on the opened descriptor, so what is checked is what is read.
 */
export async function readHostFile(file: string): Promise<HostFile> {
  const problem = hostPathProblem(file);
  if (problem) throw new HostFileError(file, problem);
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ELOOP')
      throw new HostFileError(file, 'it is a symbolic link (only regular files are sent)');
    if (e.code === 'ENOENT') throw new HostFileError(file, 'no such file');
    if (e.code === 'EACCES') throw new HostFileError(file, 'permission denied');
    if (e.code === 'ENXIO') throw new HostFileError(file, 'it is a socket (only regular files are sent)');
    throw new HostFileError(file, e.message);
  }
  try {
    const st = await handle.stat({ bigint: true });
    if (!st.isFile()) throw new HostFileError(file, `it is ${typeName(st)} (only regular files are sent)`);
    if (st.size > BigInt(MAX_FILE_BYTES)) {
      throw new HostFileError(file, `it is ${st.size} bytes; the limit is ${MAX_FILE_BYTES} (64 MiB)`);
    }
    const data = await handle.readFile();
    if (data.length !== Number(st.size)) throw new HostFileError(file, 'it changed while it was being read');
    return {
      path: file,
      name: path.basename(file),
      data,
      identity: identityOf(st),
      mode: Number(st.mode) & 0o7777,
    };
  } finally {
    await handle.close();
  }
}

/**
 * Replaces `file` with `data` if it is still the version `expected` names:
 * a temporary file in the same directory (created exclusively, with the old
 * file's permissions), written and synced, then renamed over it. Nothing but
 * that one path is ever written; the temporary file is removed on any failure.
 * Returns the identity of the new version, which the next writeback must find.
 */
export async function replaceHostFile(
  file: string,
  expected: FileIdentity,
  mode: number,
  data: Buffer,
): Promise<FileIdentity> {
  let now: BigIntStats;
  try {
    now = await fs.lstat(file, { bigint: true });
  } catch {
    throw new HostFileError(
      file,
      'it was removed on the host since it was opened; the edit stays in the guest',
    );
  }
  if (!now.isFile() || !sameIdentity(identityOf(now), expected)) {
    throw new HostFileError(
      file,
      'it changed on the host since it was opened (or since the last writeback); the edit stays in the guest',
    );
  }
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.vmp-${randomBytes(6).toString('hex')}`);
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(
      temp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      mode & 0o777,
    );
    await handle.writeFile(data);
    await handle.sync();
    const written = await handle.stat({ bigint: true });
    await handle.close();
    handle = undefined;
    await fs.rename(temp, file);
    // A rename changes the inode's ctime: read it back, the same inode, as the next writeback will.
    const after = await fs.lstat(file, { bigint: true });
    return identityOf(after.ino === written.ino ? after : written);
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await fs.rm(temp, { force: true });
    throw err;
  }
}
