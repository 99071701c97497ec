import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { bundleAgent } from '../test/support/agent-bundle.js';
import { ProxyServer, type ProxyEvent } from '../src/proxy/server.js';

/** Where the benchmark watches for a window's `created` event. */
export interface AgentPath {
  name: string;
  /** The agent's process id, for CPU accounting. */
  pid: number;
  stop(): Promise<void>;
}

/**
 * The whole path: X server -> the bundled agent, as its own process -> TCP
 * (loopback) -> the real proxy in this process, which timestamps WINDOW_CREATED.
 */
export async function startAgentPath(
  display: string,
  created: (title: string, t: number) => void,
): Promise<AgentPath> {
  const dir = mkdtempSync(join(tmpdir(), 'vmp-bench-agent-'));
  const bundle = join(dir, 'vm-guest-agent.cjs');
  await bundleAgent(bundle);
  const secret = randomBytes(32);
  writeFileSync(join(dir, 'agent.secret'), secret.toString('hex'), { mode: 0o600 });
  const vm = 'bench-vm';
  const proxy = new ProxyServer({
    listen: [{ host: '127.0.0.1', port: 0 }],
    lookupSecret: async (name) => (name === vm ? secret : null),
    log: () => undefined,
  });
  const [bound] = await proxy.start();
  const connected = new Promise<void>((resolve) => {
    proxy.on('event', (e: ProxyEvent) => {
      if (e.type === 'window-created') created(e.window.title, performance.now());
      if (e.type === 'window-list') resolve();
    });
  });
  const conf = join(dir, 'agent.conf');
  writeFileSync(
    conf,
    [
      `VMP_VM_NAME=${vm}`,
      'VMP_PROXY_HOST=127.0.0.1',
      `VMP_PROXY_PORT=${bound?.port}`,
      `VMP_SECRET_FILE=${join(dir, 'agent.secret')}`,
      `VMP_DISPLAY=${display}`,
      '',
    ].join('\n'),
  );
  const agent = spawn(process.execPath, [bundle], {
    env: { PATH: process.env.PATH, VMP_AGENT_CONFIG: conf },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await connected;
  return {
    name: 'bundled agent process -> TCP -> proxy',
    pid: agent.pid ?? 0,
    async stop() {
      const exited = new Promise((r) => agent.once('exit', r));
      agent.kill('SIGTERM');
      await exited;
      await proxy.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
