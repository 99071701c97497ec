import { GuestAgent, type AgentLink, type AgentOutbound } from '../../../guest-agent/src/agent.js';
import type { WindowTracker } from '../../../guest-agent/src/window-tracker.js';

/**
 * What the agent does when the host says its VM has resumed (docs/protocol.md,
 * "Resume"): the new link comes first, everything else after its window list.
 * The links are in-memory stand-ins; the one from before the resume behaves
 * like a TCP connection into a QEMU process that is gone: closing it never
 * completes by itself.
 */

const XTERM = {
  id: 7,
  wmClass: 'XTerm',
  wmInstance: 'xterm',
  transientFor: 0,
  title: 'user@vm: ~',
  x: 0,
  y: 0,
  width: 640,
  height: 480,
};

const tracker = {
  windows: () => [{ ...XTERM }],
  focusedWindow: () => XTERM.id,
  onWindowEvent: () => () => undefined,
} as unknown as WindowTracker;

class FakeLink implements AgentLink {
  readonly closed: Promise<void>;
  private end: () => void = () => undefined;
  constructor(
    readonly n: number,
    private readonly timeline: string[],
    /** A dead link's close never finishes on its own. */
    private readonly closesAtOnce: boolean,
  ) {
    this.closed = new Promise((resolve) => (this.end = resolve));
  }
  send(m: AgentOutbound): void {
    this.timeline.push(`link ${this.n}: ${m.type}`);
  }
  onMessage(): void {}
  drained(): Promise<void> {
    return Promise.resolve();
  }
  fail(reason: string): void {
    this.timeline.push(`link ${this.n}: fail ${reason}`);
    this.close();
  }
  close(): void {
    this.timeline.push(`link ${this.n}: close`);
    if (this.closesAtOnce) this.end();
  }
}

async function settle(timeline: string[], entry: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!timeline.includes(entry) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  expect(timeline).toContain(entry);
}

describe('GuestAgent on a resume', () => {
  test('connects again without waiting for the old link, which it closes after the new window list, and logs last', async () => {
    const timeline: string[] = [];
    let made = 0;
    const agent = new GuestAgent({
      tracker,
      clipboard: { read: async () => '', write: async () => undefined },
      connect: async () => {
        made++;
        timeline.push(`connect ${made}`);
        return new FakeLink(made, timeline, made > 1);
      },
      log: (line) => timeline.push(`log: ${line}`),
    });
    agent.start();
    await settle(timeline, 'link 1: window-list');
    timeline.length = 0;

    agent.reconnectNow('the host says this VM has resumed');
    // Nothing happens synchronously but noting the wake: no log line, no close of the old link yet.
    expect(timeline).toEqual([]);
    await settle(timeline, 'link 2: window-list');
    await settle(timeline, 'log: connected to the proxy (link 2)');
    expect(timeline).toEqual([
      'connect 2',
      'link 2: window-list',
      'link 1: close',
      'log: the host says this VM has resumed: reconnecting now',
      'log: left the link from before the resume',
      'log: connected to the proxy (link 2)',
    ]);
    expect(agent.connections).toBe(2);
    await agent.stop();
    expect(timeline.slice(-2)).toEqual(['link 2: close', 'log: proxy link closed']);
  });

  test('a resume while the proxy cannot be reached closes the old link and logs when the attempt fails', async () => {
    const timeline: string[] = [];
    let made = 0;
    const agent = new GuestAgent({
      tracker,
      clipboard: { read: async () => '', write: async () => undefined },
      connect: async () => {
        made++;
        if (made > 1) {
          timeline.push(`connect ${made} refused`);
          throw new Error('connect ECONNREFUSED 10.0.2.2:9999');
        }
        return new FakeLink(made, timeline, false);
      },
      log: (line) => timeline.push(`log: ${line}`),
    });
    agent.start();
    await settle(timeline, 'link 1: window-list');
    timeline.length = 0;
    agent.reconnectNow('the host says this VM has resumed');
    await settle(timeline, 'log: proxy link failed: connect ECONNREFUSED 10.0.2.2:9999');
    expect(timeline.slice(0, 5)).toEqual([
      'connect 2 refused',
      'link 1: close',
      'log: the host says this VM has resumed: reconnecting now',
      'log: left the link from before the resume',
      'log: proxy link failed: connect ECONNREFUSED 10.0.2.2:9999',
    ]);
    await agent.stop();
  });

  test('on one port (singleLink): what the port prepared goes out first, then the old session ends and the new handshake starts, all within the wake itself; logs still after the new window list', async () => {
    const timeline: string[] = [];
    let made = 0;
    const agent = new GuestAgent({
      tracker,
      singleLink: true,
      onResume: () => timeline.push('prepared resume written'),
      clipboard: { read: async () => '', write: async () => undefined },
      connect: async () => {
        made++;
        timeline.push(`connect ${made}`);
        return new FakeLink(made, timeline, true);
      },
      log: (line) => timeline.push(`log: ${line}`),
    });
    agent.start();
    await settle(timeline, 'link 1: window-list');
    timeline.length = 0;

    agent.reconnectNow('the host says this VM has resumed');
    // Synchronously: the prepared RESUME (or HELLO) goes out, the old session lets go of the port in the same
    // turn (so the proxy's answer reaches the new one), and the new one is on its way.
    expect(timeline).toEqual(['prepared resume written', 'link 1: close', 'connect 2']);
    await settle(timeline, 'log: connected to the proxy (link 2)');
    expect(timeline).toEqual([
      'prepared resume written',
      'link 1: close',
      'connect 2',
      'link 2: window-list',
      'log: the host says this VM has resumed: reconnecting now',
      'log: closed the link from before the resume',
      'log: connected to the proxy (link 2)',
    ]);
    expect(made).toBe(2);
    await agent.stop();
  });

  test('on one port, a wake while a handshake is under way abandons it and connects afresh, never two at once', async () => {
    // The VM was saved (or paused) in the middle of a handshake: its answer went with the old QEMU process.
    const timeline: string[] = [];
    let made = 0;
    let inFlight = 0;
    let release: (link: FakeLink) => void = () => undefined;
    const agent = new GuestAgent({
      tracker,
      singleLink: true,
      clipboard: { read: async () => '', write: async () => undefined },
      connect: (signal) => {
        made++;
        inFlight++;
        timeline.push(`connect ${made} (${inFlight} under way)`);
        const n = made;
        return new Promise<AgentLink>((resolve, reject) => {
          signal?.addEventListener('abort', () => {
            inFlight--;
            timeline.push(`connect ${n} abandoned`);
            reject(new Error('handshake abandoned'));
          });
          release = () => {
            inFlight--;
            resolve(new FakeLink(n, timeline, true));
          };
        });
      },
      log: (line) => timeline.push(`log: ${line}`),
    });
    agent.start();
    await settle(timeline, 'connect 1 (1 under way)');
    agent.reconnectNow('the host says this VM has resumed');
    await settle(timeline, 'connect 2 (1 under way)');
    expect(timeline.filter((l) => l.startsWith('connect'))).toEqual([
      'connect 1 (1 under way)',
      'connect 1 abandoned',
      'connect 2 (1 under way)',
    ]);
    release(new FakeLink(2, timeline, true));
    await settle(timeline, 'link 2: window-list');
    expect(made).toBe(2);
    await agent.stop();
  });
});
