import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  AgentClient,
  encodeHello,
  encodeMessage,
  type AgentClientOptions,
} from '../../../src/protocol/index.js';
import { ProxyServer, type ProxyEvent, type ProxyServerOptions } from '../../../src/proxy/server.js';
import { serialLinkBench, type SerialLinkBench } from '../../support/serial-link.js';
import { agentSocketPath, listenAgentSocket } from '../../../src/proxy/agent-socket.js';
import { testWindow, waitFor } from '../../support/fake-agent.js';

/**
 * The agents' virtio-serial links (docs/protocol.md, "Transport") as the proxy
 * sees them: QEMU connects to a Unix socket, then the guest's agent speaks over
 * that connection. Here a real Unix-socket client plays QEMU's end and the
 * protocol's own AgentClient the agent, over a real proxy.
 */

const VM = 'vmp-t-serial-a';
const secret = randomBytes(32);
let bench: SerialLinkBench;
let dir: string;
let socketPath: string;
let proxy: ProxyServer;
let events: ProxyEvent[];
let logs: string[];

beforeEach(async () => {
  bench = await serialLinkBench('vmp-agent-sock-', async (name) => (name === VM ? secret : null), {
    heartbeatIntervalMs: 60_000,
  });
  ({ dir, socketPath, proxy, events, logs } = bench);
});

/** Another proxy on the test's agent socket, in place of the first. */
async function proxyOnSocket(options: Partial<ProxyServerOptions>): Promise<ProxyServer> {
  return bench.restart(options);
}

afterEach(() => bench.close());

/** The protocol's own agent, as VM, over `link` (QEMU's end of its port). */
function agentOver(link: net.Socket, options: Partial<AgentClientOptions> = {}): Promise<AgentClient> {
  return AgentClient.connect({ host: 'serial', port: 0, open: () => link, vmName: VM, secret, ...options });
}

const qemuEnd = (): Promise<net.Socket> => bench.qemuEnd();

test('an agent authenticates over the socket and its windows reach the proxy; the socket is 0666 in a 0711 directory', async () => {
  expect((await fs.stat(socketPath)).mode & 0o777).toBe(0o666);
  expect((await fs.stat(dir)).mode & 0o777).toBe(0o711);
  expect(proxy.status().listening).toEqual([`unix:${socketPath}`]);
  const link = await qemuEnd();
  const client = await agentOver(link, { timeoutMs: 5000 });
  client.send({ type: 'window-list', focused: 7, windows: [testWindow(7, 'xterm')] });
  await waitFor(() =>
    proxy.status().vms.some((v) => v.name === VM && v.windows === 1 && v.peer === 'virtio-serial'),
  );
  expect(events.find((e) => e.type === 'agent-connected')).toMatchObject({ vm: VM, peer: 'virtio-serial' });
  client.close();
});

test('whole frames left over from before a restore are skipped until HELLO; garbage still ends the link', async () => {
  const link = await qemuEnd();
  // What a restored guest's old link may still send: a heartbeat or two, ahead of the new HELLO.
  link.write(encodeMessage({ type: 'heartbeat', seq: 41 }));
  link.write(encodeMessage({ type: 'heartbeat', seq: 42 }));
  const client = await agentOver(link);
  expect(client.isClosed).toBe(false);
  client.close();

  const bad = await qemuEnd();
  const closed = new Promise<void>((resolve) => bad.once('close', () => resolve()));
  bad.on('error', () => undefined);
  bad.resume();
  bad.write(Buffer.from('not a frame at all, just bytes'));
  await closed;
  expect(proxy.status().vms.find((v) => v.name === VM)?.connected ?? false).toBe(false);
});

test('a new HELLO on a link that had a session (a resume) starts a new session on it; frames the proxy sent meanwhile are skipped by the agent', async () => {
  proxy = await proxyOnSocket({ heartbeatIntervalMs: 50, heartbeatTimeoutMs: 10_000 });
  const link = await qemuEnd();
  const first = await agentOver(link, { keepOpen: true, heartbeats: false });
  first.send({ type: 'window-list', focused: 1, windows: [testWindow(1, 'before')] });
  await waitFor(() => proxy.status().vms.find((v) => v.name === VM)?.windows === 1 || undefined);
  // The agent ends its session (its VM resumed) but keeps the port open, while the proxy keeps sending
  // heartbeats into it: they are read by nobody until the next handshake, which skips them.
  link.pause();
  first.close();
  expect(link.destroyed).toBe(false);
  await new Promise((resolve) => setTimeout(resolve, 300));
  link.resume();
  const second = await agentOver(link, { heartbeats: false });
  second.send({
    type: 'window-list',
    focused: 2,
    windows: [testWindow(2, 'after'), testWindow(3, 'also after')],
  });
  await waitFor(() => proxy.status().vms.find((v) => v.name === VM)?.windows === 2 || undefined);
  const kinds = events.filter((e) => e.type === 'agent-connected' || e.type === 'agent-disconnected');
  expect(kinds.map((e) => e.type)).toEqual(['agent-connected', 'agent-disconnected', 'agent-connected']);
  expect(kinds[1]).toMatchObject({
    reason: 'the agent started a new handshake on its link (its VM resumed)',
  });
  expect(proxy.status().vms.find((v) => v.name === VM)).toMatchObject({
    connected: true,
    peer: 'virtio-serial',
  });
  second.close();
});

test("a link whose agent has not spoken is left open (QEMU connects long before the guest's session is up); its first byte starts the handshake clock", async () => {
  proxy = await proxyOnSocket({ handshakeTimeoutMs: 100 });
  const link = await qemuEnd();
  link.on('error', () => undefined);
  link.resume();
  let closed = false;
  link.once('close', () => (closed = true));
  await new Promise((resolve) => setTimeout(resolve, 400));
  expect(closed).toBe(false);
  // Half a frame, then nothing: now the 100 ms apply.
  link.write(encodeMessage({ type: 'heartbeat', seq: 1 }).subarray(0, 5));
  await waitFor(() => closed || undefined, 5000);
  expect(logs.some((l) => /handshake not completed in time/.test(l))).toBe(true);
});

test('a HELLO written ahead (the agent resuming) and the handshake picked up from it on the same link', async () => {
  const link = await qemuEnd();
  const first = await agentOver(link, { keepOpen: true, heartbeats: false });
  first.close();
  const nonce = randomBytes(32);
  link.write(encodeHello(VM, 'test', nonce));
  // The proxy's CHALLENGE may come before the next client listens: the link was paused by the close.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const second = await agentOver(link, { keepOpen: true, helloSent: nonce, heartbeats: false });
  second.send({ type: 'window-list', focused: 9, windows: [testWindow(9, 'resumed')] });
  await waitFor(() => proxy.status().vms.find((v) => v.name === VM)?.windows === 1 || undefined);
  expect(events.filter((e) => e.type === 'agent-connected')).toHaveLength(2);
  second.close();
});

test('a TCP link still gets no such leeway: anything before HELLO ends it', async () => {
  const tcp = new ProxyServer({
    listen: [{ host: '127.0.0.1', port: 0 }],
    lookupSecret: async () => secret,
    log: () => undefined,
  });
  const [addr] = await tcp.start();
  try {
    const socket = net.connect({ host: '127.0.0.1', port: addr!.port });
    socket.on('error', () => undefined);
    socket.resume();
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(encodeMessage({ type: 'heartbeat', seq: 1 }));
    await closed;
  } finally {
    await tcp.close();
  }
});

test('a second proxy on a live socket is refused; a dead one is replaced; the socket goes when the proxy closes', async () => {
  await expect(listenAgentSocket(socketPath, () => undefined)).rejects.toThrow(
    `agent socket '${socketPath}' is in use: another proxy listens on it`,
  );
  await proxy.close();
  await expect(fs.lstat(socketPath)).rejects.toThrow(/ENOENT/);
  // A crashed proxy's socket file: its process was killed, so nobody answers on it and nobody unlinked it.
  const crashed = spawn(process.execPath, [
    '-e',
    `require('net').createServer().listen(${JSON.stringify(socketPath)}, () => console.log('up'))`,
  ]);
  await new Promise<void>((resolve) => crashed.stdout.once('data', () => resolve()));
  const file = await fs.lstat(socketPath);
  crashed.kill('SIGKILL');
  await new Promise<void>((resolve) => crashed.once('exit', () => resolve()));
  expect((await fs.lstat(socketPath)).ino).toBe(file.ino);
  const again = await listenAgentSocket(socketPath, () => undefined);
  const answered = net.connect(socketPath);
  await new Promise<void>((resolve, reject) => {
    answered.once('connect', resolve);
    answered.once('error', reject);
  });
  answered.destroy();
  again.server.close();
  await again.remove();
});

test('a directory others can write, or something else at the path, is refused with one line', async () => {
  const open = await fs.mkdtemp(path.join(os.tmpdir(), 'vmp-agent-open-'));
  try {
    await fs.chmod(open, 0o777);
    await expect(listenAgentSocket(path.join(open, 'agent.sock'), () => undefined)).rejects.toThrow(
      `agent socket directory '${open}' is unsafe: it must be a directory of this user that no one else can write`,
    );
    await fs.chmod(open, 0o700);
    await fs.writeFile(path.join(open, 'agent.sock'), 'x');
    await expect(listenAgentSocket(path.join(open, 'agent.sock'), () => undefined)).rejects.toThrow(
      `agent socket '${path.join(open, 'agent.sock')}' is invalid: something other than a socket is there`,
    );
    await expect(listenAgentSocket('relative/agent.sock', () => undefined)).rejects.toThrow(
      /^agent socket 'relative\/agent.sock' is invalid: must be an absolute path/,
    );
  } finally {
    await fs.rm(open, { recursive: true, force: true });
  }
});

test('the fixed path the CLI writes into domains is per user', () => {
  expect(agentSocketPath(1000)).toBe('/tmp/vm-provisioner-agents-1000/agent.sock');
});
