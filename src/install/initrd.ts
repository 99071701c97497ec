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

export interface InjectedInitrd {
  /** The initrd to boot: the original followed by the kickstart archive. */
  path: string;
  /** The private directory holding it; removeInjectedInitrd deletes it. */
  dir: string;
}

export interface InjectOptions {
  /**
   * Parent of the private directory. Default: os.tmpdir(). Under
   * qemu:///system the QEMU process runs as another user (libvirt-qemu),
   * so every directory above the file must be traversable by it.
   */
  parentDir?: string;
}

/** The gzip'd newc archive holding only ks.cfg (mode 0600, owner root). */
export function kickstartArchive(kickstart: string): Buffer {
  // mtime 0 and gzip without a name/time header keep the bytes reproducible.
  return gzipSync(newcArchive([{ name: 'ks.cfg', data: kickstart, mode: 0o600 }]), { level: 9 });
}

/**
 * Copies `baseInitrd` into a new private directory and appends the kickstart
 * archive. The kickstart holds a password hash, so the file is 0600 and the
 * directory 0711 (traversable so libvirt's relabelled QEMU can open the file
 * by its random path, but not listable). The caller boots the result and
 * calls removeInjectedInitrd when the install ends, whatever the outcome.
 */
export async function injectKickstart(
  baseInitrd: string,
  kickstart: string,
  options: InjectOptions = {},
): Promise<InjectedInitrd> {
  const archive = kickstartArchive(kickstart);
  const dir = await fs.mkdtemp(path.join(options.parentDir ?? os.tmpdir(), 'vmp-install-'));
  try {
    await fs.chmod(dir, 0o711);
    const target = path.join(dir, 'initrd.img');
    // 'wx': never follow or reuse something already there.
    const handle = await fs.open(target, 'wx', 0o600);
    try {
      for await (const chunk of createReadStream(baseInitrd)) await handle.write(chunk as Buffer);
      await handle.write(archive);
    } finally {
      await handle.close();
    }
    return { path: target, dir };
  } catch (err) {
    await fs.rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Deletes the injected initrd and its private directory; a no-op when already gone. */
export async function removeInjectedInitrd(injected: InjectedInitrd): Promise<void> {
  await fs.rm(injected.dir, { recursive: true, force: true });
}
