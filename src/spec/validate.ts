import net from 'node:net';
import path from 'node:path';
import { InputError } from '../util/errors.js';
import {
  HARD_MAX_MEMORY_MB,
  HARD_MAX_VCPUS,
  MAX_DISK_GB,
  MIN_DISK_GB,
  MIN_MEMORY_MB,
  MIN_VCPUS,
} from './defaults.js';
import { FEDORA_RELEASES, isSupportedRelease } from './releases.js';
import type {
  Arch,
  DisplayMode,
  GraphicsBackend,
  Label,
  NetworkMode,
  OnStop,
  VirtType,
  VmSpec,
} from './types.js';

/**
 * One validator per grammar. Each takes an untrusted value (a flag, a TOML
 * field), returns it normalised, or throws an InputError whose one-line
 * message names the value and the rule. Every value that reaches a
 * kickstart, a unit file, domain XML or a command line passes one of these
 * first; the grammars are deliberately narrower than what the consumers
 * accept, so that no quoting mistake downstream can turn data into code.
 * docs/spec.md documents each grammar.
 */

const MAX_SHOWN = 40;

/**
 * Renders an untrusted value for an error message: pure printable ASCII, one
 * line, at most ~50 characters. Control characters and every non-ASCII code
 * point are shown as \u escapes, so a Cyrillic look-alike or a zero-width
 * space is visible instead of silently resembling the intended text.
 */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') {
    const chars = Array.from(value);
    const shown = chars.slice(0, MAX_SHOWN).map(escapeChar).join('');
    const more = chars.length > MAX_SHOWN ? `..." (${chars.length} characters)` : '"';
    return `"${shown}${more}`;
  }
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') {
    return String(value);
  }
  if (value === undefined || value === null) return 'nothing';
  if (Array.isArray(value)) return `a list of ${value.length}`;
  if (value instanceof Date) return 'a date';
  return `a ${typeof value}`;
}

function escapeChar(ch: string): string {
  const code = ch.codePointAt(0) ?? 0;
  if (ch === '"' || ch === '\\') return `\\${ch}`;
  if (code >= 0x20 && code < 0x7f) return ch;
  if (ch === '\n') return '\\n';
  if (ch === '\t') return '\\t';
  if (ch === '\r') return '\\r';
  return code > 0xffff ? `\\u{${code.toString(16)}}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

function invalid(what: string, value: unknown, rule: string): InputError {
  return new InputError(`invalid ${what} ${describeValue(value)}: ${rule}`);
}

function requireString(what: string, value: unknown): string {
  if (typeof value !== 'string') throw invalid(what, value, 'must be a string');
  return value;
}

/** Yargs turns a repeated single-value flag into an array; refuse that instead of picking one. */
export function singleValue<T>(flag: string, value: T | T[]): T {
  if (Array.isArray(value)) {
    throw new InputError(`option --${flag} was given ${value.length} times; give it once`);
  }
  return value;
}

// ---------------------------------------------------------------- names

const VM_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
export const VM_NAME_RULE =
  "use 1-63 characters from a-z, 0-9 and '-', starting and ending with a letter or digit";

/**
 * Names that fit the grammar but are not VMs: `vm-passwords.toml` in the
 * config directory is the predecessor's plaintext password file, so a VM of
 * that name would be listed, read, overwritten and deleted in its place.
 * `defaults.toml` there is the user's defaults file (spec/defaults-file.ts).
 */
export const RESERVED_VM_NAMES: ReadonlyMap<string, string> = new Map([
  ['vm-passwords', "is reserved: vm-passwords.toml is the predecessor's password file, not a VM"],
  ['defaults', 'is reserved: defaults.toml is your defaults file, not a VM'],
]);

/** A libvirt domain name that is also a valid hostname label and a safe file name. */
export function validateVmName(value: unknown): string {
  const name = requireString('VM name', value);
  if (!VM_NAME.test(name)) throw invalid('VM name', value, VM_NAME_RULE);
  const reserved = RESERVED_VM_NAMES.get(name);
  if (reserved !== undefined) throw invalid('VM name', value, `${reserved}; choose another name`);
  return name;
}

// ---------------------------------------------------------------- Flatpak

const FLATPAK_RULE = 'see Flatpak application ID rules, e.g. org.mozilla.firefox';

/**
 * Flatpak's own flatpak_is_valid_name(): 3+ elements separated by '.', each of
 * [A-Za-z0-9_] not starting with a digit, '-' allowed only in the last
 * element, at most 255 characters.
 */
export function validateFlatpakId(value: unknown): string {
  const id = requireString('Flatpak ID', value);
  const fail = (why: string): InputError => invalid('Flatpak ID', value, `${why} (${FLATPAK_RULE})`);
  if (id.length === 0) throw fail('is empty');
  if (id.length > 255) throw fail('is longer than 255 characters');
  const elements = id.split('.');
  if (elements.length < 3) throw fail('needs at least 3 dot-separated elements');
  elements.forEach((element, i) => {
    const last = i === elements.length - 1;
    if (element.length === 0) throw fail('has an empty element');
    const pattern = last ? /^[A-Za-z_-][A-Za-z0-9_-]*$/ : /^[A-Za-z_][A-Za-z0-9_]*$/;
    if (pattern.test(element)) return;
    if (!last && element.includes('-')) throw fail("only the last element may contain '-'");
    if (/^[0-9]/.test(element)) throw fail('an element may not start with a digit');
    throw fail("elements may only contain A-Z, a-z, 0-9, '_' (and '-' in the last)");
  });
  return id;
}

// ---------------------------------------------------------------- dnf

const PACKAGE_NAME = /^[A-Za-z0-9_+][A-Za-z0-9_.+:~^*?-]*$/;
const PACKAGE_GROUP = /^@\^?[A-Za-z0-9_][A-Za-z0-9_.+-]*$/;
export const MAX_PACKAGE_SPEC_LENGTH = 200;
const PACKAGE_RULE =
  'use a dnf package name or version glob (A-Z a-z 0-9 and _ . + : ~ ^ - * ?, not starting with' +
  " '-'), @group-id or @^environment-id; no spaces, quotes or shell/kickstart characters";

/** One entry of the kickstart %packages section: a package (glob), @group or @^environment. */
export function validatePackageSpec(value: unknown): string {
  const spec = requireString('package spec', value);
  if (spec.length > MAX_PACKAGE_SPEC_LENGTH) {
    throw invalid('package spec', value, `is longer than ${MAX_PACKAGE_SPEC_LENGTH} characters`);
  }
  const ok = spec.startsWith('@') ? PACKAGE_GROUP.test(spec) : PACKAGE_NAME.test(spec);
  if (!ok) throw invalid('package spec', value, PACKAGE_RULE);
  return spec;
}

// ---------------------------------------------------------------- numbers

/**
 * A whole number from a flag (string) or TOML (number/bigint). Strings must be
 * plain decimal digits: no sign, exponent, hex, spaces or units, so "4g" or
 * "1e3" is refused rather than guessed at. `shown` is the value as the user
 * wrote it (a TOML file's source text): the parsed value can differ, since
 * @iarna/toml wraps integers past 64 bits (2^64+4096 parses as 4096n).
 */
export function parseWholeNumber(what: string, value: unknown, unit = '', shown?: string): number {
  const suffix = unit ? ` ${unit}` : '';
  const bad = (rule: string): InputError =>
    new InputError(`invalid ${what} ${shown ?? describeValue(value)}: ${rule}`);
  if (typeof value === 'bigint') {
    throw bad(`is far too large${suffix ? ` (in${suffix})` : ''}`);
  }
  if (typeof value === 'string') {
    if (!/^[0-9]{1,15}$/.test(value)) throw bad(`must be a whole number${suffix ? ` of${suffix}` : ''}`);
    return Number(value);
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || !Number.isInteger(value)) {
      throw bad(`must be a whole number${suffix ? ` of${suffix}` : ''}`);
    }
    if (!Number.isSafeInteger(value)) throw bad('is far too large');
    return value;
  }
  throw bad(`must be a whole number${suffix ? ` of${suffix}` : ''}`);
}

export interface ResourceLimits {
  /** Lift the host-derived maximums (never the hard caps or the minimums). */
  force?: boolean;
  /** This host's RAM in MiB; without it only the hard cap applies. */
  hostMb?: number;
  /** This host's logical CPU count; without it only the hard cap applies. */
  hostCpus?: number;
  /** The memory floor: the installer's (the default) or, where no installer runs, NO_INSTALLER_MIN_MEMORY_MB. */
  minMemoryMb?: number;
}

function checkRange(
  what: string,
  n: number,
  unit: string,
  min: number,
  minWhy: string,
  hardMax: number,
  hostMax: number | undefined,
  hostWhat: string,
  force: boolean,
  shown?: string,
): number {
  const u = unit ? ` ${unit}` : '';
  const v = shown ?? String(n);
  if (n < min) throw new InputError(`invalid ${what} ${v}${u}: must be at least ${min}${u} (${minWhy})`);
  if (n > hardMax)
    throw new InputError(`invalid ${what} ${v}${u}: must be at most ${hardMax}${u}, even with --force`);
  if (!force && hostMax !== undefined && n > hostMax) {
    throw new InputError(
      `invalid ${what} ${v}${u}: more than this host's ${hostMax}${u} ${hostWhat}; use --force to allow it`,
    );
  }
  return n;
}

/** `shown`, here and below: the value as written, for the message (see parseWholeNumber). */
export function validateMemoryMb(value: unknown, limits: ResourceLimits = {}, shown?: string): number {
  const n = parseWholeNumber('memory', value, 'MiB', shown);
  const hostMax = limits.hostMb === undefined ? undefined : Math.floor(limits.hostMb);
  return checkRange(
    'memory',
    n,
    'MiB',
    limits.minMemoryMb ?? MIN_MEMORY_MB,
    (limits.minMemoryMb ?? MIN_MEMORY_MB) < MIN_MEMORY_MB
      ? 'the smallest guest that boots'
      : 'the Fedora installer needs it; an imported VM or one on a template may have less',
    HARD_MAX_MEMORY_MB,
    hostMax,
    'of RAM',
    limits.force ?? false,
    shown,
  );
}

export function validateVcpus(value: unknown, limits: ResourceLimits = {}, shown?: string): number {
  const n = parseWholeNumber('vCPU count', value, '', shown);
  return checkRange(
    'vCPU count',
    n,
    '',
    MIN_VCPUS,
    'a VM needs a CPU',
    HARD_MAX_VCPUS,
    limits.hostCpus,
    'CPUs',
    limits.force ?? false,
    shown,
  );
}

/** Disks are sparse, so the host's free space is not checked; see MAX_DISK_GB. */
export function validateDiskGb(value: unknown, _limits: ResourceLimits = {}, shown?: string): number {
  const n = parseWholeNumber('disk size', value, 'GB', shown);
  return checkRange(
    'disk size',
    n,
    'GB',
    MIN_DISK_GB,
    'Fedora, i3 and a Flatpak runtime need it',
    MAX_DISK_GB,
    undefined,
    '',
    false,
    shown,
  );
}

export function validateFedoraRelease(value: unknown, shown?: string): number {
  const n = parseWholeNumber('Fedora release', value, '', shown);
  if (!isSupportedRelease(n)) {
    throw new InputError(
      `invalid Fedora release ${shown ?? describeValue(value)}: supported releases are ${FEDORA_RELEASES.join(', ')}`,
    );
  }
  return n;
}

// ---------------------------------------------------------------- enums

function oneOf<T extends string>(what: string, allowed: readonly T[]) {
  return (value: unknown): T => {
    if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
    throw invalid(what, value, `must be one of ${allowed.join(', ')}`);
  };
}

export const ARCHES: readonly Arch[] = ['x86_64', 'aarch64'];
export const VIRT_TYPES: readonly VirtType[] = ['kvm', 'qemu'];
export const GRAPHICS_BACKENDS: readonly GraphicsBackend[] = ['virtio', 'qxl'];
export const NETWORK_MODES: readonly NetworkMode[] = ['default', 'user', 'none'];

export const validateArch = oneOf('architecture', ARCHES);
export const validateVirtType = oneOf('virtualisation type', VIRT_TYPES);
export const validateGraphicsBackend = oneOf('graphics backend', GRAPHICS_BACKENDS);
export const validateNetworkMode = oneOf('network mode', NETWORK_MODES);
export const ON_STOP_MODES: readonly OnStop[] = ['save', 'shutdown'];
export const validateOnStop = oneOf('on_stop', ON_STOP_MODES);
export const LABELS: readonly Label[] = [
  'red',
  'orange',
  'yellow',
  'green',
  'blue',
  'purple',
  'gray',
  'black',
];
export const DEFAULT_LABEL: Label = 'gray';
export const validateLabel = oneOf('label', LABELS);
export const DISPLAY_MODES: readonly DisplayMode[] = ['spice', 'seamless'];
export const DEFAULT_DISPLAY: DisplayMode = 'spice';
export const validateDisplay = oneOf('display', DISPLAY_MODES);

export function validateBoolean(what: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw invalid(what, value, 'must be true or false');
  return value;
}

/** Preloaded disposables kept per template (`disposable_preload`): each holds a running guest's memory. */
export const MAX_DISPOSABLE_PRELOAD = 4;
export const DEFAULT_DISPOSABLE_PRELOAD = 1;

export function validateDisposablePreload(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_DISPOSABLE_PRELOAD) {
    throw invalid('disposable_preload', value, `must be a whole number from 0 to ${MAX_DISPOSABLE_PRELOAD}`);
  }
  return value;
}

// ---------------------------------------------------------------- paths and URLs

const PATH_SEGMENT = /^[A-Za-z0-9_.+@,=~-]+$/;
export const MAX_PATH_LENGTH = 1024;
const PATH_RULE =
  "must be an absolute path of letters, digits and _ . + @ , = ~ - (no spaces, quotes or '..')";

/**
 * An absolute host path that reaches domain XML and command lines (vm_dir,
 * --output, --import). Spaces and shell characters are refused, not escaped:
 * libvirt, qemu-img and virsh each quote differently.
 */
export function validateHostPath(what: string, value: unknown): string {
  const p = requireString(what, value);
  if (p.length > MAX_PATH_LENGTH) throw invalid(what, value, `is longer than ${MAX_PATH_LENGTH} characters`);
  if (!path.isAbsolute(p)) throw invalid(what, value, PATH_RULE);
  const segments = p.split('/').filter((s) => s !== '');
  for (const segment of segments) {
    if (segment === '..' || segment === '.' || !PATH_SEGMENT.test(segment) || segment.startsWith('-')) {
      throw invalid(what, value, PATH_RULE);
    }
  }
  return p === '/' ? p : `/${segments.join('/')}`;
}

/**
 * A direct-boot kernel command line (`create --import --kernel-args`): words
 * separated by single spaces, from a set that needs no quoting anywhere it
 * goes (domain XML, logs, a shell). No quotes, `$`, `\\`, `;` or newlines.
 */
const KERNEL_ARGS = /^[A-Za-z0-9_.,:/=+@-]+(?: [A-Za-z0-9_.,:/=+@-]+)*$/;
export const MAX_KERNEL_ARGS_LENGTH = 1024;
export function validateKernelArgs(value: unknown): string {
  const args = requireString('--kernel-args', value);
  if (args.length > MAX_KERNEL_ARGS_LENGTH || !KERNEL_ARGS.test(args)) {
    throw invalid(
      '--kernel-args',
      value,
      `use up to ${MAX_KERNEL_ARGS_LENGTH} characters: words of A-Z a-z 0-9 _ . , : / = + @ - separated by single spaces`,
    );
  }
  return args;
}

export function validateVmDir(value: unknown): string {
  return validateHostPath('VM directory', value);
}

const URI_CHARS = /^[A-Za-z0-9._~@:/?=&+,%-]+$/;

/** A libvirt connection URI such as qemu:///system or qemu+ssh://user@host/system. */
export function validateConnectUri(value: unknown): string {
  const uri = requireString('libvirt URI', value);
  const rule = 'must look like driver[+transport]://[user@host]/path, e.g. qemu:///system, without spaces';
  if (uri.length > 512) throw invalid('libvirt URI', value, 'is longer than 512 characters');
  if (!/^[a-z][a-z0-9]*(?:\+[a-z0-9]+)?:\/\//.test(uri) || !URI_CHARS.test(uri)) {
    throw invalid('libvirt URI', value, rule);
  }
  if (/%(?![0-9A-Fa-f]{2})/.test(uri)) throw invalid('libvirt URI', value, rule);
  return uri;
}

const URL_CHARS = /^[A-Za-z0-9._~:/?@&+,=-]+$/;

/** An install-tree URL (virt-install --location, kickstart `url --url=`). */
export function validateLocationUrl(value: unknown): string {
  const url = requireString('install location', value);
  const rule =
    'must be an http://, https:// or ftp:// URL of letters, digits and . _ ~ : / ? @ & + , = - %XX';
  if (url.length > 1024) throw invalid('install location', value, 'is longer than 1024 characters');
  const unescaped = url.replace(/%[0-9A-Fa-f]{2}/g, '');
  if (!URL_CHARS.test(unescaped)) throw invalid('install location', value, rule);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalid('install location', value, rule);
  }
  if (!['http:', 'https:', 'ftp:'].includes(parsed.protocol) || parsed.hostname === '') {
    throw invalid('install location', value, rule);
  }
  return url;
}

// ---------------------------------------------------------------- commands

const COMMAND_WORD = /^[A-Za-z0-9_@+=:,./~-]+$/;
// An absolute path's segments follow the program-name rule (docs/spec.md), which
// also keeps out `.` and `..`: `/bin/../bin/sh` must not pass for a plain path.
const PROGRAM = /^(?:(?:\/[A-Za-z0-9_][A-Za-z0-9_.+-]*)+|[A-Za-z0-9_][A-Za-z0-9_.+-]*)$/;
export const MAX_COMMAND_LENGTH = 1024;
const COMMAND_RULE =
  'use a program name or an absolute path whose segments are such names (no . or .., at most 255 characters), then arguments of A-Z a-z 0-9 and _ @ + = : , . / ~ -, ' +
  'separated by single spaces (no quotes, $, %, ;, |, &, <, >, backslashes or control characters)';

/**
 * An auto-launch command. It becomes a systemd unit's ExecStart= and may be
 * written by a kickstart %post script, so it is a plain word list: no shell
 * syntax, no systemd specifiers (%) or variables ($), and the program may not
 * start with one of ExecStart's prefix characters (@ - : + !).
 */
export function validateAutostartCommand(value: unknown): string {
  const cmd = requireString('auto-launch command', value);
  if (cmd.length > MAX_COMMAND_LENGTH) {
    throw invalid('auto-launch command', value, `is longer than ${MAX_COMMAND_LENGTH} characters`);
  }
  const words = cmd.split(' ');
  const [program, ...args] = words;
  if (
    program === undefined ||
    program.length > 255 ||
    !PROGRAM.test(program) ||
    args.some((w) => !COMMAND_WORD.test(w))
  ) {
    throw invalid('auto-launch command', value, COMMAND_RULE);
  }
  if (words.length > 64) throw invalid('auto-launch command', value, 'has more than 64 words');
  return cmd;
}

// ---------------------------------------------------------------- firewall

const FIREWALL_RULE =
  'use "INPUT|OUTPUT [-p tcp|udp|icmp|all] [-s ADDR[/N]] [-d ADDR[/N]] [--sport P[:P]] ' +
  '[--dport P[:P]] -j ACCEPT|DROP|REJECT", single spaces, each option once';

function validPort(p: string): boolean {
  if (!/^[0-9]{1,5}$/.test(p)) return false;
  const n = Number(p);
  return n >= 1 && n <= 65535;
}

function validPortRange(v: string): boolean {
  const parts = v.split(':');
  if (parts.length > 2 || !parts.every(validPort)) return false;
  return parts.length === 1 || Number(parts[0]) <= Number(parts[1]);
}

/** 4 or 6 for a valid ADDR[/N], else 0. */
function addressFamily(v: string): 0 | 4 | 6 {
  const [addr, prefix, ...rest] = v.split('/');
  if (rest.length > 0 || addr === undefined) return 0;
  const family =
    /^[0-9.]+$/.test(addr) && net.isIPv4(addr) ? 4 : /^[0-9A-Fa-f:]+$/.test(addr) && net.isIPv6(addr) ? 6 : 0;
  if (family === 0) return 0;
  if (prefix === undefined) return family;
  if (!/^[0-9]{1,3}$/.test(prefix)) return 0;
  return Number(prefix) <= (family === 4 ? 32 : 128) ? family : 0;
}

/**
 * A guest firewall rule in the predecessor's iptables-like form, e.g.
 * "OUTPUT -p tcp --dport 443 -j ACCEPT". Only this small option set is
 * accepted; the renderer translates it, so nothing here is passed through raw.
 */
export function validateFirewallRule(value: unknown): string {
  const rule = requireString('firewall rule', value);
  const fail = (why?: string): InputError =>
    invalid('firewall rule', value, why ? `${why}; ${FIREWALL_RULE}` : FIREWALL_RULE);
  if (rule.length > 256) throw fail('is longer than 256 characters');
  const [chain, ...rest] = rule.split(' ');
  if (chain !== 'INPUT' && chain !== 'OUTPUT') throw fail();
  if (rest.length % 2 !== 0) throw fail();
  const seen = new Map<string, string>();
  for (let i = 0; i < rest.length; i += 2) {
    const option = rest[i] as string;
    const arg = rest[i + 1] as string;
    if (seen.has(option)) throw fail(`${option} given twice`);
    let ok: boolean;
    switch (option) {
      case '-p':
        ok = ['tcp', 'udp', 'icmp', 'all'].includes(arg);
        break;
      case '-s':
      case '-d':
        ok = addressFamily(arg) !== 0;
        break;
      case '--sport':
      case '--dport': {
        const proto = seen.get('-p');
        if (proto !== 'tcp' && proto !== 'udp') throw fail(`${option} needs -p tcp or -p udp before it`);
        ok = validPortRange(arg);
        break;
      }
      case '-j':
        ok = ['ACCEPT', 'DROP', 'REJECT'].includes(arg);
        break;
      default:
        ok = false;
    }
    if (!ok) throw fail();
    seen.set(option, arg);
  }
  if (!seen.has('-j')) throw fail('no -j target');
  // One firewalld direct rule has one family. Checked here, not only by the
  // renderer, so that a --config file's rule is refused with its file:line.
  const families = new Set(['-s', '-d'].flatMap((o) => (seen.has(o) ? [addressFamily(seen.get(o)!)] : [])));
  if (families.size > 1) throw fail('must not mix IPv4 and IPv6 addresses');
  if (seen.get('-p') === 'icmp' && families.has(6)) {
    throw fail('-p icmp matches IPv4 only; it cannot take an IPv6 address');
  }
  return rule;
}

// ---------------------------------------------------------------- lists and whole specs

export const MAX_LIST_LENGTH = {
  systemPackages: 500,
  flatpakPackages: 100,
  autoLaunchApps: 32,
  firewallRules: 200,
} as const;

/** Validates each element of a list with `check`; refuses non-lists and over-long lists. */
export function validateList<T>(what: string, value: unknown, max: number, check: (v: unknown) => T): T[] {
  if (!Array.isArray(value)) throw invalid(what, value, 'must be a list');
  if (value.length > max) throw invalid(what, value, `may hold at most ${max} entries`);
  return value.map((v) => check(v));
}

/**
 * Checks every field of a complete spec (used before a spec is written and
 * after one is read). Returns a normalised copy; unknown properties are dropped.
 */
export function validateSpec(spec: VmSpec, limits: ResourceLimits = {}): VmSpec {
  return {
    name: validateVmName(spec.name),
    memoryMb: validateMemoryMb(spec.memoryMb, limits),
    vcpus: validateVcpus(spec.vcpus, limits),
    diskSizeGb: validateDiskGb(spec.diskSizeGb, limits),
    vmDir: validateVmDir(spec.vmDir),
    systemPackages: validateList(
      'system package list',
      spec.systemPackages,
      MAX_LIST_LENGTH.systemPackages,
      validatePackageSpec,
    ),
    flatpakPackages: validateList(
      'Flatpak list',
      spec.flatpakPackages,
      MAX_LIST_LENGTH.flatpakPackages,
      validateFlatpakId,
    ),
    autoLaunchApps: validateList(
      'auto-launch list',
      spec.autoLaunchApps,
      MAX_LIST_LENGTH.autoLaunchApps,
      validateAutostartCommand,
    ),
    graphicsBackend: validateGraphicsBackend(spec.graphicsBackend),
    enableClipboard: validateBoolean('enable_clipboard', spec.enableClipboard),
    enableAudio: validateBoolean('enable_audio', spec.enableAudio),
    enableUsbPassthrough: validateBoolean('enable_usb_passthrough', spec.enableUsbPassthrough),
    enableAutoLogin: validateBoolean('enable_auto_login', spec.enableAutoLogin),
    networkMode: validateNetworkMode(spec.networkMode),
    firewallRules: validateList(
      'firewall rule list',
      spec.firewallRules,
      MAX_LIST_LENGTH.firewallRules,
      validateFirewallRule,
    ),
    fedoraRelease: validateFedoraRelease(spec.fedoraRelease),
    arch: validateArch(spec.arch),
    virtType: validateVirtType(spec.virtType),
    ...(spec.template !== undefined ? { template: validateVmName(spec.template) } : {}),
    ...(spec.onStop !== undefined ? { onStop: validateOnStop(spec.onStop) } : {}),
    ...(spec.label !== undefined ? { label: validateLabel(spec.label) } : {}),
    ...(spec.display !== undefined ? { display: validateDisplay(spec.display) } : {}),
  };
}
