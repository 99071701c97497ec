/**
 * A real host proxy as its own process, for tests that kill or freeze it.
 * Environment: VM, SECRET_HEX, PORT (0 = any), HEARTBEAT_MS. Prints one JSON
 * line `{"port": n}` once listening, then one JSON line per proxy event.
 */
import { ProxyServer } from '../../src/proxy/server.js';

async function main(): Promise<void> {
  const vm = process.env.VM ?? '';
  const secret = Buffer.from(process.env.SECRET_HEX ?? '', 'hex');
  const proxy = new ProxyServer({
    listen: [{ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) }],
    lookupSecret: async (name) => (name === vm ? secret : null),
    heartbeatIntervalMs: Number(process.env.HEARTBEAT_MS ?? 10_000),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  proxy.on('event', (e) => process.stdout.write(`${JSON.stringify(e)}\n`));
  const [bound] = await proxy.start();
  process.stdout.write(`${JSON.stringify({ port: bound?.port })}\n`);
  process.once('SIGTERM', () => void proxy.close().then(() => process.exit(0)));
}

main().catch((err: unknown) => {
  process.stderr.write(`proxy-runner: ${String(err)}\n`);
  process.exit(1);
});
