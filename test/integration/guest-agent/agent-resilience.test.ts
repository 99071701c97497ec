import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { bundleAgent } from '../../support/agent-bundle.js';
import { EventLog } from '../../support/events.js';
import { describeWith, probeXDisplay } from '../../support/services.js';
import { XSession } from '../../support/xsession.js';
import { renderAgentConf } from '../../../src/render/agent-config.js';

const probe = probeXDisplay();
const VM = 'vmp-test-agent-resilience';
const SECRET_HEX = '0f1e2d3c4b5a69788796a5b4c3d2e1f0'.repeat(2);
const OTHER_SECRET_HEX = '1234567890abcdef'.repeat(4);

interface Event {
  type: string;
  vm?: string;
  windows?: { title: string }[];
  window?: { title: string };
  port?: number;
}

/**
 * The bundled agent against a proxy that runs as its own process, so the
 * test can kill it outright (SIGKILL: no goodbye on the wire), freeze it
 * (SIGSTOP: the TCP connection stays up but goes silent), or run it with the
 * wrong secret.
 */
describeWith(probe, 'guest agent resilience under Xvfb + i3')(
  'guest agent vs a proxy process that dies, freezes or lies',
  () => {
    let dir: string;
    let agentBundle: string;
    let proxyBundle: string;
    let session: XSession;
    let agent: ChildProcess | undefined;
    let agentLog = '';
    const proxies: ChildProcess[] = [];

    const bundle = async (entry: string, out: string): Promise<string> => {
      const outfile = join(dir, out);
      await build({
        entryPoints: [entry],
        bundle: true,
        platform: 'node',
        target: 'node18',
        format: 'cjs',
        outfile,
        logLevel: 'silent',
      });
      return outfile;
    };

    /** Starts a proxy process; resolves with its port and a log of its events. */
    const startProxy = async (
      port: number,
      secretHex = SECRET_HEX,
      heartbeatMs = 10_000,
    ): Promise<{ child: ChildProcess; port: number; log: EventLog<Event>; stderr: () => string }> => {
      const child = spawn(process.execPath, [proxyBundle], {
        env: {
          PATH: process.env.PATH,
          VM,
          SECRET_HEX: secretHex,
          PORT: String(port),
          HEARTBEAT_MS: String(heartbeatMs),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      proxies.push(child);
      const log = new EventLog<Event>();
      let buf = '';
      let err = '';
      child.stdout?.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          log.push(JSON.parse(buf.slice(0, nl)) as Event);
          buf = buf.slice(nl + 1);
        }
      });
      child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
      const first = await log.waitFor((e) => e.port !== undefined, `proxy to listen; stderr: ${err}`);
      return { child, port: first.port as number, log, stderr: () => err };
    };

    const startAgent = (port: number, display = probe.display): void => {
      const conf = join(dir, 'agent.conf');
      writeFileSync(
        conf,
        renderAgentConf({
          vmName: VM,
          proxyHost: '127.0.0.1',
          proxyPort: port,
          secretFile: join(dir, 'agent.secret'),
        }),
      );
      agent = spawn(process.execPath, [agentBundle], {
        env: { PATH: process.env.PATH, VMP_AGENT_CONFIG: conf, VMP_DISPLAY: display },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      agent.stderr?.on('data', (d: Buffer) => (agentLog += d.toString()));
    };

    const stop = async (
      child: ChildProcess | undefined,
      signal: NodeJS.Signals = 'SIGTERM',
    ): Promise<void> => {
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGCONT');
      child.kill(signal);
      await exited;
    };

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'vmp-agent-resilience-'));
      agentBundle = await bundleAgent(join(dir, 'vm-guest-agent.cjs'));
      proxyBundle = await bundle('test/support/proxy-runner.ts', 'proxy-runner.cjs');
      writeFileSync(join(dir, 'agent.secret'), SECRET_HEX, { mode: 0o600 });
      session = new XSession(probe.display);
      await session.startI3();
    });

    afterAll(async () => {
      await stop(agent);
      for (const p of proxies) await stop(p);
      await session?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    test('SIGKILL of the proxy process: a new proxy on the same port gets the agent back and the full window list', async () => {
      const first = await startProxy(0);
      startAgent(first.port);
      await first.log.waitFor((e) => e.type === 'window-list', `first window-list; agent: ${agentLog}`);
      session.xterm('resilience-one', 'res-one');
      await first.log.waitFor((e) => e.type === 'window-created', 'window-created');
      await stop(first.child, 'SIGKILL');
      session.xterm('resilience-two', 'res-two'); // opened while no proxy runs
      await session.until(
        async () => (await session.xdotool('search', '--name', 'resilience-two')).trim() !== '',
        'xterm to map',
      );
      const second = await startProxy(first.port);
      const list = await second.log.waitFor(
        (e) => e.type === 'window-list',
        `window-list after restart; agent: ${agentLog}`,
        20_000,
      );
      expect(list.vm).toBe(VM);
      expect(list.windows?.map((w) => w.title).sort()).toEqual(['resilience-one', 'resilience-two']);
      await stop(second.child);
    });

    test('a frozen proxy (SIGSTOP) is noticed by heartbeat silence; once it thaws the agent is back', async () => {
      await stop(agent);
      agentLog = '';
      const frozen = await startProxy(0, SECRET_HEX, 300);
      startAgent(frozen.port);
      await frozen.log.waitFor((e) => e.type === 'window-list', `window-list; agent: ${agentLog}`);
      frozen.child.kill('SIGSTOP');
      await session.until(
        () => /ended: proxy silent for 3 heartbeat intervals/.test(agentLog),
        `agent to notice silence: ${agentLog}`,
        10_000,
      );
      frozen.child.kill('SIGCONT');
      const before = frozen.log.all.filter((e) => e.type === 'window-list').length;
      await session.until(
        () => frozen.log.all.filter((e) => e.type === 'window-list').length > before,
        `a fresh window-list after the thaw; agent: ${agentLog}`,
        20_000,
      );
      await stop(frozen.child);
    });

    test('started before its X server, the agent waits for the display, then reports the windows on it', async () => {
      await stop(agent);
      agentLog = '';
      // A display number nobody uses: the agent must find nothing there at first.
      const free = Array.from({ length: 50 }, (_, i) => 150 + i).find(
        (n) => !existsSync(`/tmp/.X11-unix/X${n}`) && !existsSync(`/tmp/.X${n}-lock`),
      );
      if (free === undefined) throw new Error('no free X display number in :150-:199');
      const display = `:${free}`;
      const proxy = await startProxy(0);
      startAgent(proxy.port, display);
      await session.until(
        () => /waiting for the X display/.test(agentLog),
        `the agent to wait for ${display}: ${agentLog}`,
      );
      // Several retries later: still waiting, quietly, and nothing sent to the proxy yet.
      await new Promise((r) => setTimeout(r, 2000));
      expect(agent?.exitCode).toBeNull();
      expect(agentLog.match(/waiting for the X display/g)).toHaveLength(1);
      expect(proxy.log.all.some((e) => e.type === 'agent-connected' || e.type === 'window-list')).toBe(false);

      const xvfb = spawn('Xvfb', [display, '-nolisten', 'tcp', '-screen', '0', '800x600x24'], {
        stdio: 'ignore',
      });
      const late = new XSession(display);
      try {
        await late.startI3();
        late.xterm('late-display', 'late');
        const seen = await proxy.log.waitFor(
          (e) =>
            (e.type === 'window-created' && e.window?.title === 'late-display') ||
            (e.type === 'window-list' && !!e.windows?.some((w) => w.title === 'late-display')),
          `the xterm on ${display} at the proxy; agent: ${agentLog}`,
          20_000,
        );
        expect(seen.vm).toBe(VM);
        expect(agentLog).toMatch(new RegExp(`watching ${display} for VM ${VM}`));
      } finally {
        await stop(agent);
        await late.stop();
        await stop(xvfb);
        await stop(proxy.child);
      }
    });

    test('a proxy with another secret never gets the window list, and the agent keeps trying', async () => {
      await stop(agent);
      agentLog = '';
      const liar = await startProxy(0, OTHER_SECRET_HEX);
      startAgent(liar.port);
      await session.until(
        () => (agentLog.match(/proxy link failed/g) ?? []).length >= 2,
        `two refused attempts: ${agentLog}`,
        15_000,
      );
      expect(liar.log.all.some((e) => e.type === 'window-list' || e.type === 'agent-connected')).toBe(false);
      expect(agentLog).toMatch(/reconnecting in \d+ ms/);
      await stop(liar.child);
    });
  },
);
