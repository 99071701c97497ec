import path from 'node:path';
import { InputError } from '../util/errors.js';
import { FileTooLargeError, NotRegularFileError, readRegularFileBounded } from '../util/bounded-read.js';
import { configDir, DEFAULTS_FILE_NAME } from '../util/paths.js';
import { at, describeSource, type KeyDef, parseKeyedToml, TOML_KEYS } from './toml.js';
import type { VmSpec } from './types.js';
import {
  type ResourceLimits,
  validateBoolean,
  validateConnectUri,
  validateDisposablePreload,
  validateVmName,
} from './validate.js';

/**
 * The user's defaults file, $XDG_CONFIG_HOME/vm-provisioner/defaults.toml
 * (docs/spec.md, "Your defaults"). It holds a few of the per-VM TOML keys,
 * spelt and validated exactly as there, plus `connect`. Precedence, lowest
 * first: built-in defaults < defaults.toml < (an app VM's template) <
 * --config file < flags; for the connection: --connect, LIBVIRT_DEFAULT_URI,
 * defaults.toml, qemu:///system.
 *
 * It sits beside the per-VM files, so `defaults` is a reserved VM name
 * (RESERVED_VM_NAMES) and the store never lists the file as a VM.
 */

export { DEFAULTS_FILE_NAME } from '../util/paths.js';

/** The per-VM keys a defaults file may set: the settings a user plausibly wants for every new VM. */
export const DEFAULTS_SPEC_KEYS = [
  'memory_mb',
  'vcpus',
  'template',
  'network_mode',
  'vm_dir',
  'label',
  'display',
  'on_stop',
] as const;

type DefaultsField =
  | (typeof TOML_KEYS)[(typeof DEFAULTS_SPEC_KEYS)[number]]['field']
  | 'connect'
  | 'defaultTemplate'
  | 'disposableClones'
  | 'disposablePreload';

const DEFAULTS_KEYS: Readonly<Record<string, KeyDef<DefaultsField>>> = {
  ...Object.fromEntries(DEFAULTS_SPEC_KEYS.map((key) => [key, TOML_KEYS[key] as KeyDef<DefaultsField>])),
  connect: { field: 'connect', kind: 'string', check: (v) => validateConnectUri(v) },
  // The template `run --disposable` uses without --template (docs/disposables.md).
  default_template: { field: 'defaultTemplate', kind: 'string', check: (v) => validateVmName(v) },
  // false: every disposable cold boots, and no template gets a ready state (docs/disposables-clones.md).
  disposable_clones: {
    field: 'disposableClones',
    kind: 'boolean',
    check: (v) => validateBoolean('value', v),
  },
  // Running disposables kept ready per template (docs/disposables-clones.md, "Preloaded disposables").
  disposable_preload: {
    field: 'disposablePreload',
    kind: 'integer',
    check: (v) => validateDisposablePreload(v),
  },
};

/** The spellings people reach for (the issue's, virt-install's), pointed at the real key. */
const SPELLINGS: Readonly<Record<string, string>> = {
  memory: 'memory_mb',
  ram: 'memory_mb',
  network: 'network_mode',
  vmdir: 'vm_dir',
  'vm-dir': 'vm_dir',
  'on-stop': 'on_stop',
  uri: 'connect',
};

export interface DefaultsFileText {
  text: string;
  /** The file's path, for messages. */
  source: string;
}

export interface UserDefaults {
  /** The VM settings the file sets; absent keys are absent. */
  spec: Partial<
    Pick<VmSpec, 'memoryMb' | 'vcpus' | 'template' | 'networkMode' | 'vmDir' | 'label' | 'display' | 'onStop'>
  >;
  connect?: string;
  /** The template of disposables (`default_template`). */
  defaultTemplate?: string;
  /** Whether disposables start from clones of a ready state (`disposable_clones`, default true). */
  disposableClones?: boolean;
  /** How many running disposables to keep ready per template (`disposable_preload`, default 1). */
  disposablePreload?: number;
  /** 1-based line of each key, for messages about a value that only fails later (the installer's memory floor). */
  lines: Partial<Record<DefaultsField, number>>;
  source: string;
}

/** $XDG_CONFIG_HOME/vm-provisioner/defaults.toml. */
export function defaultsFilePath(): string {
  return path.join(configDir(), DEFAULTS_FILE_NAME);
}

/** A defaults or config file larger than this is refused: either is a few hundred bytes. */
export const MAX_DEFAULTS_FILE_BYTES = 256 * 1024;

/**
 * The file's text, or undefined when there is none. Anything else wrong with
 * it (not a regular file, too large, unreadable, not UTF-8) is an InputError:
 * a defaults file the user wrote and we silently skipped would be worse.
 */
export async function readDefaultsFile(
  file: string = defaultsFilePath(),
): Promise<DefaultsFileText | undefined> {
  const shown = describeSource(file);
  let bytes: Buffer;
  try {
    bytes = await readRegularFileBounded(file, MAX_DEFAULTS_FILE_BYTES);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (err instanceof NotRegularFileError) {
      throw new InputError(`defaults file ${shown} is not a regular file: make it a TOML file or remove it`);
    }
    if (err instanceof FileTooLargeError) {
      throw new InputError(
        `defaults file ${shown} is larger than ${MAX_DEFAULTS_FILE_BYTES} bytes: it may hold at most ${MAX_DEFAULTS_FILE_BYTES} bytes`,
      );
    }
    throw new InputError(`cannot read defaults file ${shown}: ${code ?? 'error'}`);
  }
  const text = bytes.toString('utf8');
  if (Buffer.from(text, 'utf8').compare(bytes) !== 0) {
    throw new InputError(`defaults file ${shown} is not UTF-8 text`);
  }
  return { text, source: file };
}

/** Parses and validates a defaults file; `limits` are create's (host RAM and CPUs, --force). */
export function parseDefaults(file: DefaultsFileText, limits: ResourceLimits = {}): UserDefaults {
  const { fields, lines } = parseKeyedToml(file.text, file.source, limits, DEFAULTS_KEYS, (key) =>
    Object.prototype.hasOwnProperty.call(SPELLINGS, key) ? SPELLINGS[key] : undefined,
  );
  const { connect, defaultTemplate, disposableClones, disposablePreload, ...spec } =
    fields as UserDefaults['spec'] & {
      connect?: string;
      defaultTemplate?: string;
      disposableClones?: boolean;
      disposablePreload?: number;
    };
  return {
    spec,
    ...(connect !== undefined ? { connect } : {}),
    ...(defaultTemplate !== undefined ? { defaultTemplate } : {}),
    ...(disposableClones !== undefined ? { disposableClones } : {}),
    ...(disposablePreload !== undefined ? { disposablePreload } : {}),
    lines,
    source: file.source,
  };
}

/** Reads and validates the user's defaults file; undefined when there is none. */
export async function loadUserDefaults(
  file: string = defaultsFilePath(),
  limits: ResourceLimits = {},
): Promise<UserDefaults | undefined> {
  const text = await readDefaultsFile(file);
  return text === undefined ? undefined : parseDefaults(text, limits);
}

/** Re-checks one of the file's values against a rule known only later, naming file:line on failure. */
export function recheckDefault<T>(
  defaults: UserDefaults,
  key: (typeof DEFAULTS_SPEC_KEYS)[number],
  check: () => T,
): T {
  try {
    return check();
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    const field = TOML_KEYS[key]!.field as DefaultsField;
    throw new InputError(`${at(defaults.source, defaults.lines[field])}: ${key}: ${err.message}`);
  }
}
