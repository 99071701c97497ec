import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { LIBVIRT_TEST_URI } from './services.js';

/** Test domains are named vmp-t-virt-<random> so parallel runs and leftovers never collide. */
export function testVmName(tag: string): string {
  return `vmp-t-virt-${tag}-${randomBytes(3).toString('hex')}`;
}

export function virsh(...args: string[]): string {
  return execFileSync('virsh', ['-c', LIBVIRT_TEST_URI, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Best-effort removal of a test domain (stop, undefine with everything libvirt keeps for it). */
export function removeDomain(name: string): void {
  try {
    virsh('destroy', name);
  } catch {
    // not running
  }
  try {
    virsh('undefine', name, '--nvram', '--managed-save', '--snapshots-metadata');
  } catch {
    // not defined
  }
}

export function allDomainNames(): string[] {
  return virsh('list', '--all', '--name')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

export function qemuImgCreate(file: string, size = '64M'): void {
  execFileSync('qemu-img', ['create', '-f', 'qcow2', file, size], { stdio: 'ignore', timeout: 30_000 });
}

/** The QEMU command line of a running domain, from ps. */
export function qemuArgsOf(name: string): string {
  const out = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
  return out.split('\n').find((line) => line.includes(`guest=${name},`)) ?? '';
}

/** Removes the storage pools the volume store made for directories under `root` (a test's temporary tree). */
export function removePoolsUnder(root: string): void {
  for (const pool of virsh('pool-list', '--all', '--name')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)) {
    let target: string | undefined;
    try {
      target = /<path>([^<]*)<\/path>/.exec(virsh('pool-dumpxml', pool))?.[1];
    } catch {
      continue; // gone meanwhile
    }
    if (target === undefined || !(target === root || target.startsWith(`${root}/`))) continue;
    try {
      virsh('pool-destroy', pool);
    } catch {
      // not active
    }
    try {
      virsh('pool-undefine', pool);
    } catch {
      // undefined meanwhile
    }
  }
}
