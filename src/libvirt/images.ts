import { execa } from 'execa';
import fs from 'node:fs/promises';
import { constants } from 'node:fs';
import { AlreadyExistsError, InputError, NotFoundError, TimeoutError, VmpError } from '../util/errors.js';

/** Disk images through `qemu-img` (execa, with a deadline). */

export interface ImageInfo {
  format: string;
  virtualSizeBytes: number;
  backingFile?: string;
}

const QEMU_IMG_TIMEOUT_MS = 60_000;

async function qemuImg(operation: string, args: string[]): Promise<string> {
  try {
    const result = await execa('qemu-img', args, { timeout: QEMU_IMG_TIMEOUT_MS, env: { LC_ALL: 'C' } });
    return result.stdout;
  } catch (err) {
    const e = err as { timedOut?: boolean; stderr?: string; code?: string };
    if (e.timedOut)
      throw new TimeoutError(`${operation}: qemu-img did not finish within 60 s`, { cause: err });
    if (e.code === 'ENOENT')
      throw new VmpError(`${operation}: qemu-img is not installed (package qemu-utils)`);
    const message = (e.stderr ?? String(err)).trim().split('\n').pop() ?? '';
    throw new VmpError(`${operation}: ${message.replace(/^qemu-img:\s*/, '')}`, { cause: err });
  }
}

export async function inspectImage(file: string): Promise<ImageInfo> {
  try {
    await fs.access(file, constants.R_OK);
  } catch {
    throw new NotFoundError(`disk image '${file}' does not exist or is not readable`);
  }
  const info = JSON.parse(await qemuImg(`inspect '${file}'`, ['info', '--output=json', '--', file])) as {
    format: string;
    'virtual-size': number;
    'backing-filename'?: string;
  };
  const result: ImageInfo = { format: info.format, virtualSizeBytes: info['virtual-size'] };
  if (info['backing-filename']) result.backingFile = info['backing-filename'];
  return result;
}

/** Checks that `file` is a qcow2 image; InputError naming the file and its real format otherwise. */
export async function requireQcow2(file: string): Promise<ImageInfo> {
  const info = await inspectImage(file);
  if (info.format !== 'qcow2') {
    throw new InputError(
      `disk image '${file}' is ${info.format}, not qcow2: convert it with qemu-img convert -O qcow2`,
    );
  }
  return info;
}

/** Copies an image (reflink where the filesystem can); never overwrites. */
export async function copyImage(from: string, to: string): Promise<void> {
  try {
    await fs.copyFile(from, to, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST')
      throw new AlreadyExistsError(`disk image '${to}' already exists`);
    throw err;
  }
}

export async function createQcow2(file: string, sizeGb: number): Promise<void> {
  await qemuImg(`create '${file}'`, ['create', '-f', 'qcow2', '--', file, `${sizeGb}G`]);
}
