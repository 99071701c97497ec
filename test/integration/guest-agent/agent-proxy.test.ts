import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ProxyServer, type ProxyEvent } from '../../../src/proxy/server.js';
import { bundleAgent } from '../../support/agent-bundle.js';
import { EventLog } from '../../support/events.js';
import { describeWith, probeXDisplay } from '../../support/services.js';
import { XSession } from '../../support/xsession.js';
import { renderAgentConf } from '../../../src/render/agent-config.js';

const execFileP = promisify(execFile);
const probe = probeXDisplay();
const VM = 'vmp-test-agent-e2e';
const SECRET_HEX = 'a1b2c3d4e5f60718293a4b5c6d7e8f90'.repeat(2);
const TEXT = 'text/plain;charset=utf-8';

/**
 * The real agent (bundled from guest-agent/src/main.ts the way `npm run build`
 * does, run as its own process) against the real proxy on loopback port 0, on
 * a real X server with i3 and real X clients.
 */
describeWith(probe, 'guest agent end to end under Xvfb + i3')(
  'guest agent -> host proxy (real processes, loopback)',
  () => {
    let dir: string;
    let session: XSession;
    let proxy: ProxyServer;
    let port = 0;
    let agent: ChildProcess;
    let agentLog = '';
    const log = new EventLog<ProxyEvent>();
    const ids = new Map<string, number>();

    const startProxy = async (listenPort: number): Promise<void> => {
      proxy = new ProxyServer({
        listen: [{ host: '127.0.0.1', port: listenPort }],
        lookupSecret: async (name) => (name === VM ? Buffer.from(SECRET_HEX, 'hex') : null),
        clipboardAllowed: async () => true,
        heartbeatIntervalMs: 1000,
        log: () => undefined,
      });
      const [bound] = await proxy.start();
      port = bound?.port ?? 0;
      proxy.on('event', log.push);
    };

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'vmp-agent-e2e-'));
      const bundle = join(dir, 'vm-guest-agent.cjs');
      await bundleAgent(bundle);
      writeFileSync(join(dir, 'agent.secret'), `${SECRET_HEX}\n`, { mode: 0o600 });
      session = new XSession(probe.display);
      await session.startI3();
      await startProxy(0);
      writeFileSync(
        join(dir, 'agent.conf'),
        renderAgentConf({
          vmName: VM,
          proxyHost: '127.0.0.1',
          proxyPort: port,
          secretFile: join(dir, 'agent.secret'),
        }),
      );
      agent = spawn(process.execPath, [bundle], {
        env: {
          PATH: process.env.PATH,
          VMP_AGENT_CONFIG: join(dir, 'agent.conf'),
          VMP_DISPLAY: probe.display,
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      agent.stderr?.on('data', (d: Buffer) => (agentLog += d.toString()));
    });

    afterAll(async () => {
      if (agent && agent.exitCode === null) {
        const exited = new Promise((r) => agent.once('exit', r));
        agent.kill('SIGTERM');
        await exited;
      }
      await proxy?.close();
      await session?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    const ev = <T extends ProxyEvent['type']>(
      type: T,
      pred: (e: Extract<ProxyEvent, { type: T }>) => boolean,
      from: number,
      what: string,
    ) =>
      log.waitFor(
        (e) => e.type === type && pred(e as Extract<ProxyEvent, { type: T }>),
        `${what}; agent log: ${agentLog}`,
        15_000,
        from,
      ) as Promise<Extract<ProxyEvent, { type: T }>>;

    test('the agent authenticates and sends its window list first', async () => {
      await ev('agent-connected', () => true, 0, 'agent-connected');
      const list = await ev('window-list', () => true, 0, 'window-list');
      expect(list.vm).toBe(VM);
      expect(list.windows).toEqual([]);
    });

    test('open, retitle, move, resize, focus and close each reach the proxy as the right message', async () => {
      let from = log.mark;
      session.xterm('e2e-one', 'e2e-one');
      const created = await ev('window-created', (e) => e.window.title === 'e2e-one', from, 'window-created');
      const id = created.window.id;
      ids.set('e2e-one', id);
      expect(created.window).toMatchObject({
        wmClass: 'XTerm',
        wmInstance: 'e2e-one',
        mapped: true,
        overrideRedirect: false,
        parent: 0,
      });
      await ev('focus-changed', (e) => e.id === id, from, 'focus-changed to e2e-one');
      expect(proxy.table.windowsOf(VM)?.windows.map((w) => w.title)).toEqual(['e2e-one']);

      from = log.mark;
      await session.xdotool('set_window', '--name', 'e2e-one: renamed', String(id));
      await ev('title-changed', (e) => e.id === id && e.title === 'e2e-one: renamed', from, 'title-changed');

      await session.i3msg(`[id=${id}]`, 'floating', 'enable');
      from = log.mark;
      await session.i3msg(`[id=${id}]`, 'move', 'position', '300', '200');
      const moved = await ev(
        'window-moved',
        (e) => e.id === id && e.x >= 300 && e.x < 310,
        from,
        'window-moved',
      );
      expect(moved.y).toBeGreaterThanOrEqual(200);
      from = log.mark;
      await session.i3msg(`[id=${id}]`, 'resize', 'set', '420', '260');
      const resized = await ev(
        'window-resized',
        (e) => e.id === id && e.width <= 420 && e.width > 400,
        from,
        'window-resized',
      );
      expect(resized.height).toBeLessThanOrEqual(260);

      from = log.mark;
      const two = session.xterm('e2e-two', 'e2e-two');
      const twoId = (await ev('window-created', (e) => e.window.title === 'e2e-two', from, 'created e2e-two'))
        .window.id;
      await ev('focus-changed', (e) => e.id === twoId, from, 'focus on e2e-two');
      from = log.mark;
      await session.i3msg(`[id=${id}]`, 'focus');
      await ev('focus-changed', (e) => e.id === id, from, 'focus back on e2e-one');

      from = log.mark;
      two.kill('SIGTERM');
      await ev('window-destroyed', (e) => e.id === twoId, from, 'window-destroyed');
      expect(proxy.table.windowsOf(VM)?.windows.map((w) => w.id)).toEqual([id]);
    });

    test('clipboard: the proxy pastes into the guest and copies from it', async () => {
      await proxy.sendClipboard(VM, { mimeType: TEXT, data: Buffer.from('from the host ✓', 'utf8') });
      const { stdout } = await execFileP('xclip', ['-selection', 'clipboard', '-o'], {
        env: session.env,
        timeout: 10_000,
      });
      expect(stdout).toBe('from the host ✓');
      const owner = session.spawn('xclip', ['-selection', 'clipboard', '-i', '-quiet'], 'pipe');
      owner.stdin?.end('from the guest ✓');
      await session.until(async () => {
        const got = await proxy.requestClipboard(VM);
        return got.data.toString('utf8') === 'from the guest ✓' && got.mimeType === TEXT;
      }, 'the proxy to copy the guest clipboard');
    });

    test('a restarted proxy gets the agent back, with the full window list, including windows opened meanwhile', async () => {
      const oneId = ids.get('e2e-one') as number;
      let from: number;
      const oldPort = port;
      await proxy.close();
      proxy.removeAllListeners('event');
      // While the proxy is down, a window opens: the resent list must carry it.
      session.xterm('e2e-during-outage', 'e2e-three');
      await session.until(
        async () => (await session.xdotool('search', '--name', 'e2e-during-outage')).trim() !== '',
        'xterm to map',
      );
      from = log.mark;
      await startProxy(oldPort);
      const list = await ev('window-list', () => true, from, 'window-list after reconnect');
      expect(list.windows.map((w) => w.title).sort()).toEqual(['e2e-during-outage', 'e2e-one: renamed']);
      expect(list.windows.find((w) => w.id === oneId)?.width).toBeGreaterThan(400);
      expect(proxy.table.windowsOf(VM)?.windows).toHaveLength(2);
      expect(agentLog).toMatch(/reconnecting in \d+ ms/);
      // And events flow again on the new connection.
      from = log.mark;
      await session.xdotool('set_window', '--name', 'after restart', String(oneId));
      await ev(
        'title-changed',
        (e) => e.id === oneId && e.title === 'after restart',
        from,
        'title after restart',
      );
    });
  },
);
