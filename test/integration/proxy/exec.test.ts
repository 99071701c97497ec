import { randomBytes } from 'node:crypto';
import {
  AgentClient,
  encodeMessage,
  ExecStatus,
  PROTOCOL_VERSION,
  type Message,
} from '../../../src/protocol/index.js';
import { ProxyServer, ProxyRequestError, type ProxyEvent } from '../../../src/proxy/server.js';
import { handshakenRawPeer, RawPeer, waitFor } from '../../support/fake-agent.js';

/**
 * The proxy's side of EXEC over real TCP on loopback: agents are played by
 * the protocol's own client (version 3) and by raw version-1 and version-2 peers.
 */

const PREFIX = 'vmp-t-proto-exec-';
const secrets = new Map([`${PREFIX}a`, `${PREFIX}old`, `${PREFIX}b`].map((n) => [n, randomBytes(32)]));
let proxy: ProxyServer;
let port: number;
const clients: AgentClient[] = [];
const raws: RawPeer[] = [];

async function agent(name: string): Promise<AgentClient> {
  const client = await AgentClient.connect({
    host: '127.0.0.1',
    port,
    vmName: name,
    secret: secrets.get(name)!,
  });
  clients.push(client);
  return client;
}

/** Answers every EXEC the way the test says. */
function answering(
  client: AgentClient,
  answer: (m: Extract<Message, { type: 'exec' }>) => Message | null,
): Message[] {
  const seen: Message[] = [];
  client.on('message', (m) => {
    seen.push(m);
    if (m.type !== 'exec') return;
    const reply = answer(m);
    if (reply) client.send(reply);
  });
  return seen;
}

beforeEach(async () => {
  proxy = new ProxyServer({
    listen: [{ host: '127.0.0.1', port: 0 }],
    lookupSecret: async (n) => secrets.get(n) ?? null,
    execTimeoutMs: 500,
    log: () => undefined,
  });
  port = (await proxy.start())[0]!.port;
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const r of raws.splice(0)) r.destroy();
  await proxy.close();
});

test("EXEC goes to the VM's agent and its STARTED answer resolves with the pid", async () => {
  const a = await agent(`${PREFIX}a`);
  const seen = answering(a, (m) => ({
    type: 'exec-result',
    requestId: m.requestId,
    status: ExecStatus.STARTED,
    pid: 321,
    message: '',
  }));
  await expect(proxy.exec(`${PREFIX}a`, ['xterm', '-T', 'x y'])).resolves.toEqual({
    pid: 321,
    execId: expect.any(Number),
  });
  expect(seen).toEqual([{ type: 'exec', requestId: expect.any(Number), argv: ['xterm', '-T', 'x y'] }]);
  expect(a.version).toBe(PROTOCOL_VERSION);
});

test('EXEC_EXITED is published under the exec id the EXEC resolved with, also from a later link', async () => {
  const a = await agent(`${PREFIX}a`);
  answering(a, (m) => ({
    type: 'exec-result',
    requestId: m.requestId,
    status: ExecStatus.STARTED,
    pid: 9,
    message: '',
  }));
  const events: ProxyEvent[] = [];
  proxy.on('event', (e: ProxyEvent) => events.push(e));
  const { execId } = await proxy.exec(`${PREFIX}a`, ['xterm']);
  a.send({ type: 'exec-exited', requestId: execId, how: 1, code: 15 });
  const ended = await waitFor(() => events.find((e) => e.type === 'exec-exited'), 2000, 'exec-exited');
  expect(ended).toMatchObject({ vm: `${PREFIX}a`, type: 'exec-exited', execId, how: 'signalled', code: 15 });
  // A reconnected agent reports on its new link; the proxy matches nothing and keeps the link.
  a.close();
  const again = await agent(`${PREFIX}a`);
  again.send({ type: 'exec-exited', requestId: execId + 1000, how: 0, code: 0 });
  await waitFor(
    () => events.find((e) => e.type === 'exec-exited' && e.execId === execId + 1000),
    2000,
    'the second',
  );
  expect(proxy.status().vms.find((v) => v.name === `${PREFIX}a`)?.connected).toBe(true);
});

test("REFUSED and FAILED answers become refused and failed errors with the agent's message; the link stays", async () => {
  const a = await agent(`${PREFIX}a`);
  let status: number = ExecStatus.REFUSED;
  answering(a, (m) => ({ type: 'exec-result', requestId: m.requestId, status, pid: 0, message: 'nope' }));
  await expect(proxy.exec(`${PREFIX}a`, ['xterm'])).rejects.toMatchObject({
    code: 'refused',
    message: `the agent in ${PREFIX}a answered REFUSED: nope`,
  });
  status = 77;
  await expect(proxy.exec(`${PREFIX}a`, ['xterm'])).rejects.toMatchObject({
    code: 'failed',
    message: `the agent in ${PREFIX}a answered status 77: nope`,
  });
  expect(a.isClosed).toBe(false);
  expect(proxy.status().vms[0]).toMatchObject({ name: `${PREFIX}a`, connected: true });
});

test('no answer in time is a timeout; a late answer is dropped and the link stays', async () => {
  const a = await agent(`${PREFIX}a`);
  const pending: number[] = [];
  let reply = false;
  answering(a, (m) => {
    pending.push(m.requestId);
    return reply ? { type: 'exec-result', requestId: m.requestId, status: 0, pid: 5, message: '' } : null;
  });
  await expect(proxy.exec(`${PREFIX}a`, ['xterm'])).rejects.toMatchObject({ code: 'timeout' });
  a.send({ type: 'exec-result', requestId: pending[0]!, status: 0, pid: 1, message: '' });
  a.send({ type: 'exec-result', requestId: 999_999, status: 0, pid: 1, message: '' });
  // The same link answers the next request: the late and the unsolicited answers were dropped, not fatal.
  reply = true;
  await expect(proxy.exec(`${PREFIX}a`, ['xterm'])).resolves.toEqual({ pid: 5, execId: expect.any(Number) });
  expect(a.isClosed).toBe(false);
});

test('an agent that disconnects before answering fails the request as not_connected', async () => {
  const a = await agent(`${PREFIX}a`);
  answering(a, () => {
    setImmediate(() => a.close());
    return null;
  });
  await expect(proxy.exec(`${PREFIX}a`, ['xterm'])).rejects.toMatchObject({ code: 'not_connected' });
});

test('EXEC waits for an agent that connects within the wait, and fails clearly when none does', async () => {
  const pending = proxy.exec(`${PREFIX}b`, ['xterm'], { waitMs: 5000 });
  const b = await agent(`${PREFIX}b`);
  answering(b, (m) => ({ type: 'exec-result', requestId: m.requestId, status: 0, pid: 7, message: '' }));
  await expect(pending).resolves.toEqual({ pid: 7, execId: expect.any(Number) });
  await expect(proxy.exec(`${PREFIX}nobody`, ['xterm'], { waitMs: 200 })).rejects.toThrow(
    'the agent in VM "vmp-t-proto-exec-nobody" has not connected (waited 200 ms)',
  );
  await expect(proxy.exec(`${PREFIX}nobody`, ['xterm'])).rejects.toMatchObject({ code: 'not_found' });
});

test('a wait abandoned by its asker ends at once, and the agent that connects later is sent nothing', async () => {
  const gone = new AbortController();
  const pending = proxy.exec(`${PREFIX}b`, ['xterm'], { waitMs: 5000, signal: gone.signal });
  gone.abort();
  await expect(pending).rejects.toThrow('the request for VM "vmp-t-proto-exec-b" was abandoned');
  const b = await agent(`${PREFIX}b`);
  const seen = answering(b, () => null);
  await new Promise((r) => setTimeout(r, 200));
  expect(seen.filter((m) => m.type === 'exec')).toEqual([]);
  expect(proxy.listenerCount('event')).toBe(0);
});

test('with connectedSinceMs, only a connection made since then gets the EXEC: an older one is passed over', async () => {
  const old = await agent(`${PREFIX}a`);
  const oldSeen = answering(old, (m) => ({
    type: 'exec-result',
    requestId: m.requestId,
    status: 0,
    pid: 1,
    message: '',
  }));
  const since = Date.now() + 1;
  await new Promise((r) => setTimeout(r, 5));
  const pending = proxy.exec(`${PREFIX}a`, ['xterm'], { waitMs: 5000, connectedSinceMs: since });
  const renewed = await agent(`${PREFIX}a`);
  answering(renewed, (m) => ({
    type: 'exec-result',
    requestId: m.requestId,
    status: 0,
    pid: 2,
    message: '',
  }));
  await expect(pending).resolves.toEqual({ pid: 2, execId: expect.any(Number) });
  expect(oldSeen.filter((m) => m.type === 'exec')).toEqual([]);
  await expect(
    proxy.exec(`${PREFIX}a`, ['xterm'], { waitMs: 200, connectedSinceMs: Date.now() + 60_000 }),
  ).rejects.toThrow(
    `the agent in VM "${PREFIX}a" has not connected again since the VM was started or resumed (waited 200 ms)`,
  );
});

test('a bad argv never leaves the proxy', async () => {
  const a = await agent(`${PREFIX}a`);
  const seen = answering(a, () => null);
  for (const argv of [[], ['sh -c x'], ['xterm', 'a\0b'], Array.from({ length: 65 }, () => 'x')]) {
    await expect(proxy.exec(`${PREFIX}a`, argv)).rejects.toBeInstanceOf(ProxyRequestError);
  }
  await new Promise((r) => setTimeout(r, 50));
  expect(seen).toEqual([]);
});

test("an agent that sends EXEC (the proxy's message) breaks the protocol and is closed with ERROR 1", async () => {
  const a = await agent(`${PREFIX}a`);
  const closed = new Promise<string>((r) => a.once('close', r));
  a.send({ type: 'exec', requestId: 1, argv: ['reboot'] });
  expect(await closed).toBe('proxy error 1: exec is not something an agent may send');
});

test('a version-1 agent is never sent EXEC: the request is refused, and its EXEC_RESULT would break the protocol', async () => {
  const name = `${PREFIX}old`;
  const { peer, version } = await handshakenRawPeer(port, name, secrets.get(name)!, 1);
  raws.push(peer);
  expect(version).toBe(1);
  await expect(proxy.exec(name, ['xterm'])).rejects.toMatchObject({
    code: 'refused',
    message: `the agent in VM "${name}" speaks protocol version 1, which cannot run commands; update its guest agent`,
  });
  expect(peer.received.some((m) => m.type === 'exec')).toBe(false);
  peer.write(encodeMessage({ type: 'exec-result', requestId: 1, status: 0, pid: 1, message: '' }));
  await waitFor(() => peer.closed, 2000, 'the proxy to close');
  expect(peer.errorCode()).toBe(1);
});

test('EXEC_EXITED on a version-2 link breaks the protocol: ERROR and close', async () => {
  const name = `${PREFIX}old`;
  const { peer, version } = await handshakenRawPeer(port, name, secrets.get(name)!, 2);
  raws.push(peer);
  expect(version).toBe(2);
  peer.write(encodeMessage({ type: 'exec-exited', requestId: 1, how: 0, code: 0 }));
  await waitFor(() => peer.closed, 2000, 'the proxy to close');
  expect(peer.errorCode()).toBe(1);
});
