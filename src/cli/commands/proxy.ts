import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { DEFAULT_PROXY_PORT } from '../../protocol/index.js';
import {
  defaultListenAddresses,
  parseListenAddress,
  type ListenAddress,
} from '../../proxy/listen-addresses.js';
import { agentSocketPath } from '../../proxy/agent-socket.js';
import { DEFAULT_HEARTBEAT_INTERVAL_MS } from '../../proxy/server.js';
import { keyringCredentialStores } from '../../secrets/credentials.js';
import { startProxy } from '../../service/proxy.js';
import { FileConfigStore } from '../../spec/store.js';
import { InputError } from '../../util/errors.js';
import { resolveConnectionFor } from '../hypervisor.js';

interface ProxyFlags {
  listen?: string[];
  port?: string;
  network?: string;
  connect?: string;
  socket?: string;
  agentSocket?: string;
  heartbeatInterval?: string;
}

const NETWORK_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

function parseIntFlag(flag: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new InputError(
      `--${flag} ${JSON.stringify(value)} is invalid: use a whole number from ${min} to ${max}`,
    );
  }
  return Number(value);
}

/** `proxy`: run the host window proxy in the foreground (the systemd user unit runs this). */
export const proxyCommand: CommandModule<object, ProxyFlags> = {
  command: 'proxy',
  describe: 'Run the window proxy: accept guest agents on TCP 9999, serve windows and clipboard locally',
  builder: (yargs: Argv<object>) =>
    yargs
      .usage('$0 proxy [--listen ADDR[:PORT]]... [options]')
      .option('listen', {
        type: 'string',
        array: true,
        describe: 'address to listen on for agents, repeatable',
        defaultDescription: "the libvirt network's bridge address and 127.0.0.1",
      })
      .option('port', {
        type: 'number',
        describe: 'port for addresses given without one',
        defaultDescription: String(DEFAULT_PROXY_PORT),
      })
      .option('network', {
        type: 'string',
        describe: 'libvirt network whose bridge VMs use',
        defaultDescription: 'default',
      })
      .option('socket', {
        type: 'string',
        describe: 'control socket path',
        defaultDescription: '$XDG_RUNTIME_DIR/vm-provisioner/proxy.sock',
      })
      .option('agent-socket', {
        type: 'string',
        describe: "Unix socket for the agents' virtio-serial links ('none': TCP only)",
        defaultDescription: '/tmp/vm-provisioner-agents-UID/agent.sock',
      })
      .option('heartbeat-interval', {
        type: 'number',
        describe: 'ms between heartbeats; 3 silent intervals close a connection',
        defaultDescription: String(DEFAULT_HEARTBEAT_INTERVAL_MS),
      })
      .example('$0 proxy', 'listen where the VMs are')
      .example('$0 proxy --listen 127.0.0.1:9999 --listen 192.168.122.1', '')
      .example('$0 proxy --agent-socket none', 'agents over TCP only')
      .strictOptions() as unknown as Argv<ProxyFlags>,
  handler: async (argv: ArgumentsCamelCase<ProxyFlags>) => {
    const port = argv.port === undefined ? DEFAULT_PROXY_PORT : parseIntFlag('port', argv.port, 0, 65535);
    const heartbeatIntervalMs =
      argv.heartbeatInterval === undefined
        ? undefined
        : parseIntFlag('heartbeat-interval', argv.heartbeatInterval, 10, 3_600_000);
    const network = argv.network ?? 'default';
    if (!NETWORK_NAME.test(network)) {
      throw new InputError(`--network ${JSON.stringify(network)} is invalid: use 1-64 of A-Z a-z 0-9 _ . -`);
    }
    const connectUri = (await resolveConnectionFor(argv.connect)).uri;
    const log = (line: string): void => {
      process.stderr.write(`${line}\n`);
    };
    let listen: ListenAddress[];
    if (argv.listen && argv.listen.length > 0) {
      listen = argv.listen.map((spec) => parseListenAddress(spec, port));
    } else {
      listen = await defaultListenAddresses({ connectUri, network, port, log });
    }
    const running = await startProxy({
      listen,
      agentSecrets: keyringCredentialStores().agentSecrets,
      configs: new FileConfigStore(),
      socketPath: argv.socket,
      ...(argv.agentSocket === 'none' ? {} : { agentSocket: argv.agentSocket ?? agentSocketPath() }),
      heartbeatIntervalMs,
      log,
    });
    await new Promise<void>((resolve) => {
      const stop = (signal: string): void => {
        log(`received ${signal}; stopping`);
        process.off('SIGINT', onInt);
        process.off('SIGTERM', onTerm);
        resolve();
      };
      const onInt = (): void => stop('SIGINT');
      const onTerm = (): void => stop('SIGTERM');
      process.on('SIGINT', onInt);
      process.on('SIGTERM', onTerm);
    });
    await running.close();
  },
};
