import { InputError } from '../util/errors.js';
import { isSupportedRelease, FEDORA_RELEASES } from '../spec/releases.js';
import type { VmSpec } from '../spec/types.js';

/**
 * Strict grammars for every value that reaches generated text (kickstart,
 * units, i3 config, LightDM config). The spec is validated upstream; the
 * renderers check again here so that no path into a guest skips the check.
 * Each failure is one line naming the value and the rule.
 */

function fail(what: string, value: unknown, rule: string): never {
  const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
  throw new InputError(`invalid ${what} ${shown}: ${rule}`);
}

/** VM names double as guest hostnames, so they follow the hostname label rule. */
export const VM_NAME_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
export function checkVmName(name: string): string {
  if (!VM_NAME_RE.test(name)) {
    fail('VM name', name, 'must be 1-63 of a-z, 0-9 and "-", not starting or ending with "-"');
  }
  return name;
}

/** dnf package specs: names, name-version, `@group` and `@^environment`; never `-name` (an exclusion). */
export const PACKAGE_RE = /^(?:@\^?)?[A-Za-z0-9][A-Za-z0-9._+:-]{0,199}$/;
export function checkPackage(pkg: string): string {
  if (!PACKAGE_RE.test(pkg)) {
    fail(
      'system package',
      pkg,
      'must be a dnf package name or @group (letters, digits, . _ + : -), not starting with "-"',
    );
  }
  return pkg;
}

/** Flatpak application IDs: at least three dot-separated parts; only the last may contain "-". */
export const FLATPAK_ID_RE = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+\.[A-Za-z_][A-Za-z0-9_-]*$/;
export function checkFlatpakId(id: string): string {
  if (id.length > 255 || !FLATPAK_ID_RE.test(id)) {
    fail(
      'Flatpak ID',
      id,
      'must be a reverse-DNS application ID like org.mozilla.firefox (at most 255 characters)',
    );
  }
  return id;
}

/**
 * Auto-launch commands: words separated by single spaces, drawn from a set
 * that needs no quoting in a shell, a systemd unit or an i3 config (no `%`,
 * `$`, quotes, backslashes or `;`).
 */
const COMMAND_HEAD_RE = /^(?:(?:\/[A-Za-z0-9_.+-]+)+|[A-Za-z0-9_][A-Za-z0-9_.+-]*)$/;
const COMMAND_ARG_RE = /^[A-Za-z0-9_./:=,@+-]+$/;
export function checkCommand(command: string): string[] {
  const words = command.split(' ');
  const rule =
    'must be a program name or absolute path followed by arguments of letters, digits and _ . / : = , @ + - separated by single spaces';
  if (command.length === 0 || command.length > 512 || words.some((w) => w.length === 0)) {
    fail('auto-launch command', command, rule);
  }
  const [head, ...args] = words as [string, ...string[]];
  if (!COMMAND_HEAD_RE.test(head) || head.includes('/.') || !args.every((a) => COMMAND_ARG_RE.test(a))) {
    fail('auto-launch command', command, rule);
  }
  return words;
}

const IPV4_RE = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const HOSTNAME_RE =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
export function checkHost(host: string, what = 'proxy host'): string {
  if (!IPV4_RE.test(host) && !HOSTNAME_RE.test(host)) {
    fail(what, host, 'must be an IPv4 address or a DNS hostname');
  }
  return host;
}

export function checkPort(port: number, what = 'proxy port'): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    fail(what, port, 'must be an integer from 1 to 65535');
  return port;
}

/** SHA-512 crypt, as `openssl passwd -6` / crypt(3) write it. */
export const SHA512_CRYPT_RE = /^\$6\$(rounds=\d+\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}$/;
export function checkPasswordHash(hash: string): string {
  // The hash itself is secret-adjacent: name the rule, never echo the value.
  if (!SHA512_CRYPT_RE.test(hash)) {
    throw new InputError(
      'invalid password hash: must be a SHA-512 crypt hash ($6$[rounds=N$]salt$86 characters)',
    );
  }
  return hash;
}

/** Agent secrets are random tokens (hex, base64 or base64url); never echoed in errors. */
export const AGENT_SECRET_RE = /^[A-Za-z0-9+/=_-]{16,512}$/;
export function checkAgentSecret(secret: string): string {
  if (!AGENT_SECRET_RE.test(secret)) {
    throw new InputError('invalid agent secret: must be 16-512 characters of A-Z a-z 0-9 + / = _ -');
  }
  return secret;
}

export const ABSOLUTE_PATH_RE = /^(?:\/[A-Za-z0-9_][A-Za-z0-9._-]*)+$/;
export function checkAbsolutePath(p: string, what: string): string {
  if (!ABSOLUTE_PATH_RE.test(p) || p.length > 1024) {
    fail(what, p, 'must be an absolute path of letters, digits and . _ - (no "..")');
  }
  return p;
}

/** Install trees: http(s)/ftp URLs whose characters need no quoting in a kickstart command line. */
export const INSTALL_TREE_RE =
  /^(?:https?|ftp):\/\/[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})(?::\d{1,5})?(?:\/[A-Za-z0-9._~%+-]*)*$/;
export function checkInstallTree(url: string): string {
  if (!INSTALL_TREE_RE.test(url) || url.length > 2048) {
    fail(
      'install tree URL',
      url,
      'must be an http(s) or ftp URL of letters, digits and . _ ~ % + - / (no query string)',
    );
  }
  return url;
}

/**
 * Firewall rules, in the predecessor's iptables-like form, e.g.
 * `OUTPUT -p tcp --dport 443 -j ACCEPT`. Only this small subset is accepted,
 * so each rule maps one-to-one onto a firewalld direct rule.
 */
export interface FirewallRule {
  chain: 'INPUT' | 'OUTPUT' | 'FORWARD';
  args: string[];
}
const CIDR_RE =
  /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}(?:\/(?:3[0-2]|[12]?\d))?$/;
export function checkFirewallRule(rule: string): FirewallRule {
  const why =
    'must be "INPUT|OUTPUT|FORWARD [-p tcp|udp|icmp] [-s|-d IPv4[/len]] [--sport|--dport PORT] -j ACCEPT|DROP|REJECT"';
  const words = rule.split(' ');
  const chain = words.shift();
  if (chain !== 'INPUT' && chain !== 'OUTPUT' && chain !== 'FORWARD') fail('firewall rule', rule, why);
  const args: string[] = [];
  let proto: string | undefined;
  let target: string | undefined;
  while (words.length > 0) {
    const opt = words.shift();
    const val = words.shift();
    if (val === undefined || target !== undefined) fail('firewall rule', rule, why);
    if (opt === '-p' && /^(?:tcp|udp|icmp)$/.test(val) && proto === undefined) proto = val;
    else if ((opt === '-s' || opt === '-d') && CIDR_RE.test(val)) {
      /* address match */
    } else if (
      (opt === '--sport' || opt === '--dport') &&
      /^\d{1,5}$/.test(val) &&
      Number(val) >= 1 &&
      Number(val) <= 65535
    ) {
      if (proto !== 'tcp' && proto !== 'udp')
        fail('firewall rule', rule, 'a port match needs "-p tcp" or "-p udp" before it');
    } else if (opt === '-j' && /^(?:ACCEPT|DROP|REJECT)$/.test(val)) target = val;
    else fail('firewall rule', rule, why);
    args.push(opt as string, val);
  }
  if (target === undefined) fail('firewall rule', rule, why);
  return { chain, args };
}

/**
 * Re-checks every spec field that reaches generated text. Numbers that only
 * reach the domain XML are not the renderers' business.
 */
export function checkSpecForGuest(spec: VmSpec): void {
  checkVmName(spec.name);
  if (!isSupportedRelease(spec.fedoraRelease)) {
    fail('Fedora release', spec.fedoraRelease, `must be one of ${FEDORA_RELEASES.join(', ')}`);
  }
  if (spec.arch !== 'x86_64' && spec.arch !== 'aarch64')
    fail('architecture', spec.arch, 'must be x86_64 or aarch64');
  spec.systemPackages.forEach(checkPackage);
  spec.flatpakPackages.forEach(checkFlatpakId);
  spec.autoLaunchApps.forEach(checkCommand);
  spec.firewallRules.forEach(checkFirewallRule);
}
