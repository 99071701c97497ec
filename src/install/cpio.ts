import { InputError } from '../util/errors.js';

/**
 * A writer for the "newc" (SVR4, no CRC) cpio format: the only format the
 * Linux kernel unpacks into its initramfs. Written here rather than shelling
 * out to cpio(1) so an install needs no extra host tool.
 */

export interface CpioFile {
  /** Path inside the archive, relative (the kernel unpacks it under /). */
  name: string;
  data: Uint8Array | string;
  /** Permission bits; the entry is always a regular file. Default 0o600. */
  mode?: number;
  /** Seconds since the epoch. Default 0, so archives are reproducible. */
  mtime?: number;
  uid?: number;
  gid?: number;
}

const S_IFREG = 0o100000;
const TRAILER = 'TRAILER!!!';
/** GNU cpio pads the archive to its 512-byte block; doing the same keeps our output familiar to tools. */
const BLOCK = 512;
const NAME_RE = /^[A-Za-z0-9._+-]+(\/[A-Za-z0-9._+-]+)*$/;

function hex8(value: number): string {
  return value.toString(16).padStart(8, '0').toUpperCase();
}

function pad4(length: number): number {
  return (4 - (length % 4)) % 4;
}

function header(fields: {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  size: number;
  nameSize: number;
}): string {
  // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check
  return (
    '070701' +
    [
      fields.ino,
      fields.mode,
      fields.uid,
      fields.gid,
      fields.nlink,
      fields.mtime,
      fields.size,
      0,
      0,
      0,
      0,
      fields.nameSize,
      0,
    ]
      .map(hex8)
      .join('')
  );
}

function checkField(file: string, what: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new InputError(
      `cpio entry ${JSON.stringify(file)}: ${what} ${value} is not an integer in 0..${max}`,
    );
  }
}

function entry(
  parts: Buffer[],
  ino: number,
  name: string,
  mode: number,
  rest: Omit<CpioFile, 'name' | 'data' | 'mode'>,
  data: Buffer,
): void {
  const nameBytes = Buffer.from(name + '\0', 'latin1');
  const head = Buffer.from(
    header({
      ino,
      mode,
      uid: rest.uid ?? 0,
      gid: rest.gid ?? 0,
      nlink: 1,
      mtime: rest.mtime ?? 0,
      size: data.length,
      nameSize: nameBytes.length,
    }),
    'latin1',
  );
  parts.push(head, nameBytes, Buffer.alloc(pad4(head.length + nameBytes.length)));
  parts.push(data, Buffer.alloc(pad4(data.length)));
}

/** Builds a newc archive of regular files, ending with the TRAILER!!! entry. */
export function newcArchive(files: readonly CpioFile[]): Buffer {
  const parts: Buffer[] = [];
  const seen = new Set<string>();
  files.forEach((file, index) => {
    if (!NAME_RE.test(file.name) || file.name.split('/').some((part) => part === '.' || part === '..')) {
      throw new InputError(
        `cpio entry name ${JSON.stringify(file.name)} must be a relative path of [A-Za-z0-9._+-] segments without . or ..`,
      );
    }
    if (file.name.length > 1024)
      throw new InputError(`cpio entry name ${JSON.stringify(file.name)} is longer than 1024 characters`);
    if (seen.has(file.name))
      throw new InputError(`cpio entry name ${JSON.stringify(file.name)} appears twice`);
    seen.add(file.name);
    const perm = file.mode ?? 0o600;
    checkField(file.name, 'mode', perm, 0o7777);
    checkField(file.name, 'mtime', file.mtime ?? 0, 0xffffffff);
    checkField(file.name, 'uid', file.uid ?? 0, 0xffffffff);
    checkField(file.name, 'gid', file.gid ?? 0, 0xffffffff);
    const data = typeof file.data === 'string' ? Buffer.from(file.data, 'utf8') : Buffer.from(file.data);
    checkField(file.name, 'size', data.length, 0xffffffff);
    entry(parts, index + 1, file.name, S_IFREG | perm, file, data);
  });
  entry(parts, 0, TRAILER, 0, {}, Buffer.alloc(0));
  const body = Buffer.concat(parts);
  const tail = (BLOCK - (body.length % BLOCK)) % BLOCK;
  return Buffer.concat([body, Buffer.alloc(tail)]);
}
