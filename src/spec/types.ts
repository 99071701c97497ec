/**
 * The one typed description of an app VM. Every generator (kickstart, domain
 * XML, units, i3 config) and every adapter works from this shape; the TOML
 * config store maps it to the predecessor's snake_case keys.
 */

export type Arch = 'x86_64' | 'aarch64';
export type VirtType = 'kvm' | 'qemu';
export type GraphicsBackend = 'virtio' | 'qxl';
/** `default`: libvirt's NAT network; `user`: QEMU user-mode networking; `none`: no NIC. */
export type NetworkMode = 'default' | 'user' | 'none';
/** What `stop NAME` does without --save/--no-save: keep the memory (libvirt managed save) or power off. */
export type OnStop = 'save' | 'shutdown';
/** Qubes' eight trust colours: the border of every host window of the VM, and its launchers' icons. */
export type Label = 'red' | 'orange' | 'yellow' | 'green' | 'blue' | 'purple' | 'gray' | 'black';
/** How `start` shows the VM: a SPICE viewer of the whole desktop, or each app window as a host window. */
export type DisplayMode = 'spice' | 'seamless';

export interface VmSpec {
  name: string;
  memoryMb: number;
  vcpus: number;
  diskSizeGb: number;
  /** Directory holding the VM's disk images. */
  vmDir: string;
  /** dnf package specs installed on top of the base set. */
  systemPackages: string[];
  /** Flatpak application IDs installed system-wide from Flathub. */
  flatpakPackages: string[];
  /** Commands started in the graphical session, one systemd user unit each. */
  autoLaunchApps: string[];
  graphicsBackend: GraphicsBackend;
  enableClipboard: boolean;
  enableAudio: boolean;
  enableUsbPassthrough: boolean;
  enableAutoLogin: boolean;
  networkMode: NetworkMode;
  firewallRules: string[];
  fedoraRelease: number;
  arch: Arch;
  virtType: VirtType;
  /** The template an app VM is built on (docs/templates.md); absent for an installed or imported VM. */
  template?: string;
  /** Absent means `shutdown`. */
  onStop?: OnStop;
  /** Absent means `gray`. */
  label?: Label;
  /** Absent means `spice`. */
  display?: DisplayMode;
}
