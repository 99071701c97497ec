import net from 'node:net';
import { DEFAULT_PROXY_PORT } from '../protocol/index.js';
import { InputError } from '../util/errors.js';

export interface ListenAddress {
  host: string;
  port: number;
}

const LISTEN_RULE = 'use an IP address with an optional port: 192.168.122.1, 127.0.0.1:9999 or [::1]:9999';

/** Parses `ADDR[:PORT]` (IPv6 in brackets when a port is given). Host names are refused: bind to what VMs reach. */
export function parseListenAddress(spec: string, defaultPort = DEFAULT_PROXY_PORT): ListenAddress {
  const invalid = (): InputError =>
    new InputError(`listen address ${JSON.stringify(spec)} is invalid: ${LISTEN_RULE}`);
  let host: string;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(spec);
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2];
    if (net.isIP(host) !== 6) throw invalid();
  } else if (net.isIP(spec) === 6) {
    host = spec;
  } else {
    const m = /^([^:]+)(?::(\d+))?$/.exec(spec);
    if (!m || net.isIP(m[1]!) !== 4) throw invalid();
    host = m[1]!;
    portText = m[2];
  }
  let port = defaultPort;
  if (portText !== undefined) {
    port = Number(portText);
    if (!Number.isInteger(port) || port < 0 || port > 65535 || portText.length > 5) {
      throw new InputError(
        `listen port ${JSON.stringify(portText)} in ${JSON.stringify(spec)} is invalid: use 0-65535`,
      );
    }
  }
  return { host, port };
}

export function formatAddress(addr: ListenAddress): string {
  return net.isIP(addr.host) === 6 ? `[${addr.host}]:${addr.port}` : `${addr.host}:${addr.port}`;
}

export function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || (net.isIP(host) === 6 && /^[0:]+$/.test(host));
}

/**
 * The host addresses of a libvirt network, from `virsh net-dumpxml` output:
 * every `<ip address=...>` directly in the network (the bridge's own addresses).
 */
export function bridgeAddressesFromNetworkXml(xml: string): string[] {
  const out: string[] = [];
  for (const m of xml.matchAll(/<ip\b[^>]*?\baddress=(['"])([^'"]+)\1/g)) {
    const address = m[2]!;
    if (net.isIP(address) && !out.includes(address)) out.push(address);
  }
  return out;
}

export const LOCALHOST = '127.0.0.1';
export const VIRSH_TIMEOUT_MS = 10_000;

/** Runs virsh and returns stdout; injected so the resolution logic is testable without libvirt. */
export type VirshRunner = (args: string[]) => Promise<string>;

export async function execaVirsh(args: string[]): Promise<string> {
  const { execa } = await import('execa');
  const result = await execa('virsh', args, { timeout: VIRSH_TIMEOUT_MS, stdin: 'ignore' });
  return result.stdout;
}

export interface DefaultListenOptions {
  connectUri: string;
  /** libvirt network whose bridge address VMs use (default `default`). */
  network: string;
  port: number;
  virsh?: VirshRunner;
  log?: (line: string) => void;
}

/**
 * Where VMs reach the host: the bridge address(es) of the libvirt network when
 * it is active, plus 127.0.0.1, where QEMU user-mode networking delivers the
 * guest's connections to 10.0.2.2. Never a wildcard address.
 */
export async function defaultListenAddresses(options: DefaultListenOptions): Promise<ListenAddress[]> {
  const virsh = options.virsh ?? execaVirsh;
  const log = options.log ?? (() => undefined);
  const hosts: string[] = [];
  try {
    const info = await virsh(['-c', options.connectUri, 'net-info', options.network]);
    if (/^Active:\s*yes\s*$/im.test(info)) {
      const xml = await virsh(['-c', options.connectUri, 'net-dumpxml', options.network]);
      const found = bridgeAddressesFromNetworkXml(xml).filter((h) => !isWildcard(h));
      if (found.length === 0)
        log(`libvirt network ${options.network} has no host address; not listening on it`);
      hosts.push(...found);
    } else {
      log(`libvirt network ${options.network} is not active; not listening on its bridge`);
    }
  } catch (err) {
    const e = err as { shortMessage?: string; stderr?: string; message?: string };
    const why = (e.stderr || e.shortMessage || e.message || String(err)).split('\n')[0];
    log(
      `cannot read libvirt network ${options.network} at ${options.connectUri} (${why}); listening on ${LOCALHOST} only`,
    );
  }
  if (!hosts.includes(LOCALHOST)) hosts.push(LOCALHOST);
  return hosts.map((host) => ({ host, port: options.port }));
}
