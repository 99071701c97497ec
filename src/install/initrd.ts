import fs from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { newcArchive } from './cpio.js';

/**
 * Kickstart injection, as virt-install's --initrd-inject does it: the
 * kickstart goes into a gzip'd newc cpio appended to a private copy of the
 * installer's initrd; the kernel unpacks every concatenated archive into the
 * same initramfs, so Anaconda finds /ks.cfg (booted with inst.ks=file:/ks.cfg).
 *
 * The appended archive is gzip'd on purpose: the kernel refuses an
 * uncompressed archive that directly follows a compressed one whose length
 * is not 4-byte aligned ("invalid magic at start of compressed archive"),
 * and Fedora's initrd is compressed. gzip is built into every Fedora kernel.
 */

/** Where the kernel finds the kickstart; pair with `inst.ks=file:/ks.cfg`. */
export const KICKSTART_PATH_IN_INITRD = '/ks.cfg';

export interface InstallBootFiles {
  /** The kernel to boot: a copy of the cached one. */
  kernelPath: string;
  /** The initrd to boot: the original followed by the kickstart archive. */
  initrdPath: string;
  /** The private directory holding both; removeInstallBoot deletes it. */
  dir: string;
}

export interface StageOptions {
  /**
   * Parent of the private directory. Default: os.tmpdir(). Under
   * qemu:///system QEMU runs as another user (libvirt-qemu), so every
   * directory above the files must be traversable by it; the media cache
   * under a 0700 home is not, which is why the kernel is copied here too.
   */
  parentDir?: string;
}

/** The gzip'd newc archive holding only ks.cfg (mode 0600, owner root). */
export function kickstartArchive(kickstart: string): Buffer {
  // mtime 0 and gzip without a name/time header keep the bytes reproducible.
  return gzipSync(newcArchive([{ name: 'ks.cfg', data: kickstart, mode: 0o600 }]), { level: 9 });
}

/**
 * Prepares the files an install boots from, in a new private directory: a
 * copy of the kernel, and a copy of the initrd with the kickstart archive
 * appended. The kickstart holds a password hash, so the files are 0600 and
 * the directory 0711: traversable, so libvirt's relabelled QEMU can open the
 * files by their paths, but not listable. The caller boots them and calls
 * removeInstallBoot when the install ends, whatever the outcome.
 */
export async function stageInstallBoot(
  media: { kernelPath: string; initrdPath: string },
  kickstart: string,
  options: StageOptions = {},
): Promise<InstallBootFiles> {
  const archive = kickstartArchive(kickstart);
  const dir = await fs.mkdtemp(path.join(options.parentDir ?? os.tmpdir(), 'vmp-install-'));
  try {
    await fs.chmod(dir, 0o711);
    const kernelPath = path.join(dir, 'vmlinuz');
    const initrdPath = path.join(dir, 'initrd.img');
    await copyInto(media.kernelPath, kernelPath);
    await copyInto(media.initrdPath, initrdPath, archive);
    return { kernelPath, initrdPath, dir };
  } catch (err) {
    await fs.rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Copies `from` to a new file `to` (0600, never an existing file), then appends `extra`. */
async function copyInto(from: string, to: string, extra?: Buffer): Promise<void> {
  // 'wx': never follow or reuse something already there.
  const handle = await fs.open(to, 'wx', 0o600);
  try {
    for await (const chunk of createReadStream(from)) await handle.write(chunk as Buffer);
    if (extra) await handle.write(extra);
  } finally {
    await handle.close();
  }
}

/** Deletes the staged boot files and their private directory; a no-op when already gone. */
export async function removeInstallBoot(files: { dir: string }): Promise<void> {
  await fs.rm(files.dir, { recursive: true, force: true });
}
