import { once } from 'node:events';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ProxyServer, type ProxyEvent, type ProxyServerOptions } from '../../src/proxy/server.js';

/**
 * A real proxy on a real agent socket in a fresh directory, as the agents' virtio-serial links meet it
 * (docs/protocol.md, "Transport"): QEMU's end of a VM's port is a Unix-socket client (qemuEnd).
 */
export interface SerialLinkBench {
  dir: string;
  socketPath: string;
  proxy: ProxyServer;
  events: ProxyEvent[];
  logs: string[];
  /** Closes the proxy and starts another on the same socket with these options (the collected lines go on). */
  restart(options?: Partial<ProxyServerOptions>): Promise<ProxyServer>;
  /** QEMU's end of a VM's port: connected before the agent says anything (a new one after each restore). */
  qemuEnd(): Promise<net.Socket>;
  close(): Promise<void>;
}

export async function serialLinkBench(
  prefix: string,
  lookupSecret: ProxyServerOptions['lookupSecret'],
  options: Partial<ProxyServerOptions> = {},
): Promise<SerialLinkBench> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  const socketPath = path.join(dir, 'agent.sock');
  const events: ProxyEvent[] = [];
  const logs: string[] = [];
  const start = async (extra: Partial<ProxyServerOptions>): Promise<ProxyServer> => {
    const server = new ProxyServer({
      listen: [],
      agentSocket: socketPath,
      lookupSecret,
      handshakeTimeoutMs: 2000,
      log: (line) => logs.push(line),
      ...extra,
    });
    server.on('event', (e) => events.push(e));
    await server.start();
    return server;
  };
  const bench: SerialLinkBench = {
    dir,
    socketPath,
    proxy: await start(options),
    events,
    logs,
    async restart(extra = options) {
      await bench.proxy.close();
      bench.proxy = await start(extra);
      return bench.proxy;
    },
    async qemuEnd() {
      const socket = net.connect(socketPath);
      socket.on('error', () => undefined);
      await once(socket, 'connect');
      return socket;
    },
    async close() {
      await bench.proxy.close();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
  return bench;
}
