import { ControlServer } from '../src/proxy/control-socket.js';
import { ProxyServer } from '../src/proxy/server.js';

/**
 * The proxy under load, in its own process (as in production) so the load
 * generator's CPU is not counted against it. Driven by bench/proxy-load.ts
 * over IPC: receives the agent secrets, reports its port and its memory.
 */

interface Start {
  kind: 'start';
  secrets: Record<string, string>;
  socketPath: string;
}

process.on('message', (raw: unknown) => {
  const msg = raw as Start | { kind: 'stop' };
  if (msg.kind === 'start') void start(msg);
  if (msg.kind === 'stop') process.exit(0);
});

async function start(msg: Start): Promise<void> {
  const secrets = new Map(Object.entries(msg.secrets).map(([k, v]) => [k, Buffer.from(v, 'hex')]));
  const logs: string[] = [];
  const proxy = new ProxyServer({
    listen: [{ host: '127.0.0.1', port: 0 }],
    lookupSecret: async (name) => secrets.get(name) ?? null,
    log: (line) => {
      if (logs.length < 1000) logs.push(line);
    },
  });
  const [addr] = await proxy.start();
  const control = new ControlServer(proxy, {
    socketPath: msg.socketPath,
    log: (line) => {
      if (logs.length < 1000) logs.push(line);
    },
  });
  await control.start();
  const cpuStart = process.cpuUsage();
  let maxRss = 0;
  let maxHeap = 0;
  const sample = (): void => {
    const m = process.memoryUsage();
    maxRss = Math.max(maxRss, m.rss);
    maxHeap = Math.max(maxHeap, m.heapUsed);
  };
  setInterval(() => {
    sample();
    const m = process.memoryUsage();
    process.send!({ kind: 'memory', rss: m.rss, heapUsed: m.heapUsed });
  }, 1000).unref();
  process.on('message', (raw: unknown) => {
    if ((raw as { kind: string }).kind === 'report') {
      sample();
      const cpu = process.cpuUsage(cpuStart);
      process.send!({
        kind: 'report',
        maxRss,
        maxHeap,
        cpuUserMs: cpu.user / 1000,
        cpuSystemMs: cpu.system / 1000,
        logs,
      });
    }
  });
  process.send!({ kind: 'ready', port: addr!.port });
}
