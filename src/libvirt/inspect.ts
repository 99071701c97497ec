import { DISPLAY_CHANNEL_NAME, VMP_XML_NAMESPACE, WAKE_CHANNEL_NAME } from '../render/xml-names.js';
import { parseXmlObject, XML_OBJECT_MODULE } from './xml-object.js';

/**
 * Reads what vm-provisioner needs out of a domain's XML (from libvirt, so
 * trusted in shape but not in content): whether it is ours, its apps, its disk
 * files and its SPICE endpoint. Pure: tested on strings.
 */

export interface DomainDisk {
  file: string;
  readonly: boolean;
  serial?: string;
}

export interface DomainDescription {
  name: string;
  /** libvirt's UUID of the domain, when the XML carries one (a redefinition must keep it). */
  uuid?: string;
  /** True only when the domain carries our `<vmp:vm>` metadata element. */
  ours: boolean;
  version?: string;
  phase?: string;
  apps: string[];
  /** Files the VM owns besides its disks (`<vmp:file>`, e.g. a direct-boot kernel), removed with it. */
  files: string[];
  disks: DomainDisk[];
  /** `spice://host:port` of a running domain, when SPICE has a port assigned. */
  spiceUri?: string;
  /** `template` for a template (docs/templates.md), `disposable` for a disposable (docs/disposables.md); absent for an app VM. */
  role?: 'template' | 'disposable';
  /** A disposable's owning CLI process, as recorded at its creation. */
  disposableOwner?: { pid: number; startTicks: string | null; bootId: string | null };
  /** A template's disk as it was sealed. */
  seal?: { mtimeNs: string; sizeBytes: number; origin: 'install' | 'import' };
  /** An app VM built on a template: the template's name and disk (the overlay's backing file). */
  template?: { name: string; disk: string };
  /** Flatpaks an app VM installs at its first boot and has not yet been seen to have installed. */
  pendingFlatpaks: string[];
  /** The host end of the agent's wake channel: QEMU reads `<wakePipe>.in` (docs/protocol.md, "Resume"). */
  wakePipe?: string;
  /** The host end of the seamless display channel (docs/seamless.md), and in a running domain's XML whether the guest has the port open. */
  display?: { socket: string; guestConnected?: boolean };
  /** Devices libvirt cannot save with the VM's memory (host PCI/USB/SCSI devices, peer shared memory). */
  unsaveableDevices: string[];
  /** Direct kernel boot, when the domain boots a kernel file rather than its disk's boot loader. */
  boot?: { kernel: string; initrd: string; cmdline: string };
}

type Node = { [key: string]: unknown };

function asArray(value: unknown): Node[] {
  if (value === undefined || value === null) return [];
  return (Array.isArray(value) ? value : [value]) as Node[];
}

function text(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && '#' in value) return String((value as Node)['#']);
  return '';
}

/**
 * describeDomain of the domain's `<name>` and `<metadata>` elements alone: what `list` reads of
 * every domain (its name, whether it is ours, role, apps, template, pending Flatpaks). A definition
 * is mostly devices, and parsing each whole took `list` about 0.5 ms a domain in a cold process.
 * libvirt writes `<name>` first and `<metadata>` (no attributes) before any other element that
 * could hold one, and nothing outside it can hold a closing `</metadata>`; a definition that does
 * not look like that is described whole. The fields outside those elements (disks, devices, boot)
 * are left empty: use describeDomain for them.
 */
export function describeListing(xml: string): DomainDescription {
  return describeDomain(listingText(xml) ?? xml);
}

/**
 * The part of a definition describeListing reads, as a document of its own (`<domain>`, its
 * `<name>` and `<metadata>`), or undefined when the definition is to be described whole.
 * describeListing(xml) is describeDomain of it: a pure function of this text, which
 * src/libvirt/listing-cache.ts uses as its key.
 */
export function listingText(xml: string): string | undefined {
  const name = /<name>[^<]*<\/name>/.exec(xml);
  if (!name) return undefined;
  const start = xml.indexOf('<metadata>');
  const end = xml.lastIndexOf('</metadata>');
  // Not ours without our namespace: the name is all there is to read.
  const metadata =
    start >= 0 && end > start && xml.includes(VMP_XML_NAMESPACE)
      ? xml.slice(start, end + '</metadata>'.length)
      : '';
  if (!metadata && xml.includes(VMP_XML_NAMESPACE)) return undefined;
  return `<domain>${name[0]}${metadata}</domain>`;
}

/** The modules whose code decides what describeDomain returns: a cache of its results is only good for these. */
export const DESCRIBE_MODULES: readonly string[] = [import.meta.url, XML_OBJECT_MODULE];

export function describeDomain(xml: string): DomainDescription {
  const doc = parseXmlObject(xml) as Node;
  const domain = (doc.domain ?? {}) as Node;
  const description: DomainDescription = {
    name: text(domain.name),
    ours: false,
    apps: [],
    files: [],
    disks: [],
    pendingFlatpaks: [],
    unsaveableDevices: [],
  };
  const uuid = text(domain.uuid);
  if (uuid) description.uuid = uuid;

  // Match on the namespace URI, not the prefix: libvirt keeps whatever prefix the definer chose.
  for (const metadata of asArray(domain.metadata)) {
    for (const [key, value] of Object.entries(metadata)) {
      for (const element of asArray(value)) {
        if (typeof element !== 'object') continue;
        const prefix = key.includes(':') ? key.slice(0, key.indexOf(':')) : '';
        const nsAttr = prefix ? `@xmlns:${prefix}` : '@xmlns';
        if (key.split(':').pop() !== 'vm' || element[nsAttr] !== VMP_XML_NAMESPACE) continue;
        description.ours = true;
        if (typeof element['@version'] === 'string') description.version = element['@version'];
        if (typeof element['@phase'] === 'string') description.phase = element['@phase'];
        const appKey = prefix ? `${prefix}:app` : 'app';
        description.apps = asArray(element[appKey]).map(text);
        description.files = asArray(element[prefix ? `${prefix}:file` : 'file']).map(text);
        const child = (tag: string): Node[] => asArray(element[prefix ? `${prefix}:${tag}` : tag]);
        if (element['@role'] === 'template') description.role = 'template';
        if (element['@role'] === 'disposable') description.role = 'disposable';
        const owner = child('disposable')[0];
        if (owner && /^\d{1,10}$/.test(String(owner['@owner-pid'] ?? ''))) {
          const start = owner['@owner-start'];
          const boot = owner['@boot-id'];
          description.disposableOwner = {
            pid: Number(owner['@owner-pid']),
            startTicks: typeof start === 'string' || typeof start === 'number' ? String(start) : null,
            bootId: typeof boot === 'string' ? boot : null,
          };
        }
        const seal = child('seal')[0];
        if (seal && typeof seal['@mtime-ns'] === 'string') {
          description.seal = {
            mtimeNs: seal['@mtime-ns'],
            sizeBytes: Number(seal['@size']),
            origin: seal['@origin'] === 'install' ? 'install' : 'import',
          };
        }
        const template = child('template')[0];
        if (template && typeof template['@name'] === 'string' && typeof template['@disk'] === 'string') {
          description.template = { name: template['@name'], disk: template['@disk'] };
        }
        description.pendingFlatpaks = child('pending-flatpak').map(text);
      }
    }
  }

  for (const os of asArray(domain.os)) {
    const kernel = text(os.kernel);
    if (kernel) description.boot = { kernel, initrd: text(os.initrd), cmdline: text(os.cmdline) };
  }

  for (const devices of asArray(domain.devices)) {
    for (const disk of asArray(devices.disk)) {
      const source = asArray(disk.source)[0];
      const file = source?.['@file'];
      if (disk['@device'] !== 'disk' || typeof file !== 'string') continue;
      const entry: DomainDisk = { file, readonly: disk.readonly !== undefined };
      const serial = text(disk.serial);
      if (serial) entry.serial = serial;
      description.disks.push(entry);
    }
    for (const channel of asArray(devices.channel)) {
      const target = asArray(channel.target)[0];
      const source = asArray(channel.source)[0];
      if (channel['@type'] === 'pipe' && target?.['@name'] === WAKE_CHANNEL_NAME) {
        if (typeof source?.['@path'] === 'string') description.wakePipe = source['@path'];
      }
      if (channel['@type'] === 'unix' && target?.['@name'] === DISPLAY_CHANNEL_NAME) {
        if (typeof source?.['@path'] === 'string') {
          const state = target['@state'];
          description.display = {
            socket: source['@path'],
            ...(state === 'connected' || state === 'disconnected'
              ? { guestConnected: state === 'connected' }
              : {}),
          };
        }
      }
    }
    for (const hostdev of asArray(devices.hostdev)) {
      const type = typeof hostdev['@type'] === 'string' ? hostdev['@type'] : 'unknown';
      description.unsaveableDevices.push(`host ${type} device`);
    }
    for (const shmem of asArray(devices.shmem)) {
      // Only the master of an ivshmem region can be migrated, and so saved.
      if (shmem['@role'] !== 'master') {
        description.unsaveableDevices.push(`shared memory device '${String(shmem['@name'])}'`);
      }
    }
    for (const graphics of asArray(devices.graphics)) {
      const port = graphics['@port'];
      if (graphics['@type'] !== 'spice' || typeof port !== 'string' || Number(port) <= 0) continue;
      const listen = typeof graphics['@listen'] === 'string' ? graphics['@listen'] : '127.0.0.1';
      description.spiceUri = `spice://${listen.includes(':') ? `[${listen}]` : listen}:${port}`;
    }
  }
  return description;
}
