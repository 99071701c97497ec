import TOML from '@iarna/toml';
import { InputError } from '../util/errors.js';
import { defaultSpec } from './defaults.js';
import type { VmSpec } from './types.js';
import {
  describeValue,
  MAX_LIST_LENGTH,
  type ResourceLimits,
  validateArch,
  validateAutostartCommand,
  validateBoolean,
  validateDiskGb,
  validateFedoraRelease,
  validateFirewallRule,
  validateFlatpakId,
  validateGraphicsBackend,
  validateList,
  validateMemoryMb,
  validateNetworkMode,
  validateOnStop,
  validateLabel,
  validateDisplay,
  validatePackageSpec,
  validateSpec,
  validateVcpus,
  validateVirtType,
  validateVmDir,
  validateVmName,
} from './validate.js';
import { NO_INSTALLER_MIN_MEMORY_MB } from './defaults.js';

/**
 * A stored config belongs to a VM that exists: the installer's memory floor
 * was checked when it was created (if an installer ran at all).
 */
const STORED_LIMITS: ResourceLimits = { minMemoryMb: NO_INSTALLER_MIN_MEMORY_MB };

/**
 * VmSpec <-> the predecessor's TOML keys. One table maps each snake_case key
 * to its field and validator, so reading, writing and documentation cannot
 * drift apart. Reading is strict: unknown keys, wrong types and bad values are
 * errors that name the file and, where it can be found, the line.
 */

type Field = keyof VmSpec;

export interface KeyDef<F extends string = Field> {
  field: F;
  kind: 'string' | 'integer' | 'boolean' | 'list';
  /** `shown`: the value's source text, for messages about numbers (see parseWholeNumber). */
  check: (value: unknown, limits: ResourceLimits, shown?: string) => unknown;
}

/** The predecessor's spellings of enum values, accepted on read and never written. */
const LEGACY_GRAPHICS: Record<string, string> = { VirtioGpu: 'virtio', Virtio: 'virtio', Qxl: 'qxl' };
const LEGACY_NETWORK: Record<string, string> = { Nat: 'default', User: 'user', None: 'none' };

/** Key order is the order files are written in (the predecessor's, then the new keys). */
export const TOML_KEYS: Readonly<Record<string, KeyDef>> = {
  name: { field: 'name', kind: 'string', check: (v) => validateVmName(v) },
  memory_mb: { field: 'memoryMb', kind: 'integer', check: (v, l, s) => validateMemoryMb(v, l, s) },
  vcpus: { field: 'vcpus', kind: 'integer', check: (v, l, s) => validateVcpus(v, l, s) },
  disk_size_gb: { field: 'diskSizeGb', kind: 'integer', check: (v, l, s) => validateDiskGb(v, l, s) },
  vm_dir: { field: 'vmDir', kind: 'string', check: (v) => validateVmDir(v) },
  system_packages: {
    field: 'systemPackages',
    kind: 'list',
    check: (v) => validateList('system_packages', v, MAX_LIST_LENGTH.systemPackages, validatePackageSpec),
  },
  flatpak_packages: {
    field: 'flatpakPackages',
    kind: 'list',
    check: (v) => validateList('flatpak_packages', v, MAX_LIST_LENGTH.flatpakPackages, validateFlatpakId),
  },
  auto_launch_apps: {
    field: 'autoLaunchApps',
    kind: 'list',
    check: (v) =>
      validateList('auto_launch_apps', v, MAX_LIST_LENGTH.autoLaunchApps, validateAutostartCommand),
  },
  graphics_backend: {
    field: 'graphicsBackend',
    kind: 'string',
    check: (v) => validateGraphicsBackend(typeof v === 'string' ? (LEGACY_GRAPHICS[v] ?? v) : v),
  },
  enable_clipboard: { field: 'enableClipboard', kind: 'boolean', check: (v) => validateBoolean('value', v) },
  enable_audio: { field: 'enableAudio', kind: 'boolean', check: (v) => validateBoolean('value', v) },
  enable_usb_passthrough: {
    field: 'enableUsbPassthrough',
    kind: 'boolean',
    check: (v) => validateBoolean('value', v),
  },
  enable_auto_login: { field: 'enableAutoLogin', kind: 'boolean', check: (v) => validateBoolean('value', v) },
  network_mode: {
    field: 'networkMode',
    kind: 'string',
    check: (v) => validateNetworkMode(typeof v === 'string' ? (LEGACY_NETWORK[v] ?? v) : v),
  },
  firewall_rules: {
    field: 'firewallRules',
    kind: 'list',
    check: (v) => validateList('firewall_rules', v, MAX_LIST_LENGTH.firewallRules, validateFirewallRule),
  },
  fedora_release: {
    field: 'fedoraRelease',
    kind: 'integer',
    check: (v, _l, s) => validateFedoraRelease(v, s),
  },
  arch: { field: 'arch', kind: 'string', check: (v) => validateArch(v) },
  virt_type: { field: 'virtType', kind: 'string', check: (v) => validateVirtType(v) },
  template: { field: 'template', kind: 'string', check: (v) => validateVmName(v) },
  on_stop: { field: 'onStop', kind: 'string', check: (v) => validateOnStop(v) },
  label: { field: 'label', kind: 'string', check: (v) => validateLabel(v) },
  display: { field: 'display', kind: 'string', check: (v) => validateDisplay(v) },
};

/** Keys that would hold a secret: refused with a pointer to the keyring rather than read. */
const SECRET_KEYS = new Set(['user_password', 'password', 'root_password']);

/** A file name or other label, safe to print on one line. */
export function describeSource(source: string): string {
  return /^[\x20-\x7e]*$/.test(source) && !source.includes('"') ? source : describeValue(source);
}

/**
 * 1-based line of a top-level `key = ...` or `[key]` in the text, if any. The
 * TOML library reports lines only for syntax errors, so field errors find
 * their line this way.
 */
export function lineOfKey(text: string, key: string): number | undefined {
  const k = key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = new RegExp(
    `^\\s*(?:(?:${k}|"${k}"|'${k}')\\s*[=.]|\\[+\\s*(?:${k}|"${k}"|'${k}')\\s*[\\].])`,
  );
  const lines = text.split(/\r?\n/);
  const index = lines.findIndex((line) => pattern.test(line));
  return index < 0 ? undefined : index + 1;
}

/**
 * The source text of a scalar `key = value` on `line`, if it is a TOML number
 * token: what the user wrote, which a parsed number may not show (huge
 * integers wrap to 64 bits, 0x800 reads as 2048).
 */
export function numberTextOf(text: string, key: string, line: number | undefined): string | undefined {
  if (line === undefined) return undefined;
  const source = text.split(/\r?\n/)[line - 1] ?? '';
  const k = key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const match = new RegExp(`^\\s*(?:${k}|"${k}"|'${k}')\\s*=\\s*([^\\s#,\\]]+)`).exec(source);
  const token = match?.[1];
  return token !== undefined && /^[+-]?[0-9A-Za-z_.+-]{1,60}$/.test(token) ? token : undefined;
}

/** A UTF-8 byte-order mark; editors on Windows put one at the start of a file. */
const BOM = '\ufeff';

/** `file:line`, or the file alone when the line is unknown. */
export function at(source: string, line: number | undefined): string {
  return line === undefined ? `${describeSource(source)}` : `${describeSource(source)}:${line}`;
}

interface TomlSyntaxError extends Error {
  line?: number;
  col?: number;
  fromTOML?: boolean;
}

/** Parses TOML text, turning a syntax error into a one-line InputError with file, line and column. */
export function parseTomlText(text: string, source: string): Record<string, unknown> {
  try {
    return TOML.parse(text) as Record<string, unknown>;
  } catch (err) {
    const e = err as TomlSyntaxError;
    if (e && e.fromTOML) {
      const what = (e.message.split('\n')[0] ?? 'syntax error')
        .replace(/ at row \d+, col \d+, pos \d+:?$/, '')
        // The library names a stray character by its code point number; show the character.
        .replace(/^Unknown character "(\d+)"/, (_, code: string) => {
          const n = Number(code);
          return `unexpected character ${n <= 0x10ffff ? describeValue(String.fromCodePoint(n)) : code}`;
        });
      const where =
        e.line === undefined ? at(source, undefined) : `${at(source, e.line + 1)}:${(e.col ?? 0) + 1}`;
      throw new InputError(`${where}: not valid TOML: ${what}`);
    }
    throw err;
  }
}

function tomlTypeOf(value: unknown): string {
  if (typeof value === 'string') return 'a string';
  if (typeof value === 'number' || typeof value === 'bigint') return 'a number';
  if (typeof value === 'boolean') return 'a boolean';
  if (Array.isArray(value)) return 'a list';
  if (value instanceof Date) return 'a date';
  return 'a table';
}

function typeMatches(kind: KeyDef['kind'], value: unknown): boolean {
  switch (kind) {
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return typeof value === 'number' || typeof value === 'bigint';
    case 'boolean':
      return typeof value === 'boolean';
    case 'list':
      return Array.isArray(value);
  }
}

/**
 * Reads the fields a TOML document sets, validating each. Missing keys are
 * simply absent from the result (a --config file may set only a few).
 */
export function parseSpecFields(
  withBom: string,
  source: string,
  limits: ResourceLimits = {},
): Partial<VmSpec> {
  return parseKeyedToml(withBom, source, limits, TOML_KEYS).fields as Partial<VmSpec>;
}

/**
 * A strict TOML document of the given keys: each value type-checked and
 * validated, every error one line naming file:line, the key and the rule.
 * `hint` names a key for an unknown one (e.g. a misremembered spelling).
 */
export function parseKeyedToml<F extends string>(
  withBom: string,
  source: string,
  limits: ResourceLimits,
  keys: Readonly<Record<string, KeyDef<F>>>,
  hint: (key: string) => string | undefined = () => undefined,
): { fields: Partial<Record<F, unknown>>; lines: Partial<Record<F, number>> } {
  // A leading BOM is accepted and dropped (docs/spec.md): it is an editor's
  // encoding marker, not content, and TOML 1.0 does not allow it.
  const text = withBom.startsWith(BOM) ? withBom.slice(BOM.length) : withBom;
  const doc = parseTomlText(text, source);
  const fields: Partial<Record<F, unknown>> = {};
  const lines: Partial<Record<F, number>> = {};
  for (const [key, value] of Object.entries(doc)) {
    const line = lineOfKey(text, key);
    if (SECRET_KEYS.has(key)) {
      throw new InputError(
        `${at(source, line)}: key ${describeValue(key)} holds a password; remove it ` +
          '(passwords live only in the OS keyring)',
      );
    }
    const def = Object.prototype.hasOwnProperty.call(keys, key) ? keys[key] : undefined;
    if (def === undefined) {
      const suggestion = hint(key);
      throw new InputError(
        `${at(source, line)}: unknown key ${describeValue(key)} ` +
          `(${suggestion !== undefined ? `did you mean ${suggestion}? ` : ''}see docs/spec.md for the keys)`,
      );
    }
    const numeric = typeof value === 'number' || typeof value === 'bigint';
    const written = numeric ? numberTextOf(text, key, line) : undefined;
    if (!typeMatches(def.kind, value)) {
      const wanted = def.kind === 'integer' ? 'an integer' : `a ${def.kind}`;
      const scalar = ['string', 'number', 'bigint', 'boolean'].includes(typeof value);
      const shown = scalar ? ` ${written ?? describeValue(value)}` : '';
      throw new InputError(`${at(source, line)}: ${key} must be ${wanted}, not ${tomlTypeOf(value)}${shown}`);
    }
    try {
      fields[def.field] = def.check(value, limits, written);
    } catch (err) {
      if (err instanceof InputError) throw new InputError(`${at(source, line)}: ${key}: ${err.message}`);
      throw err;
    }
    if (line !== undefined) lines[def.field] = line;
  }
  return { fields, lines };
}

/**
 * A stored VM config: `name` is required, every other missing key takes its
 * default (so the predecessor's files, which lack the newer keys, load).
 */
export function specFromToml(text: string, source: string): VmSpec {
  const fields = parseSpecFields(text, source, STORED_LIMITS);
  if (fields.name === undefined) throw new InputError(`${describeSource(source)}: the key "name" is missing`);
  return defaultSpec(fields.name, fields);
}

/** A TOML basic string. Control characters and DEL are escaped as TOML requires. */
export function tomlString(value: string): string {
  let out = '"';
  for (const ch of value) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

function tomlValue(value: unknown): string {
  if (typeof value === 'string') return tomlString(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) {
    const items = value.map(tomlValue);
    const oneLine = `[${items.join(', ')}]`;
    if (oneLine.length <= 90) return oneLine;
    return `[\n${items.map((i) => `  ${i},\n`).join('')}]`;
  }
  throw new Error(`cannot write ${typeof value} as TOML`);
}

/**
 * The stored form of a spec, keys in a fixed order, validated first so that
 * nothing invalid is ever written. Never contains a secret.
 */
export function specToToml(spec: VmSpec): string {
  const valid = validateSpec(spec, STORED_LIMITS);
  const lines = [
    `# vm-provisioner settings for the VM "${valid.name}" (keys: docs/spec.md).`,
    '# Its password is in the OS keyring, never in this file.',
  ];
  for (const [key, def] of Object.entries(TOML_KEYS)) {
    // Optional keys (`template`) are written only when set.
    if (valid[def.field] === undefined) continue;
    lines.push(`${key} = ${tomlValue(valid[def.field])}`);
  }
  return `${lines.join('\n')}\n`;
}
