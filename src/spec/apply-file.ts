import path from 'node:path';
import { InputError } from '../util/errors.js';
import { NO_INSTALLER_MIN_MEMORY_MB } from './defaults.js';
import { describeSource, parseTomlText, TOML_KEYS } from './toml.js';
import {
  describeValue,
  type ResourceLimits,
  validateHostPath,
  validateKernelArgs,
  validateVmName,
} from './validate.js';

/**
 * The file `apply` reads (docs/apply.md): templates and the app VMs on them,
 * declared in TOML as `[[template]]` and `[[vm]]` tables whose keys are the
 * per-VM config keys (docs/spec.md). Pure: every entry and every value is
 * checked here, before anything is looked up or touched, and an error names
 * the file and the line of the entry or key.
 */

/** Keys a `[[vm]]` may set: what `create --template` takes. */
export const VM_ENTRY_KEYS = [
  'name',
  'template',
  'memory_mb',
  'vcpus',
  'disk_size_gb',
  'flatpak_packages',
  'auto_launch_apps',
  'label',
  'network_mode',
  'display',
  'on_stop',
] as const;

/** Keys a `[[template]]` may set: what `template import` takes, `import` being its DISK. */
export const TEMPLATE_ENTRY_KEYS = [
  'name',
  'import',
  'kernel',
  'initrd',
  'kernel_args',
  'memory_mb',
  'vcpus',
  'network_mode',
  'virt_type',
  'arch',
  'vm_dir',
] as const;

export interface ApplyEntry {
  kind: 'template' | 'vm';
  name: string;
  /** 1-based line of its `[[template]]`/`[[vm]]` header, when found. */
  line?: number;
  /** Checked values by config key (`import`, `kernel`, `initrd` absolute; `template` for a VM). */
  settings: Record<string, unknown>;
  /** Where each key was written, for messages about it later. */
  keyLines: Record<string, number | undefined>;
}

export interface ApplyFile {
  source: string;
  templates: ApplyEntry[];
  vms: ApplyEntry[];
}

/** `FILE:LINE` (or `FILE`) for messages. */
export function whereIn(source: string, line: number | undefined): string {
  return line === undefined ? describeSource(source) : `${describeSource(source)}:${line}`;
}

/** The header line and the line range of each `[[table]]` occurrence, in order. */
function tableBlocks(text: string, table: string): Array<{ start: number; end: number }> {
  const lines = text.split(/\r?\n/);
  const header = /^\s*\[\[?\s*([A-Za-z0-9_."'-]+)\s*\]\]?\s*(#.*)?$/;
  const blocks: Array<{ start: number; end: number }> = [];
  let open: { start: number; end: number } | undefined;
  lines.forEach((line, i) => {
    const m = header.exec(line);
    if (!m) return;
    if (open) open.end = i;
    open = undefined;
    const name = m[1]!.replace(/^["']|["']$/g, '');
    if (line.trim().startsWith('[[') && name === table) {
      open = { start: i + 1, end: lines.length };
      blocks.push(open);
    }
  });
  return blocks;
}

function keyLine(
  text: string,
  block: { start: number; end: number } | undefined,
  key: string,
): number | undefined {
  if (!block) return undefined;
  const lines = text.split(/\r?\n/);
  const k = key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = new RegExp(`^\\s*(?:${k}|"${k}"|'${k}')\\s*=`);
  for (let i = block.start; i < block.end; i++) if (pattern.test(lines[i] ?? '')) return i + 1;
  return undefined;
}

function checkEntry(
  kind: 'template' | 'vm',
  raw: unknown,
  text: string,
  source: string,
  block: { start: number; end: number } | undefined,
  baseDir: string,
  limits: ResourceLimits,
): ApplyEntry {
  const line = block?.start;
  const at = (key?: string): string => whereIn(source, key ? (keyLine(text, block, key) ?? line) : line);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new InputError(`${at()}: each ${kind} must be a table ([[${kind}]])`);
  }
  const allowed: readonly string[] = kind === 'vm' ? VM_ENTRY_KEYS : TEMPLATE_ENTRY_KEYS;
  const settings: Record<string, unknown> = {};
  const keyLines: Record<string, number | undefined> = {};
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    keyLines[key] = keyLine(text, block, key);
    if (!allowed.includes(key)) {
      throw new InputError(
        `${at(key)}: unknown key ${describeValue(key)} in a ${kind}: use ${allowed.join(', ')} (docs/apply.md)`,
      );
    }
    try {
      settings[key] = checkValue(key, value, baseDir, limits);
    } catch (err) {
      if (err instanceof InputError) throw new InputError(`${at(key)}: ${key}: ${err.message}`);
      throw err;
    }
  }
  if (settings.name === undefined) throw new InputError(`${at()}: this ${kind} has no name`);
  if (kind === 'vm' && settings.template === undefined) {
    throw new InputError(
      `${at()}: vm '${String(settings.name)}' names no template: apply makes app VMs on templates (template = "NAME")`,
    );
  }
  if (kind === 'template') {
    if ((settings.kernel === undefined) !== (settings.initrd === undefined)) {
      throw new InputError(`${at()}: template '${String(settings.name)}': kernel and initrd go together`);
    }
    if (settings.kernel_args !== undefined && settings.kernel === undefined) {
      throw new InputError(
        `${at('kernel_args')}: template '${String(settings.name)}': kernel_args needs kernel`,
      );
    }
    if (settings.import === undefined && settings.kernel !== undefined) {
      throw new InputError(`${at('kernel')}: template '${String(settings.name)}': kernel needs import`);
    }
  }
  return { kind, name: settings.name as string, ...(line !== undefined ? { line } : {}), settings, keyLines };
}

function checkValue(key: string, value: unknown, baseDir: string, limits: ResourceLimits): unknown {
  switch (key) {
    case 'name':
    case 'template':
      return validateVmName(value);
    case 'import':
    case 'kernel':
    case 'initrd':
      // Relative to the file, as a --config file's paths would be to the shell's directory.
      return validateHostPath(
        `${key} file`,
        typeof value === 'string' ? path.resolve(baseDir, value) : value,
      );
    case 'kernel_args':
      return validateKernelArgs(value);
    default: {
      const def = TOML_KEYS[key]!;
      return def.check(value, { ...limits, minMemoryMb: NO_INSTALLER_MIN_MEMORY_MB });
    }
  }
}

/**
 * Reads an apply file: only `[[template]]` and `[[vm]]` tables, every key
 * known and every value valid, names unique across both kinds. `baseDir`
 * resolves relative paths (the file's own directory).
 */
export function parseApplyFile(
  text: string,
  source: string,
  baseDir: string,
  limits: ResourceLimits = {},
): ApplyFile {
  const doc = parseTomlText(text.startsWith('\ufeff') ? text.slice(1) : text, source);
  const body = text.startsWith('\ufeff') ? text.slice(1) : text;
  for (const key of Object.keys(doc)) {
    if (key !== 'template' && key !== 'vm') {
      const line = body
        .split(/\r?\n/)
        .findIndex((l) => new RegExp(`^\\s*\\[*\\s*${key.replace(/\W/g, '\\$&')}\\b`).test(l));
      throw new InputError(
        `${whereIn(source, line < 0 ? undefined : line + 1)}: unknown key or table ${describeValue(key)}: an apply file holds [[template]] and [[vm]] tables (docs/apply.md)`,
      );
    }
  }
  const read = (kind: 'template' | 'vm'): ApplyEntry[] => {
    const raw = doc[kind];
    if (raw === undefined) return [];
    const blocks = tableBlocks(body, kind);
    if (!Array.isArray(raw)) {
      throw new InputError(
        `${whereIn(source, blocks[0]?.start)}: ${kind} must be an array of tables ([[${kind}]])`,
      );
    }
    return raw.map((entry, i) => checkEntry(kind, entry, body, source, blocks[i], baseDir, limits));
  };
  const templates = read('template');
  const vms = read('vm');
  const seen = new Map<string, ApplyEntry>();
  for (const entry of [...templates, ...vms]) {
    const first = seen.get(entry.name);
    if (first) {
      throw new InputError(
        `${whereIn(source, entry.line)}: the name '${entry.name}' is already used by the ${first.kind} at line ${first.line ?? '?'}`,
      );
    }
    seen.set(entry.name, entry);
  }
  for (const vm of vms) {
    if (vms.some((v) => v.name === vm.settings.template)) {
      throw new InputError(
        `${whereIn(source, vm.keyLines.template ?? vm.line)}: vm '${vm.name}': '${String(vm.settings.template)}' is a vm in this file, not a template`,
      );
    }
  }
  return { source, templates, vms };
}
