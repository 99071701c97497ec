import { isIPv6 } from 'node:net';
import { InputError } from '../util/errors.js';
import { isSupportedRelease, FEDORA_RELEASES } from '../spec/releases.js';
import {
  describeValue,
  validateAutostartCommand,
  validateFirewallRule,
  validateFlatpakId,
  validateLocationUrl,
  validatePackageSpec,
  validateVmName,
} from '../spec/validate.js';
import type { VmSpec } from '../spec/types.js';

/**
 * Strict grammars for every value that reaches generated text (kickstart,
 * units, i3 config, LightDM config). The spec is validated upstream; the
 * renderers check again here so that no path into a guest skips the check.
 * Each failure is one line naming the value and the rule.
 */

function fail(what: string, value: unknown, rule: string): never {
  throw new InputError(`invalid ${what} ${describeValue(value)}: ${rule}`);
}

/**
 * The spec's own grammars (src/spec/validate.ts) are applied again here, not
 * copied: one grammar, checked at the CLI boundary and again at the text.
 */
export function checkVmName(name: string): string {
  return validateVmName(name);
}

/** dnf package specs: names and version globs, `@group` and `@^environment`; never `-name` (an exclusion). */
export function checkPackage(pkg: string): string {
  return validatePackageSpec(pkg);
}

export function checkFlatpakId(id: string): string {
  return validateFlatpakId(id);
}

/**
 * Auto-launch commands: words separated by single spaces, drawn from a set
 * that needs no quoting in a shell, a systemd unit or an i3 config (no `%`,
 * `$`, quotes, backslashes or `;`). Returns the words.
 */
export function checkCommand(command: string): string[] {
  return validateAutostartCommand(command).split(' ');
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

/**
 * The agent secret exactly as the guest agent and the proxy accept it (64
 * lower-case hex digits, src/protocol/auth.ts): anything looser would put a
 * secret into a VM that its agent then refuses. Never echoed in errors.
 */
export const AGENT_SECRET_RE = /^[0-9a-f]{64}$/;
export function checkAgentSecret(secret: string): string {
  if (!AGENT_SECRET_RE.test(secret)) {
    throw new InputError('invalid agent secret: must be 64 lower-case hex digits');
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
export function checkInstallTree(url: string): string {
  return validateLocationUrl(url);
}

/**
 * Firewall rules, in the predecessor's iptables-like form, e.g.
 * `OUTPUT -p tcp --dport 443 -j ACCEPT`: checked with the spec's grammar,
 * then split into the arguments of a firewalld direct rule and the address
 * families it applies to (both, unless an address or ICMP pins one).
 */
export interface FirewallRule {
  chain: 'INPUT' | 'OUTPUT';
  args: string[];
  families: Array<'ipv4' | 'ipv6'>;
}
export function checkFirewallRule(rule: string): FirewallRule {
  validateFirewallRule(rule);
  const [chain, ...args] = rule.split(' ') as ['INPUT' | 'OUTPUT', ...string[]];
  const kinds = new Set<'ipv4' | 'ipv6'>();
  for (let i = 0; i < args.length; i += 2) {
    if (args[i] === '-s' || args[i] === '-d')
      kinds.add(isIPv6((args[i + 1] as string).split('/')[0] as string) ? 'ipv6' : 'ipv4');
  }
  if (kinds.size > 1) fail('firewall rule', rule, 'must not mix IPv4 and IPv6 addresses');
  const icmp = args.includes('icmp') && args[args.indexOf('icmp') - 1] === '-p';
  if (icmp && kinds.has('ipv6'))
    fail('firewall rule', rule, '-p icmp matches IPv4 only; it cannot take an IPv6 address');
  const families: Array<'ipv4' | 'ipv6'> = kinds.size === 1 ? [...kinds] : icmp ? ['ipv4'] : ['ipv4', 'ipv6'];
  return { chain, args, families };
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
