import type { ConfigStore, SecretStore } from './ports.js';
import { parseAgentSecret } from '../protocol/index.js';
import { NotFoundError } from '../util/errors.js';
import { ControlServer } from '../proxy/control-socket.js';
import { ProxyServer } from '../proxy/server.js';
import type { ListenAddress } from '../proxy/listen-addresses.js';
import { formatAddress, isWildcard } from '../proxy/listen-addresses.js';

/**
 * Runs the window proxy: agents on TCP, the control socket locally. Secrets
 * come from the keyring (service vm-provisioner-agent), the clipboard policy
 * from each VM's config; both are read per connection so a VM created after
 * the proxy started works without a restart.
 */

export interface RunProxyOptions {
  listen: ListenAddress[];
  agentSecrets: Pick<SecretStore, 'get'>;
  configs: Pick<ConfigStore, 'read'>;
  socketPath?: string;
  /** The Unix socket of the agents' virtio-serial links (src/proxy/agent-socket.ts); absent: TCP only. */
  agentSocket?: string;
  heartbeatIntervalMs?: number;
  log?: (line: string) => void;
}

export interface RunningProxy {
  proxy: ProxyServer;
  control: ControlServer;
  close(): Promise<void>;
}

export function secretLookup(store: Pick<SecretStore, 'get'>, log: (line: string) => void) {
  return async (vmName: string): Promise<Buffer | null> => {
    const text = await store.get(vmName);
    if (text === null) return null;
    const secret = parseAgentSecret(text);
    if (!secret)
      log(`the keyring's agent secret for VM ${vmName} is malformed (not 64 hex digits); refusing it`);
    return secret;
  };
}

export function clipboardPolicy(configs: Pick<ConfigStore, 'read'>) {
  return async (vmName: string): Promise<boolean> => {
    try {
      return (await configs.read(vmName)).enableClipboard === true;
    } catch (err) {
      if (err instanceof NotFoundError) return false;
      throw err;
    }
  };
}

export async function startProxy(options: RunProxyOptions): Promise<RunningProxy> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  for (const addr of options.listen) {
    if (isWildcard(addr.host))
      log(`warning: listening on ${formatAddress(addr)} exposes the proxy on every interface`);
  }
  const proxy = new ProxyServer({
    listen: options.listen,
    lookupSecret: secretLookup(options.agentSecrets, log),
    clipboardAllowed: clipboardPolicy(options.configs),
    heartbeatIntervalMs: options.heartbeatIntervalMs,
    ...(options.agentSocket ? { agentSocket: options.agentSocket } : {}),
    log,
  });
  const bound = await proxy.start();
  const control = new ControlServer(proxy, { socketPath: options.socketPath, log });
  try {
    await control.start();
  } catch (err) {
    await proxy.close();
    throw err;
  }
  log(
    `window proxy listening on ${[...bound.map(formatAddress), ...(proxy.agentSocketPath ? [`unix:${proxy.agentSocketPath}`] : [])].join(', ')}; control socket ${control.socketPath}`,
  );
  return {
    proxy,
    control,
    close: async () => {
      await control.close();
      await proxy.close();
    },
  };
}
