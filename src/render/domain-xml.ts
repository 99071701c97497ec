import path from 'node:path';
import { create } from 'xmlbuilder2';
import type { VmSpec } from '../spec/types.js';
import { InputError } from '../util/errors.js';
import { UNIX_SOCKET_PATH_MAX } from '../util/unix-socket.js';
import {
  AGENT_CHANNEL_NAME,
  DEFAULT_MODE_NETWORK,
  DISPLAY_CHANNEL_NAME,
  VMP_XML_NAMESPACE,
  VMP_XML_PREFIX,
  WAKE_CHANNEL_NAME,
} from './xml-names.js';

/**
 * Libvirt domain XML for an app VM. Modelled on virt-manager's virtinst: each
 * device is a small function from the spec to one XML element, and the domain
 * is their sum. xmlbuilder2 does all escaping; every value is also checked
 * against a grammar before it gets here (see `checkInputs`).
 */

export {
  AGENT_CHANNEL_NAME,
  DEFAULT_MODE_NETWORK,
  DISPLAY_CHANNEL_NAME,
  VMP_XML_NAMESPACE,
  VMP_XML_PREFIX,
  WAKE_CHANNEL_NAME,
} from './xml-names.js';

/** Direct kernel boot for the unattended install: the domain powers off instead of rebooting. */
export interface InstallBoot {
  kernel: string;
  initrd: string;
  /** Kernel command line (e.g. `inst.ks=... console=ttyS0`); printable ASCII only. */
  cmdline: string;
  /** File the serial console is logged to, so the install can be followed and diagnosed. */
  consoleLog: string;
}

/**
 * Direct kernel boot of an installed VM (`create --import --kernel`): the
 * kernel and initrd live in the VM's directory and belong to the VM. Unlike
 * the install phase, a reboot restarts the VM and the console is not logged.
 */
export interface DirectBoot {
  kernel: string;
  initrd: string;
  /** Kernel command line (e.g. `root=/dev/vda rw console=ttyS0`); printable ASCII only. */
  cmdline: string;
}

export interface DomainXmlOptions {
  /** The VM's system disk (qcow2), an absolute path. */
  diskPath: string;
  /** Optional per-VM config disk (raw image), attached read-only with serial `vmp-config`. */
  configDiskPath?: string;
  /** Present for the install phase only. */
  install?: InstallBoot;
  /**
   * An installed VM's serial console log (absolute path), kept by virtlogd and
   * appended to across boots; `logs NAME --console` reads it. The install
   * phase logs to `install.consoleLog` instead.
   */
  consoleLog?: string;
  /** An installed VM booted from a kernel and initrd instead of its disk's boot loader. */
  boot?: DirectBoot;
  /**
   * Files the VM owns besides its disks (e.g. the direct-boot kernel and
   * initrd), recorded as `<vmp:file>` so that `destroy` removes them too.
   */
  ownedFiles?: string[];
  /**
   * An app VM on a template: the system disk is a qcow2 overlay whose reads
   * fall through to the template's disk, given here as its read-only backing
   * store, and the VM's private volume (mounted at /home by the guest).
   */
  template?: TemplateUse;
  /** A template itself: marked so in the metadata, with the stamp of its disk as sealed. */
  seal?: TemplateSeal;
  /**
   * A disposable (docs/disposables.md): marked `role="disposable"`, with the
   * process that owns it, so that `gc` can tell a live one from one whose CLI was killed.
   */
  disposable?: DisposableOwner;
  /** Flatpaks the VM installs at its first boot (per user, on its private volume), until it reports them done. */
  pendingFlatpaks?: string[];
  /**
   * The host user who attaches the seamless client: libvirt makes the display
   * channel's socket theirs (a DAC seclabel on its source), so a user of
   * qemu:///system who is not root can narrow it to 0600 and connect to it.
   * Absent: QEMU's user owns it, as libvirt does by default.
   */
  displayOwner?: { uid: number; gid: number };
  /**
   * The proxy's Unix socket for the agent's virtio-serial link (src/proxy/agent-socket.ts), when libvirt
   * runs on this host. Absent: the agent reaches the proxy by TCP through the VM's network.
   */
  agentSocket?: string;
  /** vm-provisioner version recorded in the metadata. */
  version: string;
  /**
   * The domain's UUID. `create` gives the install-phase and the final
   * definition the same one: libvirt refuses to redefine a name under a new UUID.
   */
  uuid?: string;
}

/** What an app VM records of the template it is built on. */
export interface TemplateUse {
  name: string;
  /** The template's disk: the overlay's backing file, never written by this VM. */
  disk: string;
  /** The VM's private volume (qcow2), attached with serial `vmp-private`. */
  privateDisk: string;
}

/** A sealed template's disk as libvirt reported it when it was sealed; any later change breaks the seal. */
export interface TemplateSeal {
  /** Modification time in nanoseconds since the epoch (decimal). */
  mtimeNs: string;
  sizeBytes: number;
  /** `install`: made by `template create` (dnf inside); `import`: an image brought in by `template import`. */
  origin: 'install' | 'import';
}

/** The CLI process a disposable belongs to (the journal's ProcessIdentity). */
export interface DisposableOwner {
  pid: number;
  /** Field 22 of /proc/PID/stat, or null where unreadable. */
  startTicks: string | null;
  /** /proc/sys/kernel/random/boot_id, or null where unreadable. */
  bootId: string | null;
}

/** A device: its element name and the xmlbuilder2 object for its content. */
export interface Device {
  tag: string;
  node: XmlNode;
}
// xmlbuilder2's object form: '@attr' keys are attributes, '#' is text, other keys child elements.
export type XmlNode = { [key: string]: string | number | XmlNode | XmlNode[] | Record<string, never> };

/** libvirt's own name rule is looser; ours keeps names safe in paths, URIs and shell logs. */
const DOMAIN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
/** Flatpak's own rule for application IDs (three or more dot-separated elements). */
const FLATPAK_ID = /^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*){2,}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function checkInputs(spec: VmSpec, options: DomainXmlOptions): void {
  if (!DOMAIN_NAME.test(spec.name)) {
    throw new InputError(
      `VM name '${spec.name}' is invalid: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  }
  if (!Number.isInteger(spec.memoryMb) || spec.memoryMb < 128 || spec.memoryMb > 1_048_576) {
    throw new InputError(`memory ${spec.memoryMb} MiB is invalid: must be an integer from 128 to 1048576`);
  }
  if (!Number.isInteger(spec.vcpus) || spec.vcpus < 1 || spec.vcpus > 256) {
    throw new InputError(`vcpus ${spec.vcpus} is invalid: must be an integer from 1 to 256`);
  }
  const paths: Array<[string, string | undefined]> = [
    ['disk path', options.diskPath],
    ['config disk path', options.configDiskPath],
    ['template disk path', options.template?.disk],
    ['private disk path', options.template?.privateDisk],
    ['kernel path', options.install?.kernel],
    ['initrd path', options.install?.initrd],
    ['console log path', options.install?.consoleLog],
    ['console log path', options.consoleLog],
    ['agent socket path', options.agentSocket],
    ['kernel path', options.boot?.kernel],
    ['initrd path', options.boot?.initrd],
    ...(options.ownedFiles ?? []).map((file): [string, string] => ['owned file path', file]),
  ];
  for (const [what, value] of paths) {
    if (value === undefined) continue;
    if (!path.isAbsolute(value) || CONTROL_CHARS.test(value)) {
      throw new InputError(`${what} '${value}' is invalid: must be absolute with no control characters`);
    }
  }
  if (options.agentSocket !== undefined && Buffer.byteLength(options.agentSocket) > UNIX_SOCKET_PATH_MAX) {
    throw new InputError(
      `agent socket path '${options.agentSocket}' is invalid: a Unix socket path has at most ${UNIX_SOCKET_PATH_MAX} bytes`,
    );
  }
  const socket = displaySocketPath(options.diskPath, spec.name);
  if (!options.install && !options.seal && Buffer.byteLength(socket) > UNIX_SOCKET_PATH_MAX) {
    throw new InputError(
      `display socket path '${socket}' is invalid: a Unix socket path has at most ${UNIX_SOCKET_PATH_MAX} bytes (use a shorter --vm-dir or name)`,
    );
  }
  if (options.uuid !== undefined && !UUID.test(options.uuid)) {
    throw new InputError(`domain UUID '${options.uuid}' is invalid: must be 8-4-4-4-12 hex digits`);
  }
  if (options.template !== undefined && !DOMAIN_NAME.test(options.template.name)) {
    throw new InputError(
      `template name '${options.template.name}' is invalid: use 1-64 letters, digits, '.', '_' or '-'`,
    );
  }
  if (options.template && options.seal) {
    throw new InputError('a template is not built on another template');
  }
  const owner = options.disposable;
  if (
    owner &&
    (!options.template ||
      !Number.isSafeInteger(owner.pid) ||
      owner.pid <= 0 ||
      (owner.startTicks !== null && !/^\d{1,20}$/.test(owner.startTicks)) ||
      (owner.bootId !== null && !UUID.test(owner.bootId)))
  ) {
    throw new InputError(
      `disposable owner ${JSON.stringify(owner)} is invalid (or the VM is on no template)`,
    );
  }
  if (
    options.seal &&
    (!/^\d{1,30}$/.test(options.seal.mtimeNs) ||
      !Number.isSafeInteger(options.seal.sizeBytes) ||
      !['install', 'import'].includes(options.seal.origin))
  ) {
    throw new InputError(`template seal ${JSON.stringify(options.seal)} is invalid`);
  }
  for (const id of options.pendingFlatpaks ?? []) {
    if (!FLATPAK_ID.test(id))
      throw new InputError(`pending Flatpak '${id}' is invalid: not a Flatpak app ID`);
  }
  if (options.install && options.boot) {
    throw new InputError(
      'install boot and direct boot exclude each other: the install phase has its own kernel',
    );
  }
  const cmdline = (options.install ?? options.boot)?.cmdline;
  if (cmdline !== undefined && !/^[\x20-\x7e]*$/.test(cmdline)) {
    throw new InputError(`kernel command line '${cmdline}' is invalid: printable ASCII only`);
  }
  for (const app of [...spec.flatpakPackages, ...spec.autoLaunchApps]) {
    if (CONTROL_CHARS.test(app)) throw new InputError(`app '${app}' is invalid: no control characters`);
  }
}

// ---- devices -------------------------------------------------------------

export function systemDisk(file: string, backing?: string): Device {
  const node: XmlNode = {
    '@type': 'file',
    '@device': 'disk',
    driver: { '@name': 'qemu', '@type': 'qcow2', '@discard': 'unmap' },
    source: { '@file': file },
  };
  if (backing !== undefined) {
    // The template's disk, spelled out rather than probed from the overlay's header, and never relabelled:
    // libvirt would otherwise chown the shared, sealed file to QEMU at each start and back at each stop.
    // QEMU opens a backing store read-only.
    node.backingStore = {
      '@type': 'file',
      format: { '@type': 'qcow2' },
      source: { '@file': backing, seclabel: { '@model': 'dac', '@relabel': 'no' } },
      backingStore: {},
    };
  }
  node.target = { '@dev': 'vda', '@bus': 'virtio' };
  return { tag: 'disk', node };
}

/** The app VM's own volume, kept across cold starts; the guest finds it by serial and mounts it at /home. */
export function privateDisk(file: string): Device {
  return {
    tag: 'disk',
    node: {
      '@type': 'file',
      '@device': 'disk',
      driver: { '@name': 'qemu', '@type': 'qcow2', '@discard': 'unmap' },
      source: { '@file': file },
      target: { '@dev': 'vdc', '@bus': 'virtio' },
      serial: 'vmp-private',
    },
  };
}

/** The guest finds it by this serial (its /sys/block/vdX/serial; udev also links /dev/disk/by-id/virtio-vmp-config). */
export function configDisk(file: string): Device {
  return {
    tag: 'disk',
    node: {
      '@type': 'file',
      '@device': 'disk',
      driver: { '@name': 'qemu', '@type': 'raw' },
      source: { '@file': file },
      target: { '@dev': 'vdb', '@bus': 'virtio' },
      readonly: {},
      serial: 'vmp-config',
    },
  };
}

export function usbController(): Device {
  return { tag: 'controller', node: { '@type': 'usb', '@model': 'qemu-xhci', '@ports': 15 } };
}

export function networkInterface(mode: VmSpec['networkMode']): Device[] {
  const model = { '@type': 'virtio' };
  switch (mode) {
    case 'default':
      return [
        {
          tag: 'interface',
          node: { '@type': 'network', source: { '@network': DEFAULT_MODE_NETWORK }, model },
        },
      ];
    case 'user':
      return [{ tag: 'interface', node: { '@type': 'user', model } }];
    case 'none':
      return [];
  }
}

/**
 * One serial port with its console, logged to a file by virtlogd: afresh for
 * the install (`append` off), across boots for an installed VM (on).
 */
export function serialConsole(logFile?: string, append = false): Device[] {
  const serial: XmlNode = { '@type': 'pty', target: { '@port': 0 } };
  if (logFile) serial.log = { '@file': logFile, '@append': append ? 'on' : 'off' };
  return [
    { tag: 'serial', node: serial },
    { tag: 'console', node: { '@type': 'pty', target: { '@type': 'serial', '@port': 0 } } },
  ];
}

export function spiceAgentChannel(): Device {
  return {
    tag: 'channel',
    node: { '@type': 'spicevmc', target: { '@type': 'virtio', '@name': 'com.redhat.spice.0' } },
  };
}

export function guestAgentChannel(): Device {
  return {
    tag: 'channel',
    node: { '@type': 'unix', target: { '@type': 'virtio', '@name': 'org.qemu.guest_agent.0' } },
  };
}

/** `<vm-dir>/NAME-wake`: QEMU reads the host's bytes from the FIFO `NAME-wake.in` (docs/protocol.md, "Resume"). */
export function wakePipeBase(diskPath: string, name: string): string {
  return path.join(path.dirname(diskPath), `${name}-wake`);
}

/**
 * A pipe, not a Unix socket: a virtio-serial port whose host side is not
 * connected reads as end-of-file in the guest at once, so the agent could only
 * poll it. QEMU keeps a pipe open for the whole run, so the guest's read
 * blocks until the host writes.
 */
export function wakeChannel(base: string): Device {
  return {
    tag: 'channel',
    node: {
      '@type': 'pipe',
      source: { '@path': base },
      target: { '@type': 'virtio', '@name': WAKE_CHANNEL_NAME },
    },
  };
}

/** `<vm-dir>/NAME-display.sock`: the host end of the display channel, a Unix socket QEMU listens on. */
export function displaySocketPath(diskPath: string, name: string): string {
  return path.join(path.dirname(diskPath), `${name}-display.sock`);
}

/**
 * A Unix socket in bind mode: QEMU (libvirt, which creates it and hands QEMU
 * the listening descriptor) accepts one host client at a time, and the guest
 * sees the port's host side connect and disconnect with it, so no network is
 * needed and every attach is a fresh stream. `start --seamless` narrows it to
 * mode 0600 before anyone connects.
 */
export function displayChannel(socketPath: string, owner?: { uid: number; gid: number }): Device {
  for (const id of owner ? [owner.uid, owner.gid] : []) {
    if (!Number.isSafeInteger(id) || id < 0) {
      throw new InputError(
        `display socket owner ${String(id)} is invalid: must be a uid or gid (a whole number)`,
      );
    }
  }
  const source: XmlNode = owner
    ? {
        '@mode': 'bind',
        '@path': socketPath,
        seclabel: { '@model': 'dac', '@relabel': 'yes', label: `+${owner.uid}:+${owner.gid}` },
      }
    : { '@mode': 'bind', '@path': socketPath };
  return {
    tag: 'channel',
    node: {
      '@type': 'unix',
      source,
      target: { '@type': 'virtio', '@name': DISPLAY_CHANNEL_NAME },
    },
  };
}

/**
 * The agent's link to the proxy (docs/protocol.md, "Transport"): QEMU connects
 * to the proxy's socket as it starts, and again a second after any drop, so
 * the port's host side is connected whenever the proxy runs, the moment a
 * restored guest resumes. No relabelling: the one socket serves every VM, and
 * libvirt would chown it to this VM's QEMU at each start and back at each stop.
 */
export function agentChannel(socketPath: string): Device {
  return {
    tag: 'channel',
    node: {
      '@type': 'unix',
      source: {
        '@mode': 'connect',
        '@path': socketPath,
        reconnect: { '@enabled': 'yes', '@timeout': 1 },
        seclabel: { '@model': 'dac', '@relabel': 'no' },
      },
      target: { '@type': 'virtio', '@name': AGENT_CHANNEL_NAME },
    },
  };
}

export function usbTablet(): Device {
  return { tag: 'input', node: { '@type': 'tablet', '@bus': 'usb' } };
}

/** SPICE on loopback only: the viewer runs on this host, nothing else may connect. */
export function spiceGraphics(): Device {
  return {
    tag: 'graphics',
    node: {
      '@type': 'spice',
      '@autoport': 'yes',
      '@listen': '127.0.0.1',
      listen: { '@type': 'address', '@address': '127.0.0.1' },
      image: { '@compression': 'off' },
    },
  };
}

export function video(backend: VmSpec['graphicsBackend']): Device {
  const model: XmlNode =
    backend === 'qxl'
      ? { '@type': 'qxl', '@ram': 65536, '@vram': 65536, '@vgamem': 16384, '@heads': 1, '@primary': 'yes' }
      : { '@type': 'virtio', '@heads': 1, '@primary': 'yes' };
  return { tag: 'video', node: { model } };
}

/** Sound card plus SPICE audio, so sound plays through the viewer. */
export function sound(arch: VmSpec['arch']): Device[] {
  return [
    { tag: 'sound', node: { '@model': arch === 'x86_64' ? 'ich9' : 'ich6', audio: { '@id': 1 } } },
    { tag: 'audio', node: { '@id': 1, '@type': 'spice' } },
  ];
}

/** Two SPICE USB redirection slots: the viewer can hand over two host USB devices. */
export function usbRedirection(): Device[] {
  const redir = (): Device => ({ tag: 'redirdev', node: { '@bus': 'usb', '@type': 'spicevmc' } });
  return [redir(), redir()];
}

export function balloon(): Device {
  return { tag: 'memballoon', node: { '@model': 'virtio' } };
}

export function rng(): Device {
  return { tag: 'rng', node: { '@model': 'virtio', backend: { '@model': 'random', '#': '/dev/urandom' } } };
}

/** Every device of the VM, in libvirt's canonical order. */
export function devicesFor(spec: VmSpec, options: DomainXmlOptions): Device[] {
  return [
    systemDisk(options.diskPath, options.template?.disk),
    ...(options.configDiskPath ? [configDisk(options.configDiskPath)] : []),
    ...(options.template ? [privateDisk(options.template.privateDisk)] : []),
    usbController(),
    ...networkInterface(spec.networkMode),
    ...(options.install
      ? serialConsole(options.install.consoleLog)
      : serialConsole(options.consoleLog, true)),
    spiceAgentChannel(),
    guestAgentChannel(),
    // Installers and templates never resume from saved state with an agent to wake.
    ...(options.install || options.seal ? [] : [wakeChannel(wakePipeBase(options.diskPath, spec.name))]),
    // Nor do they show app windows seamlessly.
    ...(options.install || options.seal
      ? []
      : [displayChannel(displaySocketPath(options.diskPath, spec.name), options.displayOwner)]),
    ...(options.install || options.seal || !options.agentSocket ? [] : [agentChannel(options.agentSocket)]),
    usbTablet(),
    spiceGraphics(),
    ...(spec.enableAudio ? sound(spec.arch) : []),
    video(spec.graphicsBackend),
    ...(spec.enableUsbPassthrough ? usbRedirection() : []),
    balloon(),
    rng(),
  ];
}

// ---- domain-level elements ------------------------------------------------

function osElement(spec: VmSpec, kernelBoot?: DirectBoot): XmlNode {
  const type = { '@arch': spec.arch, '@machine': spec.arch === 'x86_64' ? 'q35' : 'virt', '#': 'hvm' };
  // aarch64 `virt` has no legacy BIOS: UEFI, picked by libvirt's firmware auto-selection.
  const os: XmlNode = spec.arch === 'aarch64' ? { '@firmware': 'efi', type } : { type };
  if (kernelBoot) {
    os.kernel = kernelBoot.kernel;
    os.initrd = kernelBoot.initrd;
    os.cmdline = kernelBoot.cmdline;
  } else {
    os.boot = { '@dev': 'hd' };
  }
  return os;
}

function featuresElement(spec: VmSpec): XmlNode {
  const features: XmlNode = { acpi: {} };
  if (spec.arch === 'x86_64') {
    features.apic = {};
    if (spec.virtType === 'kvm') features.vmport = { '@state': 'off' };
  }
  // A big translation cache keeps a desktop usable under emulation; QEMU's default is smaller.
  if (spec.virtType === 'qemu') features.tcg = { 'tb-cache': { '@unit': 'MiB', '#': 256 } };
  return features;
}

/**
 * Under TCG (software emulation) an x86_64 guest gets Nehalem (x86-64-v2:
 * SSE4.2, POPCNT), not 'maximum': with AVX/AVX2 on offer glibc and the kernel
 * pick vector code paths that QEMU emulates slowly. Measured on the
 * end-to-end guest (docs/benchmarks.md): its kernel booted in 7.6-9.1 s
 * instead of 12.1 s with 'maximum' and 10.6 s with qemu64.
 */
export const TCG_X86_CPU_MODEL = 'Nehalem';

function cpuElement(spec: VmSpec): XmlNode {
  // host-passthrough needs KVM.
  if (spec.virtType === 'kvm') return { '@mode': 'host-passthrough', '@check': 'none', '@migratable': 'on' };
  if (spec.arch === 'x86_64') {
    return {
      '@mode': 'custom',
      '@match': 'exact',
      '@check': 'none',
      model: { '@fallback': 'forbid', '#': TCG_X86_CPU_MODEL },
    };
  }
  // aarch64 under TCG: every feature QEMU can emulate.
  return { '@mode': 'maximum', '@check': 'none' };
}

function clockElement(spec: VmSpec): XmlNode {
  if (spec.arch !== 'x86_64') return { '@offset': 'utc' };
  return {
    '@offset': 'utc',
    timer: [
      { '@name': 'rtc', '@tickpolicy': 'catchup' },
      { '@name': 'pit', '@tickpolicy': 'delay' },
      { '@name': 'hpet', '@present': 'no' },
    ],
  };
}

/** The apps a VM exists for: Flatpak IDs, then auto-launched commands, without repeats. */
export function appsOf(spec: VmSpec): string[] {
  return [...new Set([...spec.flatpakPackages, ...spec.autoLaunchApps])];
}

function metadataElement(spec: VmSpec, options: DomainXmlOptions): XmlNode {
  const vm: XmlNode = {
    [`@xmlns:${VMP_XML_PREFIX}`]: VMP_XML_NAMESPACE,
    '@version': options.version,
    '@phase': options.install ? 'install' : 'installed',
    ...(options.seal ? { '@role': 'template' } : {}),
    ...(options.disposable ? { '@role': 'disposable' } : {}),
  };
  const apps = appsOf(spec);
  if (apps.length > 0) vm[`${VMP_XML_PREFIX}:app`] = apps.map((app) => ({ '#': app }));
  const files = options.ownedFiles ?? [];
  if (files.length > 0) vm[`${VMP_XML_PREFIX}:file`] = files.map((file) => ({ '#': file }));
  if (options.template) {
    vm[`${VMP_XML_PREFIX}:template`] = { '@name': options.template.name, '@disk': options.template.disk };
  }
  if (options.seal) {
    vm[`${VMP_XML_PREFIX}:seal`] = {
      '@mtime-ns': options.seal.mtimeNs,
      '@size': options.seal.sizeBytes,
      '@origin': options.seal.origin,
    };
  }
  if (options.disposable) {
    const { pid, startTicks, bootId } = options.disposable;
    vm[`${VMP_XML_PREFIX}:disposable`] = {
      '@owner-pid': pid,
      ...(startTicks !== null ? { '@owner-start': startTicks } : {}),
      ...(bootId !== null ? { '@boot-id': bootId } : {}),
    };
  }
  const pending = options.pendingFlatpaks ?? [];
  if (pending.length > 0) {
    vm[`${VMP_XML_PREFIX}:pending-flatpak`] = pending.map((id) => ({ '#': id }));
  }
  return { [`${VMP_XML_PREFIX}:vm`]: vm };
}

/** The complete domain XML; throws InputError naming the bad value if any input breaks its grammar. */
export function renderDomainXml(spec: VmSpec, options: DomainXmlOptions): string {
  checkInputs(spec, options);
  const domain = create().ele('domain', { type: spec.virtType });
  domain.ele('name').txt(spec.name);
  if (options.uuid !== undefined) domain.ele('uuid').txt(options.uuid.toLowerCase());
  domain.ele({ metadata: metadataElement(spec, options) });
  domain.ele('memory', { unit: 'MiB' }).txt(String(spec.memoryMb));
  domain.ele('currentMemory', { unit: 'MiB' }).txt(String(spec.memoryMb));
  domain.ele('vcpu', { placement: 'static' }).txt(String(spec.vcpus));
  domain.ele({ os: osElement(spec, options.install ?? options.boot) });
  domain.ele({ features: featuresElement(spec) });
  domain.ele({ cpu: cpuElement(spec) });
  domain.ele({ clock: clockElement(spec) });
  domain.ele('on_poweroff').txt('destroy');
  // The install must end in a power-off the pipeline can see, not loop back into the installer.
  domain.ele('on_reboot').txt(options.install ? 'destroy' : 'restart');
  domain.ele('on_crash').txt('destroy');
  if (spec.arch === 'x86_64') {
    domain.ele({ pm: { 'suspend-to-mem': { '@enabled': 'no' }, 'suspend-to-disk': { '@enabled': 'no' } } });
  }
  const devices = domain.ele('devices');
  for (const device of devicesFor(spec, options)) devices.ele({ [device.tag]: device.node });
  return domain.end({ prettyPrint: true, headless: true }) + '\n';
}
