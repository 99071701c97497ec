import { randomBytes } from 'node:crypto';
import {
  AgentClient,
  ClipboardStatus,
  encodeMessage,
  ErrorCode,
  newNonce,
  ProtocolError,
  type Message,
} from '../../../src/protocol/index.js';
import { ProxyServer, ProxyRequestError, type ProxyEvent } from '../../../src/proxy/server.js';
import { RawPeer, testWindow, waitFor } from '../../support/fake-agent.js';

/**
 * The proxy over real TCP on loopback (port 0), with agents played by real
 * TCP clients built on the shared codec.
 */

const PREFIX = 'vmp-t-proto-';
const secrets = new Map<string, Buffer>();
for (const n of ['a', 'b', 'c', 'd', 'e']) secrets.set(`${PREFIX}${n}`, randomBytes(32));
const secretOf = (name: string): Buffer => secrets.get(name)!;

let proxy: ProxyServer;
let port: number;
let logs: string[];
let clipboardAllowed: Set<string>;
const clients: AgentClient[] = [];
const raws: RawPeer[] = [];

async function agent(
  name: string,
  overrides: Partial<Parameters<typeof AgentClient.connect>[0]> = {},
): Promise<AgentClient> {
  const client = await AgentClient.connect({
    host: '127.0.0.1',
    port,
    vmName: name,
    secret: secretOf(name),
    agentVersion: 'test',
    timeoutMs: 5000,
    ...overrides,
  });
  clients.push(client);
  return client;
}

async function raw(): Promise<RawPeer> {
  const peer = await RawPeer.connect(port);
  raws.push(peer);
  return peer;
}

function closeReason(client: AgentClient): Promise<string> {
  return new Promise((resolve) => {
    if (client.isClosed) resolve('already closed');
    client.once('close', resolve);
  });
}

beforeEach(async () => {
  logs = [];
  clipboardAllowed = new Set();
  proxy = new ProxyServer({
    listen: [{ host: '127.0.0.1', port: 0 }],
    lookupSecret: async (name) => secrets.get(name) ?? null,
    clipboardAllowed: async (name) => clipboardAllowed.has(name),
    heartbeatIntervalMs: 100,
    handshakeTimeoutMs: 500,
    clipboardTimeoutMs: 500,
    log: (line) => logs.push(line),
  });
  const [addr] = await proxy.start();
  port = addr!.port;
  expect(port).toBeGreaterThan(0);
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const r of raws.splice(0)) r.destroy();
  await proxy.close();
});

describe('handshake and window events', () => {
  test('several concurrent agents authenticate and their events build separate window tables', async () => {
    const names = [`${PREFIX}a`, `${PREFIX}b`, `${PREFIX}c`];
    const agents = await Promise.all(names.map((n) => agent(n)));
    for (const a of agents) expect(a.heartbeatIntervalMs).toBe(100);
    agents.forEach((a, i) => {
      a.send({ type: 'window-list', focused: 0, windows: [testWindow(100 + i)] });
      a.send({ type: 'window-created', window: testWindow(200 + i, 'second') });
      a.send({ type: 'window-moved', id: 200 + i, x: -5, y: 7 });
      a.send({ type: 'window-resized', id: 200 + i, width: 1, height: 2 });
      a.send({ type: 'title-changed', id: 200 + i, title: `renamed ${i}` });
      a.send({ type: 'focus-changed', id: 200 + i });
      a.send({ type: 'window-unmapped', id: 100 + i });
    });
    await waitFor(() => names.every((n) => proxy.table.statusOf(n)?.events === 7), 5000, 'all events');
    names.forEach((n, i) => {
      const view = proxy.table.windowsOf(n)!;
      expect(view.connected).toBe(true);
      expect(view.focused).toBe(200 + i);
      expect(view.windows.map((w) => w.id)).toEqual([100 + i, 200 + i]);
      expect(view.windows[0]!.mapped).toBe(false);
      expect(view.windows[1]).toMatchObject({ x: -5, y: 7, width: 1, height: 2, title: `renamed ${i}` });
    });
    agents[1]!.send({ type: 'window-destroyed', id: 201 });
    await waitFor(() => proxy.table.windowsOf(names[1]!)!.windows.length === 1);
    expect(proxy.table.windowsOf(names[1]!)!.focused).toBe(0);
    expect(proxy.status().vms.map((v) => v.name)).toEqual(names);
  });

  test('listeners get every event in order, with agent connect and disconnect', async () => {
    const events: ProxyEvent[] = [];
    proxy.on('event', (e: ProxyEvent) => events.push(e));
    const a = await agent(`${PREFIX}a`);
    for (let i = 1; i <= 50; i++) a.send({ type: 'window-created', window: testWindow(i) });
    a.close();
    await waitFor(() => events.at(-1)?.type === 'agent-disconnected');
    expect(events[0]).toMatchObject({ vm: `${PREFIX}a`, type: 'agent-connected' });
    const created = events.filter((e) => e.type === 'window-created');
    expect(created.map((e) => (e.type === 'window-created' ? e.window.id : 0))).toEqual(
      Array.from({ length: 50 }, (_, i) => i + 1),
    );
  });

  test('events about windows the proxy does not know change nothing and reach no listener', async () => {
    const name = `${PREFIX}a`;
    const events: ProxyEvent[] = [];
    proxy.on('event', (e: ProxyEvent) => events.push(e));
    const a = await agent(name);
    a.send({ type: 'window-list', focused: 1, windows: [testWindow(1)] });
    a.send({ type: 'focus-changed', id: 99 });
    a.send({ type: 'window-moved', id: 99, x: 1, y: 1 });
    a.send({ type: 'window-resized', id: 99, width: 1, height: 1 });
    a.send({ type: 'title-changed', id: 99, title: 'ghost' });
    a.send({ type: 'window-mapped', id: 99 });
    a.send({ type: 'window-unmapped', id: 99 });
    a.send({ type: 'window-destroyed', id: 99 });
    a.send({ type: 'window-moved', id: 1, x: 4, y: 4 }); // a known id, to know the others were handled
    await waitFor(() => events.at(-1)?.type === 'window-moved', 2000, 'the last event');
    expect(events.map((e) => e.type)).toEqual(['agent-connected', 'window-list', 'window-moved']);
    expect(proxy.table.windowsOf(name)).toMatchObject({ focused: 1, windows: [{ id: 1, x: 4 }] });
    expect(proxy.table.statusOf(name)!.events).toBe(9);
  });

  test('the proxy must prove itself: an agent rejects a WELCOME whose MAC is wrong', async () => {
    // A fake proxy that does not know the secret answers with a random MAC.
    const fake = await import('node:net');
    const server = fake.createServer((socket) => {
      socket.once('data', () => {
        socket.write(encodeMessage({ type: 'challenge', version: 1, proxyNonce: newNonce() }));
        socket.once('data', () =>
          socket.write(encodeMessage({ type: 'welcome', mac: randomBytes(32), heartbeatIntervalMs: 100 })),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const fakePort = (server.address() as { port: number }).port;
    try {
      await expect(
        AgentClient.connect({
          host: '127.0.0.1',
          port: fakePort,
          vmName: `${PREFIX}a`,
          secret: secretOf(`${PREFIX}a`),
          timeoutMs: 2000,
        }),
      ).rejects.toThrow(/did not prove it knows the secret/);
    } finally {
      server.close();
    }
  });
});

describe('refusals', () => {
  test('a wrong secret is refused with AUTH_FAILED and leaves no trace in the table', async () => {
    const attempt = agent(`${PREFIX}a`, { secret: randomBytes(32) });
    await expect(attempt).rejects.toThrow(ProtocolError);
    await expect(attempt).rejects.toMatchObject({ code: ErrorCode.AUTH_FAILED });
    expect(proxy.table.has(`${PREFIX}a`)).toBe(false);
    await waitFor(() => logs.some((l) => /closed: authentication failed/.test(l)));
  });

  test('a VM without a secret is refused the same way as a wrong secret', async () => {
    await expect(
      AgentClient.connect({
        host: '127.0.0.1',
        port,
        vmName: `${PREFIX}nosuch`,
        secret: randomBytes(32),
        timeoutMs: 2000,
      }),
    ).rejects.toMatchObject({ code: ErrorCode.AUTH_FAILED });
    expect(logs.some((l) => /no agent secret for this VM/.test(l))).toBe(true);
  });

  test('a tag for one VM cannot be used to log in as another VM', async () => {
    // Agent knows b's secret but claims to be a.
    await expect(agent(`${PREFIX}a`, { secret: secretOf(`${PREFIX}b`) })).rejects.toMatchObject({
      code: ErrorCode.AUTH_FAILED,
    });
  });

  test('a HELLO with a bad magic is closed without any reply', async () => {
    const peer = await raw();
    const hello = encodeMessage({
      type: 'hello',
      minVersion: 1,
      maxVersion: 1,
      vmName: `${PREFIX}a`,
      agentVersion: '',
      agentNonce: newNonce(),
    });
    hello.writeUInt32BE(0x48545450, 5); // "HTTP" where "VMPW" belongs
    peer.write(hello);
    await waitFor(() => peer.closed, 2000, 'close');
    expect(peer.received).toEqual([]);
    expect(logs.some((l) => /closed: hello: bad magic/.test(l))).toBe(true);
  });

  test('a first frame that is not even a frame (an HTTP request) is closed with PROTOCOL_ERROR', async () => {
    const peer = await raw();
    peer.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await waitFor(() => peer.closed, 2000, 'close');
    expect(peer.errorCode()).toBe(ErrorCode.PROTOCOL_ERROR);
  });

  test('a connection that ends inside a frame is closed without a reply', async () => {
    const peer = await raw();
    const hello = encodeMessage({
      type: 'hello',
      minVersion: 1,
      maxVersion: 1,
      vmName: `${PREFIX}a`,
      agentVersion: '',
      agentNonce: newNonce(),
    });
    peer.socket.end(hello.subarray(0, hello.length - 1));
    await waitFor(() => peer.closed, 2000, 'close');
    expect(peer.received).toEqual([]);
    expect(logs.some((l) => /closed: ended mid-frame: connection ended inside a frame/.test(l))).toBe(true);
  });

  test('an oversize length before authentication is refused from the header, without waiting', async () => {
    const peer = await raw();
    const header = Buffer.alloc(5);
    header.writeUInt32BE(0xfffffff0, 0);
    header.writeUInt8(0x18, 4);
    peer.write(header);
    await waitFor(() => peer.closed, 300, 'close well before the handshake timeout');
    expect(peer.errorCode()).toBe(ErrorCode.FRAME_TOO_LARGE);
  });

  test('a message other than HELLO first is a protocol error', async () => {
    const peer = await raw();
    peer.write(encodeMessage({ type: 'window-destroyed', id: 1 }));
    await waitFor(() => peer.closed, 2000, 'close');
    expect(peer.errorCode()).toBe(ErrorCode.PROTOCOL_ERROR);
  });

  test('an agent offering only a future protocol version gets UNSUPPORTED_VERSION', async () => {
    const peer = await raw();
    peer.write(
      encodeMessage({
        type: 'hello',
        minVersion: 7,
        maxVersion: 9,
        vmName: `${PREFIX}a`,
        agentVersion: '',
        agentNonce: newNonce(),
      }),
    );
    await waitFor(() => peer.closed, 2000, 'close');
    expect(peer.errorCode()).toBe(ErrorCode.UNSUPPORTED_VERSION);
  });

  test('a client that connects and says nothing is closed at the handshake timeout', async () => {
    const peer = await raw();
    await waitFor(() => peer.closed, 3000, 'handshake timeout');
    expect(logs.some((l) => /handshake not completed in time/.test(l))).toBe(true);
  });

  test('a secret lookup that never answers fails the handshake instead of hanging', async () => {
    await proxy.close();
    proxy = new ProxyServer({
      listen: [{ host: '127.0.0.1', port: 0 }],
      lookupSecret: () => new Promise(() => undefined),
      lookupTimeoutMs: 100,
      handshakeTimeoutMs: 5000,
      log: (line) => logs.push(line),
    });
    port = (await proxy.start())[0]!.port;
    await expect(agent(`${PREFIX}a`)).rejects.toMatchObject({ code: ErrorCode.INTERNAL });
    expect(logs.some((l) => /secret lookup timed out after 100 ms/.test(l))).toBe(true);
  });
});

describe('malformed frames after authentication', () => {
  test('garbage closes only the offending connection; the other agents keep working', async () => {
    const bad = await agent(`${PREFIX}a`);
    const good = await agent(`${PREFIX}b`);
    const closed = closeReason(bad);
    bad.socket.write(Buffer.from([0, 0, 0, 1, 0x7e, 0]));
    expect(await closed).toMatch(/proxy error 1: malformed frame: unknown message type 0x7e/);
    await waitFor(() => proxy.status().vms.find((v) => v.name === `${PREFIX}a`)?.connected === false);
    good.send({ type: 'window-created', window: testWindow(9) });
    await waitFor(() => proxy.table.windowsOf(`${PREFIX}b`)?.windows.length === 1);
    expect(proxy.table.statusOf(`${PREFIX}b`)!.connected).toBe(true);
  });

  test('a message an agent may not send (a challenge) is a protocol error', async () => {
    const a = await agent(`${PREFIX}a`);
    const closed = closeReason(a);
    a.send({ type: 'challenge', version: 1, proxyNonce: newNonce() });
    expect(await closed).toMatch(/challenge is not something an agent may send/);
  });

  test('a window count over the per-VM limit closes the agent', async () => {
    const a = await agent(`${PREFIX}a`);
    const closed = closeReason(a);
    for (let i = 1; i <= 4097; i++) a.send({ type: 'window-created', window: testWindow(i) });
    expect(await closed).toMatch(/too many windows/);
  });

  test('an agent that ends inside a frame is disconnected without an ERROR', async () => {
    const name = `${PREFIX}a`;
    const events: ProxyEvent[] = [];
    proxy.on('event', (e: ProxyEvent) => events.push(e));
    // No heartbeats: nothing may be written after the end.
    const a = await agent(name, { heartbeats: false });
    const closed = closeReason(a);
    a.socket.end(encodeMessage({ type: 'window-destroyed', id: 1 }).subarray(0, 7));
    expect(await closed).toBe('connection closed');
    await waitFor(() => events.at(-1)?.type === 'agent-disconnected', 2000, 'the disconnect');
    expect(events.at(-1)).toMatchObject({
      reason: 'ended mid-frame: connection ended inside a frame (7 bytes pending)',
    });
  });
});

describe('reconnects', () => {
  test('a second connection for the same VM replaces the first, and its snapshot replaces stale windows', async () => {
    const name = `${PREFIX}a`;
    const first = await agent(name);
    first.send({ type: 'window-list', focused: 1, windows: [testWindow(1), testWindow(2)] });
    await waitFor(() => proxy.table.windowsOf(name)?.windows.length === 2);
    const firstClosed = closeReason(first);
    const second = await agent(name);
    expect(await firstClosed).toMatch(/proxy error 5: replaced by a new connection/);
    second.send({ type: 'window-list', focused: 3, windows: [testWindow(3)] });
    await waitFor(() => proxy.table.windowsOf(name)?.windows.length === 1);
    const view = proxy.table.windowsOf(name)!;
    expect(view).toMatchObject({ connected: true, focused: 3 });
    expect(view.windows[0]!.id).toBe(3);
    // The replaced connection's close must not mark the VM disconnected.
    await new Promise((r) => setTimeout(r, 100));
    expect(proxy.table.statusOf(name)!.connected).toBe(true);
  });

  test('listeners see the replaced connection disconnect before the new one connects', async () => {
    const name = `${PREFIX}a`;
    const events: ProxyEvent[] = [];
    proxy.on('event', (e: ProxyEvent) => events.push(e));
    const first = await agent(name);
    const firstPeer = `${first.socket.localAddress}:${first.socket.localPort}`;
    const firstClosed = closeReason(first);
    const second = await agent(name);
    const secondPeer = `${second.socket.localAddress}:${second.socket.localPort}`;
    await firstClosed;
    second.close();
    await waitFor(() => events.length === 4, 2000, 'four connection events');
    const summary = events.map((e) => [e.type, 'peer' in e ? e.peer : 'reason' in e ? e.reason : '']);
    expect(summary).toEqual([
      ['agent-connected', firstPeer],
      ['agent-disconnected', `replaced by a new connection from ${secondPeer}`],
      ['agent-connected', secondPeer],
      ['agent-disconnected', 'agent closed the connection'],
    ]);
  });

  test('after a disconnect the windows are kept (stale) until the agent comes back', async () => {
    const name = `${PREFIX}b`;
    const a = await agent(name);
    a.send({ type: 'window-created', window: testWindow(5) });
    await waitFor(() => proxy.table.windowsOf(name)?.windows.length === 1);
    a.close();
    await waitFor(() => proxy.table.statusOf(name)?.connected === false);
    expect(proxy.table.windowsOf(name)!.windows).toHaveLength(1);
    const again = await agent(name);
    again.send({ type: 'window-list', focused: 0, windows: [] });
    await waitFor(() => proxy.table.windowsOf(name)?.windows.length === 0);
    expect(proxy.table.statusOf(name)!.connected).toBe(true);
  });
});

describe('remembered secrets (a resumed VM reconnects without waiting for the keyring)', () => {
  /** A proxy whose keyring answers after `delayMs`, counting the lookups. */
  async function slowKeyringProxy(
    delayMs: number,
    keyring: Map<string, Buffer>,
  ): Promise<{ server: ProxyServer; port: number; lookups: () => number }> {
    let lookups = 0;
    const server = new ProxyServer({
      listen: [{ host: '127.0.0.1', port: 0 }],
      lookupSecret: async (name) => {
        lookups++;
        await new Promise((r) => setTimeout(r, delayMs));
        return keyring.get(name) ?? null;
      },
      heartbeatIntervalMs: 1000,
      handshakeTimeoutMs: 5000,
      log: (line) => logs.push(line),
    });
    const [addr] = await server.start();
    return { server, port: addr!.port, lookups: () => lookups };
  }

  test('the second handshake of a VM does not wait for the keyring, which is still read', async () => {
    const name = `${PREFIX}c`;
    const keyring = new Map([[name, secretOf(name)]]);
    const slow = await slowKeyringProxy(600, keyring);
    try {
      const t0 = Date.now();
      const first = await agent(name, { port: slow.port });
      expect(Date.now() - t0).toBeGreaterThanOrEqual(600);
      first.close();
      const t1 = Date.now();
      const second = await agent(name, { port: slow.port });
      expect(Date.now() - t1).toBeLessThan(300);
      expect(slow.lookups()).toBe(2);
      await new Promise((r) => setTimeout(r, 800));
      expect(second.isClosed).toBe(false);
    } finally {
      await slow.server.close();
    }
  });

  test('a secret gone from or changed in the keyring closes the connection it let in, once the keyring answers', async () => {
    const name = `${PREFIX}d`;
    const keyring = new Map([[name, secretOf(name)]]);
    const slow = await slowKeyringProxy(300, keyring);
    try {
      (await agent(name, { port: slow.port })).close();
      keyring.set(name, randomBytes(32));
      const stale = await agent(name, { port: slow.port });
      expect(await closeReason(stale)).toMatch(/proxy error 3: the agent secret in the keyring changed/);
      // Forgotten: the next attempt with the old secret waits for the keyring and is refused.
      await expect(agent(name, { port: slow.port })).rejects.toThrow(/AUTH_FAILED|authentication failed/i);
    } finally {
      await slow.server.close();
    }
  });

  test('an agent with a new secret (the VM made again under its name) gets in after the keyring answers', async () => {
    const name = `${PREFIX}e`;
    const keyring = new Map([[name, secretOf(name)]]);
    const slow = await slowKeyringProxy(200, keyring);
    try {
      (await agent(name, { port: slow.port })).close();
      const renewed = randomBytes(32);
      keyring.set(name, renewed);
      const again = await agent(name, { port: slow.port, secret: renewed });
      await new Promise((r) => setTimeout(r, 400));
      expect(again.isClosed).toBe(false);
    } finally {
      await slow.server.close();
    }
  });
});

describe('heartbeats', () => {
  test('a silent agent is closed with HEARTBEAT_TIMEOUT; one that heartbeats stays', async () => {
    const silent = await agent(`${PREFIX}a`, { heartbeats: false });
    const lively = await agent(`${PREFIX}b`);
    const closed = closeReason(silent);
    expect(await closed).toMatch(/proxy error 4: silent for over 300 ms/);
    await new Promise((r) => setTimeout(r, 500));
    expect(lively.isClosed).toBe(false);
    expect(proxy.table.statusOf(`${PREFIX}b`)!.connected).toBe(true);
    expect(proxy.table.statusOf(`${PREFIX}a`)!.connected).toBe(false);
    expect(logs.some((l) => l.includes(`agent ${PREFIX}a`) && /silent for over/.test(l))).toBe(true);
  });
});

describe('clipboard', () => {
  /** Plays an agent whose clipboard holds `content`, and records what the proxy pastes. */
  function serveClipboard(a: AgentClient, content: string, pasted: Message[]): void {
    a.on('message', (m) => {
      if (m.type === 'clipboard-request') {
        a.send({
          type: 'clipboard-data',
          requestId: m.requestId,
          mimeType: 'text/plain;charset=utf-8',
          data: Buffer.from(content),
        });
      } else if (m.type === 'clipboard-data') {
        pasted.push(m);
        a.send({ type: 'clipboard-result', requestId: m.requestId, status: ClipboardStatus.OK, message: '' });
      }
    });
  }

  test('copy and paste work when the VM allows the clipboard', async () => {
    const name = `${PREFIX}a`;
    clipboardAllowed.add(name);
    const a = await agent(name);
    const pasted: Message[] = [];
    serveClipboard(a, 'from the guest ✓', pasted);
    const copied = await proxy.requestClipboard(name);
    expect(copied.data.toString()).toBe('from the guest ✓');
    expect(copied.mimeType).toBe('text/plain;charset=utf-8');
    await proxy.sendClipboard(name, {
      mimeType: 'text/plain;charset=utf-8',
      data: Buffer.from('from the host'),
    });
    expect(pasted).toHaveLength(1);
    expect(pasted[0]!.type === 'clipboard-data' && pasted[0]!.data.toString()).toBe('from the host');
  });

  test('both directions are refused unless the VM enables the clipboard, and nothing reaches the agent', async () => {
    const name = `${PREFIX}a`;
    const a = await agent(name);
    const seen: Message[] = [];
    a.on('message', (m) => seen.push(m));
    await expect(proxy.requestClipboard(name)).rejects.toMatchObject({ code: 'refused' });
    await expect(
      proxy.sendClipboard(name, { mimeType: 'text/plain', data: Buffer.from('x') }),
    ).rejects.toMatchObject({
      code: 'refused',
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(seen).toEqual([]);
  });

  test('an agent that does not answer times out; an unknown VM is not_found; an agent error is reported', async () => {
    const name = `${PREFIX}a`;
    clipboardAllowed.add(name);
    clipboardAllowed.add(`${PREFIX}b`);
    await agent(name);
    await expect(proxy.requestClipboard(name, 150)).rejects.toMatchObject({ code: 'timeout' });
    await expect(proxy.requestClipboard(`${PREFIX}nosuch`)).rejects.toBeInstanceOf(ProxyRequestError);
    await expect(proxy.requestClipboard(`${PREFIX}nosuch`)).rejects.toMatchObject({ code: 'not_found' });
    const b = await agent(`${PREFIX}b`);
    b.on('message', (m) => {
      if (m.type === 'clipboard-request') {
        b.send({
          type: 'clipboard-result',
          requestId: m.requestId,
          status: ClipboardStatus.EMPTY,
          message: 'nothing copied',
        });
      }
    });
    await expect(proxy.requestClipboard(`${PREFIX}b`)).rejects.toThrow(/answered EMPTY: nothing copied/);
  });

  test('each CLIPBOARD_RESULT status maps to the control error docs/protocol.md lists', async () => {
    const name = `${PREFIX}a`;
    clipboardAllowed.add(name);
    const a = await agent(name);
    let answer: { status: number; message: string } | 'data' = 'data';
    a.on('message', (m) => {
      if (m.type !== 'clipboard-request' && m.type !== 'clipboard-data') return;
      if (answer === 'data') {
        a.send({
          type: 'clipboard-data',
          requestId: m.requestId,
          mimeType: 'text/plain',
          data: Buffer.from('x'),
        });
      } else {
        a.send({ type: 'clipboard-result', requestId: m.requestId, ...answer });
      }
    });
    const paste = (): Promise<void> =>
      proxy.sendClipboard(name, { mimeType: 'text/plain', data: Buffer.from('y') }, 300);
    const cases: Array<[number, string, string, string]> = [
      [ClipboardStatus.OK, '', 'failed', 'answered status 0'],
      [ClipboardStatus.REFUSED, 'no', 'refused', 'answered REFUSED: no'],
      [ClipboardStatus.EMPTY, '', 'failed', 'answered EMPTY'],
      [ClipboardStatus.TOO_LARGE, 'big', 'failed', 'answered TOO_LARGE: big'],
      [ClipboardStatus.FAILED, 'x', 'failed', 'answered FAILED: x'],
      [9, '', 'failed', 'answered status 9'],
    ];
    for (const [status, message, code, text] of cases) {
      answer = { status, message };
      const copy = proxy.requestClipboard(name, 300);
      await expect(copy).rejects.toMatchObject({ code });
      await expect(copy).rejects.toThrow(new RegExp(`${text}$`));
      if (status === ClipboardStatus.OK) await expect(paste()).resolves.toBeUndefined();
      else await expect(paste()).rejects.toMatchObject({ code });
    }
    answer = 'data';
    await expect(paste()).rejects.toMatchObject({ code: 'timeout' });
  });

  test('an oversize paste is refused before it is sent', async () => {
    const name = `${PREFIX}a`;
    clipboardAllowed.add(name);
    await agent(name);
    await expect(
      proxy.sendClipboard(name, { mimeType: 'text/plain', data: Buffer.alloc(256 * 1024 + 1) }),
    ).rejects.toMatchObject({ code: 'bad_request' });
  });
});
