import path from 'node:path';
import { DEFAULT_FEDORA_RELEASE } from './releases.js';
import type { VmSpec } from './types.js';

/**
 * Defaults and limits of a VM spec. The defaults are the predecessor's (4 GiB,
 * 2 vCPUs, 20 GB); the minimums are what an unattended Fedora install plus an
 * i3 session and one Flatpak runtime need; docs/spec.md explains each number.
 */

export const DEFAULT_MEMORY_MB = 4096;
export const DEFAULT_VCPUS = 2;
export const DEFAULT_DISK_GB = 20;
/** Where the predecessor kept disk images: the system libvirt pool's directory. */
export const DEFAULT_VM_DIR = '/var/lib/libvirt/images';

/** Anaconda loads its ~800 MB stage-2 image into RAM on a network install; Fedora documents 2 GB. */
export const MIN_MEMORY_MB = 2048;
/**
 * Where no installer runs (`create --import`, `create --template`, templates
 * made by `template import`), the floor is what a small guest boots in; the
 * image decides what it really needs.
 */
export const NO_INSTALLER_MIN_MEMORY_MB = 256;
export const MIN_VCPUS = 1;
/** Fedora minimal + X11 + i3 is ~4 GB; one Flatpak runtime and app add 1–3 GB. */
export const MIN_DISK_GB = 10;

/**
 * Caps that hold even with --force: they stop a typo (an extra digit or three)
 * from reaching libvirt, not a deliberate large VM. Without --force the memory
 * and vCPU maximums are the host's own RAM and CPU count.
 */
export const HARD_MAX_MEMORY_MB = 4 * 1024 * 1024; // 4 TiB
/** x86 without an interrupt-remapping IOMMU addresses at most 255 vCPUs. */
export const HARD_MAX_VCPUS = 255;
/** Disks are sparse qcow2, so the host's free space is not a limit; 64 TiB is qcow2's own ceiling. */
export const MAX_DISK_GB = 64 * 1024;

/** The libvirt connection the tool manages VMs on unless --connect says otherwise. */
export const DEFAULT_CONNECT_URI = 'qemu:///system';

/** Disk-image directory for a connection: the system pool, or the user's own for qemu:///session. */
export function defaultVmDir(
  connectUri: string = DEFAULT_CONNECT_URI,
  home = process.env.HOME ?? '',
): string {
  if (/^qemu(\+[a-z]+)?:\/\/[^/]*\/session\b/.test(connectUri) && path.isAbsolute(home)) {
    return path.join(home, '.local', 'share', 'libvirt', 'images');
  }
  return DEFAULT_VM_DIR;
}

/** The command that starts a Flatpak app in the guest session. */
export function flatpakLaunchCommand(appId: string): string {
  return `flatpak run ${appId}`;
}

/** A complete spec with every default; `name` and the package lists are the caller's. */
export function defaultSpec(name: string, overrides: Partial<VmSpec> = {}): VmSpec {
  const spec: VmSpec = {
    name,
    memoryMb: DEFAULT_MEMORY_MB,
    vcpus: DEFAULT_VCPUS,
    diskSizeGb: DEFAULT_DISK_GB,
    vmDir: DEFAULT_VM_DIR,
    systemPackages: [],
    flatpakPackages: [],
    autoLaunchApps: [],
    graphicsBackend: 'virtio',
    enableClipboard: true,
    enableAudio: true,
    enableUsbPassthrough: false,
    enableAutoLogin: true,
    networkMode: 'default',
    firewallRules: [],
    fedoraRelease: DEFAULT_FEDORA_RELEASE,
    arch: 'x86_64',
    virtType: 'kvm',
    ...overrides,
  };
  return spec;
}

/** Path of the VM's main disk image. */
export function diskPathOf(spec: Pick<VmSpec, 'name' | 'vmDir'>): string {
  return path.join(spec.vmDir, `${spec.name}.qcow2`);
}

/** Paths of the files an imported VM owns besides its system disk (`create --import`). */
export function importedVmPaths(spec: Pick<VmSpec, 'name' | 'vmDir'>): {
  configDisk: string;
  kernel: string;
  initrd: string;
} {
  return {
    configDisk: path.join(spec.vmDir, `${spec.name}-config.img`),
    kernel: path.join(spec.vmDir, `${spec.name}-vmlinuz`),
    initrd: path.join(spec.vmDir, `${spec.name}-initrd.img`),
  };
}
