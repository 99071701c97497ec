import path from 'node:path';
import { create } from 'xmlbuilder2';
import type { DisposableOwner } from '../render/domain-xml.js';
import {
  AGENT_CHANNEL_NAME,
  DISPLAY_CHANNEL_NAME,
  VMP_XML_NAMESPACE,
  WAKE_CHANNEL_NAME,
} from '../render/xml-names.js';
import { SaveFormatError } from '../storage/save-file.js';
import { InputError } from '../util/errors.js';

/**
 * The domain XML a clone is restored with: the clone source's XML as libvirt
 * embedded it in the save image (device addresses and all, which must match
 * QEMU's stream), with only what makes the clone itself changed: its name and
 * UUID, its two overlays (backed by the frozen clone-source volumes, which
 * libvirt must never relabel), its wake FIFOs and display socket, no console
 * log file of the source, and no NIC (one is hot-plugged after the restore,
 * so its MAC is the clone's and not the one in the source's memory).
 */

export interface CloneLayout {
  name: string;
  uuid: string;
  /** The clone's root overlay and the frozen clone-source root it is backed by. */
  root: { file: string; backing: string };
  private: { file: string; backing: string };
  /** The template's disk: the frozen root's own backing file. */
  templateDisk: string;
  /** The clone's wake channel base: QEMU reads `<wakeBase>.in`. */
  wakeBase: string;
  /** The clone's display channel socket, if the source had one. */
  displaySocket: string;
  /**
   * A disposable (docs/disposables.md): its metadata says `role="disposable"` with the owner, and lists
   * its other files (`<vmp:file>`), so removeDisposable and `gc` treat it as any disposable.
   */
  disposable?: { owner: DisposableOwner; files: string[] };
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

type El = {
  tagName: string;
  childNodes: ArrayLike<unknown>;
  parentNode: El | null;
  getAttribute(n: string): string | null;
  setAttribute(n: string, v: string): void;
  removeAttribute(n: string): void;
  getElementsByTagName(n: string): ArrayLike<El>;
  appendChild(c: El): void;
  insertBefore(c: El, before: El | null): void;
  nextSibling: El | null;
  removeChild(c: El): void;
  ownerDocument: { createElement(n: string): El; createElementNS(ns: string, n: string): El };
  textContent: string | null;
};

function checkLayout(layout: CloneLayout): void {
  if (!NAME.test(layout.name)) {
    throw new InputError(`clone name '${layout.name}' is invalid: use 1-64 letters, digits, '.', '_' or '-'`);
  }
  const owner = layout.disposable?.owner;
  if (
    owner &&
    (!Number.isSafeInteger(owner.pid) ||
      owner.pid <= 0 ||
      (owner.startTicks !== null && !/^\d{1,20}$/.test(owner.startTicks)) ||
      (owner.bootId !== null && !UUID.test(owner.bootId)))
  ) {
    throw new InputError(`disposable owner ${JSON.stringify(owner)} is invalid`);
  }
  if (!UUID.test(layout.uuid))
    throw new InputError(`clone UUID '${layout.uuid}' is invalid: 8-4-4-4-12 lower-case hex`);
  const files = [
    layout.root.file,
    layout.root.backing,
    layout.private.file,
    layout.private.backing,
    layout.templateDisk,
    layout.wakeBase,
    layout.displaySocket,
    ...(layout.disposable?.files ?? []),
  ];
  for (const file of files) {
    if (!path.isAbsolute(file) || CONTROL.test(file)) {
      throw new InputError(`clone path '${file}' is invalid: must be absolute with no control characters`);
    }
  }
}

function children(el: El, tag: string): El[] {
  return Array.from(el.childNodes as ArrayLike<El>).filter((c) => c.tagName === tag);
}

function child(el: El, tag: string): El | undefined {
  return children(el, tag)[0];
}

/** `<backingStore type='file'><format type='qcow2'/><source file=F><seclabel relabel='no'/></source>…` */
function backingChain(doc: El['ownerDocument'], files: string[]): El {
  const [file, ...rest] = files;
  const store = doc.createElement('backingStore');
  if (file === undefined) return store;
  store.setAttribute('type', 'file');
  const format = doc.createElement('format');
  format.setAttribute('type', 'qcow2');
  store.appendChild(format);
  const source = doc.createElement('source');
  source.setAttribute('file', file);
  // Shared by every clone and read-only: never chowned to QEMU at a start and back at a stop.
  const seclabel = doc.createElement('seclabel');
  seclabel.setAttribute('model', 'dac');
  seclabel.setAttribute('relabel', 'no');
  source.appendChild(seclabel);
  store.appendChild(source);
  store.appendChild(backingChain(doc, rest));
  return store;
}

function retarget(disk: El, file: string, chain: string[]): void {
  const source = child(disk, 'source');
  if (!source) throw new SaveFormatError(`the saved disk ${file} has no <source>`);
  source.setAttribute('file', file);
  for (const old of children(disk, 'backingStore')) disk.removeChild(old);
  // libvirt's order: the backing chain right after the source.
  disk.insertBefore(backingChain(disk.ownerDocument, chain), source.nextSibling);
}

/** Our `<vmp:vm>` element: `role="disposable"`, then `<vmp:file>`s and `<vmp:disposable>` as renderDomainXml writes them. */
function markDisposable(domain: El, disposable: NonNullable<CloneLayout['disposable']>): void {
  const vm = Array.from(child(domain, 'metadata')?.childNodes ?? ([] as El[]))
    .map((node) => node as El)
    .find(
      (el) =>
        typeof el.tagName === 'string' &&
        el.tagName.split(':').pop() === 'vm' &&
        el.getAttribute(el.tagName.includes(':') ? `xmlns:${el.tagName.split(':')[0]}` : 'xmlns') ===
          VMP_XML_NAMESPACE,
    );
  if (!vm) throw new SaveFormatError('the saved domain XML has no vm-provisioner metadata');
  const prefix = vm.tagName.includes(':') ? `${vm.tagName.split(':')[0]}:` : '';
  const make = (tag: string): El => vm.ownerDocument.createElementNS(VMP_XML_NAMESPACE, `${prefix}${tag}`);
  vm.setAttribute('role', 'disposable');
  for (const file of disposable.files) {
    const el = make('file');
    el.textContent = file;
    vm.appendChild(el);
  }
  const { pid, startTicks, bootId } = disposable.owner;
  const owner = make('disposable');
  owner.setAttribute('owner-pid', String(pid));
  if (startTicks !== null) owner.setAttribute('owner-start', startTicks);
  if (bootId !== null) owner.setAttribute('boot-id', bootId);
  vm.appendChild(owner);
}

/**
 * Rewrites the clone source's embedded XML for one clone. Throws
 * SaveFormatError when the XML lacks what a clone source has (the root and
 * private disks, the wake channel), so the caller falls back to a boot.
 */
export function cloneDomainXml(sourceXml: string, layout: CloneLayout): string {
  checkLayout(layout);
  let doc;
  try {
    doc = create(sourceXml);
  } catch (err) {
    throw new SaveFormatError(`the save image's domain XML does not parse: ${(err as Error).message}`);
  }
  const domain = (doc.node as unknown as { documentElement: El }).documentElement;
  if (domain.tagName !== 'domain') throw new SaveFormatError('the save image holds no <domain> XML');
  const name = child(domain, 'name');
  const uuid = child(domain, 'uuid');
  if (!name || !uuid) throw new SaveFormatError('the saved domain XML has no <name> or <uuid>');
  name.textContent = layout.name;
  uuid.textContent = layout.uuid;
  const devices = child(domain, 'devices');
  if (!devices) throw new SaveFormatError('the saved domain XML has no <devices>');

  const seen = { root: false, private: false, wake: false };
  for (const disk of children(devices, 'disk')) {
    const dev = child(disk, 'target')?.getAttribute('dev');
    if (dev === 'vda') {
      retarget(disk, layout.root.file, [layout.root.backing, layout.templateDisk]);
      seen.root = true;
    } else if (dev === 'vdc') {
      retarget(disk, layout.private.file, [layout.private.backing]);
      seen.private = true;
    } else {
      // The config disk (read-only, the source's): shared, so never relabelled either.
      const source = child(disk, 'source');
      if (source && !child(source, 'seclabel')) {
        const seclabel = disk.ownerDocument.createElement('seclabel');
        seclabel.setAttribute('model', 'dac');
        seclabel.setAttribute('relabel', 'no');
        source.appendChild(seclabel);
      }
    }
  }
  for (const nic of children(devices, 'interface')) devices.removeChild(nic);
  for (const channel of children(devices, 'channel')) {
    const target = child(channel, 'target')?.getAttribute('name');
    const source = child(channel, 'source');
    if (target === WAKE_CHANNEL_NAME && source) {
      source.setAttribute('path', layout.wakeBase);
      seen.wake = true;
    } else if (target === DISPLAY_CHANNEL_NAME && source) {
      source.setAttribute('path', layout.displaySocket);
    } else if (target === AGENT_CHANNEL_NAME) {
      // The proxy's one socket, shared by every VM: the clone's agent proves who it is in the handshake.
    } else if (channel.getAttribute('type') === 'unix' && source) {
      // libvirt names the QEMU guest agent's socket after the domain when no path is given.
      source.removeAttribute('path');
    }
  }
  for (const serial of [...children(devices, 'serial'), ...children(devices, 'console')]) {
    for (const log of children(serial, 'log')) serial.removeChild(log);
  }
  if (layout.disposable) markDisposable(domain, layout.disposable);
  const missing = Object.entries(seen)
    .filter(([, ok]) => !ok)
    .map(([what]) => what);
  if (missing.length > 0) {
    throw new SaveFormatError(
      `the saved domain XML is not a clone source's: no ${missing.join(', ')} device`,
    );
  }
  return doc.end({ headless: true, prettyPrint: false });
}
