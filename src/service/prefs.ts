import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { create } from 'xmlbuilder2';
import { buildConfigDisk } from '../configdisk/image.js';
import { describeDomain, type DomainDescription } from '../libvirt/inspect.js';
import { appsOf, networkInterface, VMP_XML_NAMESPACE, type XmlNode } from '../render/domain-xml.js';
import { getAgentSecret, getVmPassword, type CredentialStores } from '../secrets/credentials.js';
import { sha512Crypt } from '../secrets/sha512crypt.js';
import { NO_INSTALLER_MIN_MEMORY_MB } from '../spec/defaults.js';
import { TOML_KEYS } from '../spec/toml.js';
import type { NetworkMode, VmSpec } from '../spec/types.js';
import { DEFAULT_DISPLAY, DEFAULT_LABEL, describeValue, type ResourceLimits } from '../spec/validate.js';
import {
  AlreadyExistsError,
  AlreadyRunningError,
  InputError,
  NotFoundError,
  VmpError,
} from '../util/errors.js';
import { proxyHostFor, vmConfigDiskFiles } from './artifacts.js';
import { isLocking, requireOurVm } from './lifecycle.js';
import type { ConfigStore, Hypervisor } from './ports.js';
import { undoAll, type UndoStep } from './undo.js';

/**
 * VM preferences after creation, as Qubes' `qvm-prefs`: `get` and `set` of a
 * few keys of an existing VM, named as its TOML config names them. A setting
 * can live in up to three places: the TOML config, the libvirt domain's
 * persistent definition (memory, vCPUs, NIC, the apps in our metadata) and the
 * VM's config disk (the apps and the agent's proxy address, read by the guest
 * at boot). A change writes them in one order and undoes what it wrote when a
 * later write fails, so the config and the definition never disagree.
 */

/** The keys `set` changes, in the order `get` lists them. */
export const PREF_KEYS = [
  'memory_mb',
  'vcpus',
  'auto_launch_apps',
  'label',
  'network_mode',
  'display',
  'on_stop',
] as const;
export type PrefKey = (typeof PREF_KEYS)[number];

export function isPrefKey(key: string): key is PrefKey {
  return (PREF_KEYS as readonly string[]).includes(key);
}

/** What a template can take: its own resources and network for `template update`; it runs no apps and is never shown. */
const TEMPLATE_KEYS: ReadonlySet<PrefKey> = new Set(['memory_mb', 'vcpus', 'network_mode']);

/** The memory floor of a VM that exists: no installer runs again. */
const EXISTING_VM_LIMITS: ResourceLimits = { minMemoryMb: NO_INSTALLER_MIN_MEMORY_MB };

type PrefValue = number | string | string[];

/** A key's value in a spec, with the defaults an absent optional key stands for. */
export function prefValue(spec: VmSpec, key: PrefKey): PrefValue {
  switch (key) {
    case 'memory_mb':
      return spec.memoryMb;
    case 'vcpus':
      return spec.vcpus;
    case 'auto_launch_apps':
      return [...spec.autoLaunchApps];
    case 'label':
      return spec.label ?? DEFAULT_LABEL;
    case 'network_mode':
      return spec.networkMode;
    case 'display':
      return spec.display ?? DEFAULT_DISPLAY;
    case 'on_stop':
      return spec.onStop ?? 'shutdown';
  }
}

function unknownKey(key: string): InputError {
  return new InputError(`unknown key ${describeValue(key)}: use one of ${PREF_KEYS.join(', ')}`);
}

/**
 * A key's value from command-line words, checked by the same validator as
 * `create` and a config file use. A list key takes each word as one entry; a
 * single empty word is the empty list. Any other key takes exactly one word.
 */
export function parsePrefWords(key: string, words: string[], limits: ResourceLimits = {}): PrefValue {
  if (!isPrefKey(key)) throw unknownKey(key);
  const def = TOML_KEYS[key]!;
  const merged = { ...EXISTING_VM_LIMITS, ...limits };
  if (def.kind === 'list') {
    if (words.length === 0)
      throw new InputError(`give the entries of ${key}, one argument each ('' for none)`);
    const items = words.length === 1 && words[0] === '' ? [] : words;
    return checkPref(key, items, merged);
  }
  if (words.length !== 1) {
    throw new InputError(
      `${key} takes exactly one value, not ${words.length}${words.length > 1 ? ` (${words.map((w) => describeValue(w)).join(' ')})` : ''}`,
    );
  }
  return checkPref(key, words[0], merged);
}

/** A value as read from a TOML file (numbers as numbers), checked as `create` checks it. */
export function checkPref(key: string, value: unknown, limits: ResourceLimits = {}): PrefValue {
  if (!isPrefKey(key)) throw unknownKey(key);
  const def = TOML_KEYS[key]!;
  return def.check(value, { ...EXISTING_VM_LIMITS, ...limits }) as PrefValue;
}

/** `spec` with `changes` applied (values already checked). */
export function withPrefs(spec: VmSpec, changes: Partial<Record<PrefKey, PrefValue>>): VmSpec {
  const next: VmSpec = { ...spec };
  for (const [key, value] of Object.entries(changes) as Array<[PrefKey, PrefValue]>) {
    const field = TOML_KEYS[key]!.field;
    (next as unknown as Record<string, unknown>)[field] = Array.isArray(value) ? [...value] : value;
  }
  return next;
}

function sameValue(a: PrefValue, b: PrefValue): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

// ---- the domain definition ------------------------------------------------

/** What the persistent definition says of the keys it holds. Pure: tested on strings. */
export interface DefinitionSettings {
  memoryMb: number;
  vcpus: number;
  networkMode: NetworkMode | 'other';
  apps: string[];
}

/** The few DOM calls used here, as xmlbuilder2's DOM implements them (the project compiles without the DOM lib). */
interface XNode {
  parentNode: XNode | null;
  firstChild: XNode | null;
  textContent: string | null;
}
interface Element extends XNode {
  readonly prefix: string | null;
  getAttribute(name: string): string | null;
  setAttribute(name: string, value: string): void;
  removeAttribute(name: string): void;
  getElementsByTagName(tag: string): ArrayLike<Element>;
  getElementsByTagNameNS(ns: string, tag: string): ArrayLike<Element>;
  appendChild(child: XNode): XNode;
  insertBefore(child: XNode, before: XNode | null): XNode;
  removeChild(child: XNode): XNode;
}
interface Document extends XNode {
  documentElement: Element;
  importNode(node: XNode, deep: boolean): XNode;
  createElementNS(ns: string, qualifiedName: string): Element;
}

function elements(parent: Element, tag: string): Element[] {
  return Array.from(parent.getElementsByTagName(tag)).filter((e) => e.parentNode === parent);
}

function domainRoot(xml: string): { doc: Document; root: Element; serialize: () => string } {
  const builder = create(xml);
  const doc = builder.node as unknown as Document;
  return { doc, root: doc.documentElement, serialize: () => builder.end({ headless: true }) };
}

const UNIT_KIB: Record<string, number> = {
  b: 1 / 1024,
  bytes: 1 / 1024,
  k: 1,
  kib: 1,
  kb: 1000 / 1024,
  m: 1024,
  mib: 1024,
  mb: 1_000_000 / 1024,
  g: 1024 ** 2,
  gib: 1024 ** 2,
  gb: 1e9 / 1024,
};

export function definitionSettings(xml: string): DefinitionSettings {
  const { root } = domainRoot(xml);
  const memory = elements(root, 'memory')[0];
  const unit = (memory?.getAttribute('unit') ?? 'KiB').toLowerCase();
  const kib = Number(memory?.textContent ?? NaN) * (UNIT_KIB[unit] ?? NaN);
  const vcpu = elements(root, 'vcpu')[0];
  // A running count below the maximum (`current`) is what a guest boots with.
  const vcpus = Number(vcpu?.getAttribute('current') ?? vcpu?.textContent ?? NaN);
  const devices = elements(root, 'devices')[0];
  const nics = devices ? elements(devices, 'interface') : [];
  let networkMode: DefinitionSettings['networkMode'] = 'other';
  if (nics.length === 0) networkMode = 'none';
  else if (nics.length === 1 && nics[0]!.getAttribute('type') === 'user') networkMode = 'user';
  else if (
    nics.length === 1 &&
    nics[0]!.getAttribute('type') === 'network' &&
    elements(nics[0]!, 'source')[0]?.getAttribute('network') === 'default'
  ) {
    networkMode = 'default';
  }
  return { memoryMb: Math.round(kib / 1024), vcpus, networkMode, apps: describeDomain(xml).apps };
}

/** Where the TOML config and the definition disagree, one phrase each; empty when they agree. */
export function disagreements(spec: VmSpec, xml: string): string[] {
  const d = definitionSettings(xml);
  const out: string[] = [];
  if (d.memoryMb !== spec.memoryMb)
    out.push(`memory_mb: config ${spec.memoryMb}, libvirt definition ${d.memoryMb}`);
  if (d.vcpus !== spec.vcpus) out.push(`vcpus: config ${spec.vcpus}, libvirt definition ${d.vcpus}`);
  if (d.networkMode !== spec.networkMode) {
    out.push(`network_mode: config ${spec.networkMode}, libvirt definition ${d.networkMode}`);
  }
  const apps = appsOf(spec);
  if (JSON.stringify(d.apps) !== JSON.stringify(apps)) {
    out.push(`apps: config ${JSON.stringify(apps)}, libvirt definition ${JSON.stringify(d.apps)}`);
  }
  return out;
}

function nodeFrom(doc: Document, tag: string, node: XmlNode): Element {
  const built = (create({ [tag]: node }).node as unknown as Document).documentElement;
  return doc.importNode(built, true) as Element;
}

/**
 * The persistent definition `xml` with the spec's memory, vCPUs, NIC and apps,
 * everything else (UUID, MAC address, PCI addresses libvirt assigned, disks,
 * the rest of our metadata) as it was. Pure.
 */
export function patchDefinition(xml: string, spec: VmSpec): string {
  const { doc, root, serialize } = domainRoot(xml);
  for (const tag of ['memory', 'currentMemory']) {
    for (const el of elements(root, tag)) {
      el.setAttribute('unit', 'MiB');
      el.textContent = String(spec.memoryMb);
    }
  }
  for (const el of elements(root, 'vcpu')) {
    el.removeAttribute('current');
    el.textContent = String(spec.vcpus);
  }
  const devices = elements(root, 'devices')[0];
  if (!devices) throw new VmpError(`the definition of '${spec.name}' has no devices`);
  const nics = elements(devices, 'interface');
  if (definitionSettings(xml).networkMode !== spec.networkMode) {
    // The MAC address is kept: a guest's leases and its interface name follow it.
    const mac = nics.map((n) => elements(n, 'mac')[0]?.getAttribute('address')).find((a) => a);
    for (const nic of nics) devices.removeChild(nic);
    for (const device of networkInterface(spec.networkMode)) {
      const node: XmlNode =
        mac && /^[0-9a-fA-F:]{17}$/.test(mac) ? { mac: { '@address': mac }, ...device.node } : device.node;
      devices.appendChild(nodeFrom(doc, device.tag, node));
    }
  }
  const vm = Array.from(root.getElementsByTagNameNS(VMP_XML_NAMESPACE, 'vm'))[0];
  if (!vm) throw new VmpError(`the definition of '${spec.name}' carries no vm-provisioner metadata`);
  const prefix = vm.prefix ? `${vm.prefix}:` : '';
  const oldApps = Array.from(vm.getElementsByTagNameNS(VMP_XML_NAMESPACE, 'app'));
  const anchor = oldApps[0] ?? vm.firstChild;
  for (const app of appsOf(spec)) {
    const el = doc.createElementNS(VMP_XML_NAMESPACE, `${prefix}app`);
    el.textContent = app;
    vm.insertBefore(el, anchor);
  }
  for (const el of oldApps) vm.removeChild(el);
  return `${serialize()}\n`;
}

// ---- reading ---------------------------------------------------------------

export interface PrefsDeps {
  hypervisor: Hypervisor;
  configStore: ConfigStore;
  /** Needed only for a change that rebuilds the config disk (its password hash and agent secret). */
  credentials?: CredentialStores;
  /**
   * Called once after every committed change, with what changed: the single
   * place where what follows a setting (the host launchers of a label, say)
   * is kept in step. Its failure is reported; the change stays.
   */
  afterChange?: (change: PrefChange) => Promise<void>;
}

export interface PrefChange {
  name: string;
  keys: PrefKey[];
  before: VmSpec;
  after: VmSpec;
}

export interface PrefsView {
  name: string;
  role: 'vm' | 'template';
  values: Record<PrefKey, PrefValue>;
  /** Where the config and the libvirt definition disagree (a change interrupted by a crash). */
  disagreements: string[];
}

async function readVm(
  deps: Pick<PrefsDeps, 'hypervisor' | 'configStore'>,
  name: string,
): Promise<{ description: DomainDescription; spec: VmSpec; xml: string }> {
  const description = await requireOurVm(deps.hypervisor, name);
  let spec: VmSpec;
  try {
    spec = await deps.configStore.read(name);
  } catch (err) {
    if (err instanceof NotFoundError) {
      throw new NotFoundError(`VM '${name}' has no config file (${deps.configStore.pathOf(name)})`);
    }
    throw err;
  }
  const xml = await deps.hypervisor.xml(name, { inactive: true });
  return { description, spec, xml };
}

export async function getPrefs(
  deps: Pick<PrefsDeps, 'hypervisor' | 'configStore'>,
  name: string,
): Promise<PrefsView> {
  const { description, spec, xml } = await readVm(deps, name);
  const values = Object.fromEntries(PREF_KEYS.map((k) => [k, prefValue(spec, k)])) as Record<
    PrefKey,
    PrefValue
  >;
  return {
    name,
    role: description.role === 'template' ? 'template' : 'vm',
    values,
    disagreements: disagreements(spec, xml),
  };
}

// ---- changing --------------------------------------------------------------

export interface SetResult {
  /** Keys whose value changed; empty when every value was already so. */
  changed: PrefKey[];
  /** One line per note on when a change takes effect. */
  notes: string[];
}

const DOMAIN_KEYS: ReadonlySet<PrefKey> = new Set(['memory_mb', 'vcpus', 'network_mode', 'auto_launch_apps']);

/**
 * Refuses what a VM in its present state, or a template, cannot take, and says
 * when each change takes effect. Pure.
 */
export function checkChangeAllowed(
  name: string,
  role: 'vm' | 'template',
  state: { state: string; saved: boolean },
  hasConfigDisk: boolean,
  changed: PrefKey[],
  network: { from: NetworkMode; to: NetworkMode } = { from: 'none', to: 'none' },
): string[] {
  const notes: string[] = [];
  const off = state.state === 'shut off' && !state.saved;
  const where = state.saved ? 'it has saved memory' : `it is ${state.state}`;
  for (const key of changed) {
    if (role === 'template' && !TEMPLATE_KEYS.has(key)) {
      throw new InputError(
        `set: ${key} does not apply to template '${name}' (a template runs no apps and is never started as a VM); ` +
          `set it on the app VMs made on it; a template takes ${[...TEMPLATE_KEYS].join(', ')}`,
      );
    }
    if (key === 'network_mode') {
      if (!off) {
        throw new AlreadyRunningError(
          `set: network_mode of '${name}' can change only while it is shut off (${where}); stop it first` +
            (state.saved ? ' (start it, then stop --no-save)' : ''),
        );
      }
    }
    // Without a config disk the address the guest agent reaches the proxy at is part of the installed system;
    // a move between two NICs would cut the agent off (to or from `none` there is no agent link to keep).
    if (
      key === 'network_mode' &&
      role === 'vm' &&
      !hasConfigDisk &&
      network.from !== 'none' &&
      network.to !== 'none' &&
      proxyHostFor(network.from) !== proxyHostFor(network.to)
    ) {
      throw new InputError(
        `set: network_mode of '${name}' cannot change from ${network.from} to ${network.to}: its guest agent reaches the proxy at ` +
          `${proxyHostFor(network.from)}, written into its installed system (it has no config disk)`,
      );
    }
    if (key === 'auto_launch_apps' && !hasConfigDisk) {
      throw new InputError(
        `set: auto_launch_apps of '${name}' cannot change: its apps were installed into its system, and it has no config disk to give the guest new ones`,
      );
    }
    if ((key === 'memory_mb' || key === 'vcpus') && !off) {
      notes.push(
        `${key} takes effect at the next cold boot of '${name}' (${where}; the persistent definition changed, as virsh --config does)`,
      );
    }
    if (key === 'auto_launch_apps' && !off) {
      notes.push(`auto_launch_apps reach the guest of '${name}' at its next cold boot (${where})`);
    }
    if (key === 'display' && !off) notes.push(`display takes effect at the next start of '${name}'`);
  }
  return notes;
}

function randomSuffix(): string {
  return randomBytes(6).toString('hex');
}

/** A checked change of one VM, before anything is written (`apply --dry-run` stops here). */
export interface PrefsPlan {
  name: string;
  changed: PrefKey[];
  before: VmSpec;
  after: VmSpec;
  notes: string[];
  /** What the change writes, in this order. */
  writes: { configDisk?: string; oldXml: string; newXml?: string };
  description: DomainDescription;
}

/**
 * Reads the VM, checks every value and whether the VM in its present state
 * (or a template) can take the change, and works out what to write. Writes
 * nothing. Unchanged values drop out; `changed` is empty when there is nothing to do.
 */
export async function planPrefs(
  deps: Pick<PrefsDeps, 'hypervisor' | 'configStore'>,
  name: string,
  rawChanges: Partial<Record<string, unknown>>,
  options: { limits?: ResourceLimits } = {},
): Promise<PrefsPlan> {
  const { hypervisor } = deps;
  const limits = options.limits ?? {};
  const checked: Partial<Record<PrefKey, PrefValue>> = {};
  for (const [key, value] of Object.entries(rawChanges))
    checked[key as PrefKey] = checkPref(key, value, limits);
  const { description, spec: before, xml: oldXml } = await readVm(deps, name);
  const changed = PREF_KEYS.filter(
    (k) => checked[k] !== undefined && !sameValue(checked[k]!, prefValue(before, k)),
  );
  // A definition that disagrees with the config (a change cut off by a crash) is written again even when no value changes.
  const repair = disagreements(before, oldXml).length > 0;
  const after = withPrefs(before, Object.fromEntries(changed.map((k) => [k, checked[k]!])));
  const plan: PrefsPlan = { name, changed, before, after, notes: [], writes: { oldXml }, description };
  if (changed.length === 0 && !repair) return plan;
  const role = description.role === 'template' ? 'template' : 'vm';
  const info = await hypervisor.info(name);
  const saved = info.state === 'shut off' && (await hypervisor.hasManagedSave(name));
  const configDisk = description.disks.find((d) => d.serial === 'vmp-config')?.file;
  if (repair)
    plan.notes.push(`the libvirt definition of '${name}' disagreed with its config and is written again`);
  plan.notes.push(
    ...checkChangeAllowed(name, role, { state: info.state, saved }, configDisk !== undefined, changed, {
      from: before.networkMode,
      to: after.networkMode,
    }),
  );
  const proxyMoves = proxyHostFor(before.networkMode) !== proxyHostFor(after.networkMode);
  if (configDisk !== undefined && role === 'vm' && (changed.includes('auto_launch_apps') || proxyMoves)) {
    plan.writes.configDisk = configDisk;
  }
  if (repair || changed.some((k) => DOMAIN_KEYS.has(k))) plan.writes.newXml = patchDefinition(oldXml, after);
  return plan;
}

/**
 * Sets one or more keys of a VM or template. Every value is checked first;
 * nothing is written when one is bad, unchanged values write nothing. Writes,
 * in order: a new config disk beside the old one (not yet in place), the
 * libvirt definition (read back and compared), the config disk moved into
 * place, the TOML config. A failure undoes the earlier writes in reverse.
 */
export async function setPrefs(
  deps: PrefsDeps,
  name: string,
  rawChanges: Partial<Record<string, unknown>>,
  options: { limits?: ResourceLimits } = {},
): Promise<SetResult> {
  const { hypervisor, configStore } = deps;
  // Bad values fail before the lock is taken.
  for (const [key, value] of Object.entries(rawChanges)) checkPref(key, value, options.limits ?? {});
  const lock = isLocking(configStore) ? await takeLock(configStore, name) : undefined;
  try {
    const plan = await planPrefs(deps, name, rawChanges, options);
    const { changed, before, after, notes, description } = plan;
    const { configDisk, oldXml, newXml } = plan.writes;
    if (configDisk === undefined && newXml === undefined && changed.length === 0)
      return { changed: [], notes: [] };
    const rebuildDisk = configDisk !== undefined;

    const undo: UndoStep[] = [];
    let staged: string | undefined;
    let backup: string | undefined;
    try {
      if (rebuildDisk) {
        if (!deps.credentials) throw new VmpError('rebuilding the config disk needs the keyring');
        const password = await getVmPassword(name, deps.credentials);
        const agentSecret = await getAgentSecret(name, deps.credentials);
        if (agentSecret === null) {
          throw new NotFoundError(
            `no agent secret for VM '${name}' in the keyring: its config disk cannot be rebuilt`,
          );
        }
        staged = path.join(path.dirname(configDisk!), `.${path.basename(configDisk!)}.${randomSuffix()}.new`);
        const stagedFile = staged;
        undo.push({ what: stagedFile, run: () => fs.rm(stagedFile, { force: true }) });
        await buildConfigDisk(
          vmConfigDiskFiles(
            after,
            { passwordHash: sha512Crypt(password), agentSecret },
            {
              pendingFlatpaks: description.pendingFlatpaks,
            },
          ),
          stagedFile,
        );
      }
      if (newXml !== undefined) {
        undo.push({ what: `the definition of '${name}'`, run: () => hypervisor.define(oldXml) });
        await hypervisor.define(newXml);
        const problems = disagreements(after, await hypervisor.xml(name, { inactive: true }));
        if (problems.length > 0) {
          throw new VmpError(`libvirt did not take the change of '${name}': ${problems.join('; ')}`);
        }
      }
      if (staged !== undefined) {
        // The old disk stays under a second name until the config is written, so a failure can put it back.
        const oldDisk = `${staged}.old`;
        await fs.link(configDisk!, oldDisk);
        backup = oldDisk;
        undo.push({ what: configDisk!, run: () => fs.rename(oldDisk, configDisk!) });
        await fs.rename(staged, configDisk!);
      }
      await configStore.write(after);
    } catch (err) {
      throw await undoAll(undo, err);
    }
    if (backup !== undefined) await fs.rm(backup, { force: true });
    if (deps.afterChange && changed.length > 0) {
      try {
        await deps.afterChange({ name, keys: changed, before, after });
      } catch (err) {
        notes.push(`the change is made, but what follows it failed: ${(err as Error).message}`);
      }
    }
    return { changed, notes };
  } finally {
    await lock?.release();
  }
}

async function takeLock(
  store: ConfigStore & { acquireLock(name: string): Promise<{ release(): Promise<void> }> },
  name: string,
): Promise<{ release(): Promise<void> }> {
  try {
    return await store.acquireLock(name);
  } catch (err) {
    if (err instanceof AlreadyExistsError) {
      throw new AlreadyExistsError(
        `VM '${name}' is being created or changed by another process: ${err.message}`,
      );
    }
    throw err;
  }
}
