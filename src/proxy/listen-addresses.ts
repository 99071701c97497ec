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
