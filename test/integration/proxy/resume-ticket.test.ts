import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import {
  AgentClient,
  computeAuthMac,
  encodeHello,
  encodeMessage,
  ErrorCode,
  FrameDecoder,
  prepareResume,
  type AgentClientOptions,
  type Message,
  type PreparedResume,
} from '../../../src/protocol/index.js';
import { ControlServer } from '../../../src/proxy/control-socket.js';
import { controlRequest } from '../../../src/proxy/control-client.js';
import type { ProxyEvent, ProxyServer } from '../../../src/proxy/server.js';
import { serialLinkBench, type SerialLinkBench } from '../../support/serial-link.js';
import { testWindow, waitFor } from '../../support/fake-agent.js';

/**
 * Resume tickets (docs/protocol.md, "Resume"), against a real proxy on a real
 * agent socket: a Unix-socket client plays QEMU's end of the VM's port and the
 * protocol's own AgentClient the agent. A RESUME with the window list behind
 * it is taken without a challenge; a ticket serves once; anything else is
 * challenged as a HELLO, with the frames behind the RESUME skipped.
 */

const VM = 'vmp-t-ticket-a';
const secret = randomBytes(32);
let bench: SerialLinkBench;
let dir: string;
let proxy: ProxyServer;
let events: ProxyEvent[];
let logs: string[];

beforeEach(async () => {
  bench = await serialLinkBench('vmp-ticket-', async (name) => (name === VM ? secret : null), {
    heartbeatIntervalMs: 60_000,
  });
  ({ dir, proxy, events, logs } = bench);
});

afterEach(() => bench.close());

const qemuEnd = (): Promise<net.Socket> => bench.qemuEnd();

function agentOver(link: net.Socket, options: Partial<AgentClientOptions> = {}): Promise<AgentClient> {
  return AgentClient.connect({
    host: 'serial',
    port: 0,
    open: () => link,
    keepOpen: true,
    heartbeats: false,
    vmName: VM,
    secret,
    ...options,
  });
}

/** A first session, as after a boot, and the ticket it was given. */
async function sessionWithTicket(): Promise<{ link: net.Socket; client: AgentClient; ticket: Buffer }> {
  const link = await qemuEnd();
  const client = await agentOver(link);
  const [ticket] = (await once(client, 'ticket')) as [Buffer];
  return { link, client, ticket };
}

const listFrame = (...titles: string[]): Buffer =>
  encodeMessage({
    type: 'window-list',
    focused: 0,
    windows: titles.map((t, i) => testWindow(100 + i, t)),
  });

const windowsOf = (): number | undefined => proxy.status().vms.find((v) => v.name === VM)?.windows;

/** The titles of every window list the proxy took, in order. */
const titlesListed = (): string[] =>
  events.flatMap((e) => (e.type === 'window-list' ? e.windows.map((w) => w.title) : []));

test('a RESUME with the window list behind it, on a new link: the list is taken at once, WELCOME carries the expected proof, and a new ticket follows', async () => {
  const first = await sessionWithTicket();
  expect(first.ticket).toHaveLength(32);
  const prepared = prepareResume(VM, 'test', secret, first.client.version, first.ticket);
  // A restore: the QEMU process that carried the link is gone, a new one connects.
  first.link.destroy();
  await waitFor(() => events.some((e) => e.type === 'agent-disconnected') || undefined);
  const link = await qemuEnd();
  link.write(Buffer.concat([prepared.frame, listFrame('xterm')]));
  const client = await agentOver(link, { resumeSent: prepared });
  const [next] = (await once(client, 'ticket')) as [Buffer];
  expect(next.equals(first.ticket)).toBe(false);
  expect(client.version).toBe(first.client.version);
  await waitFor(() => windowsOf() === 1 || undefined);
  expect(logs).toContain(`agent ${VM} connected from virtio-serial (resumed on its ticket)`);
  expect(logs.filter((l) => /resume not taken/.test(l))).toEqual([]);
  client.close();
});

test('a ticket serves once: the same RESUME again is challenged as a HELLO, the list behind it skipped, and AUTH gets the agent in', async () => {
  const first = await sessionWithTicket();
  const prepared = prepareResume(VM, 'test', secret, first.client.version, first.ticket);
  first.link.destroy();
  const second = await qemuEnd();
  second.write(Buffer.concat([prepared.frame, listFrame('first')]));
  (await agentOver(second, { resumeSent: prepared })).close();
  second.destroy();
  await waitFor(() =>
    events.filter((e) => e.type === 'agent-disconnected').length === 2 ? true : undefined,
  );

  const third = await qemuEnd();
  third.write(Buffer.concat([prepared.frame, listFrame('replayed', 'twice')]));
  const client = await agentOver(third, { resumeSent: prepared });
  // The proxy holds the newer ticket it gave the second session: the replayed RESUME proves the old one.
  expect(logs).toContain(
    `agent ${VM} (virtio-serial): resume not taken (its MAC does not verify); challenging it as after a HELLO`,
  );
  client.send({ type: 'window-list', focused: 0, windows: [testWindow(7, 'after auth')] });
  await waitFor(() => titlesListed().includes('after auth') || undefined);
  // The replayed list was skipped, not taken.
  expect(titlesListed()).toEqual(['first', 'after auth']);
  expect(logs.filter((l) => /protocol error|expected auth/.test(l))).toEqual([]);
  client.close();
});

test('a RESUME proving another secret is challenged, fails at AUTH, and used the ticket up', async () => {
  const first = await sessionWithTicket();
  first.link.destroy();
  const wrong = randomBytes(32);
  const forged = prepareResume(VM, 'test', wrong, first.client.version, first.ticket);
  const link = await qemuEnd();
  link.write(Buffer.concat([forged.frame, listFrame('forged')]));
  await expect(agentOver(link, { resumeSent: forged, secret: wrong })).rejects.toMatchObject({
    code: ErrorCode.AUTH_FAILED,
  });
  expect(logs).toContain(
    `agent ${VM} (virtio-serial): resume not taken (its MAC does not verify); challenging it as after a HELLO`,
  );
  expect(titlesListed()).toEqual([]);
  // The genuine agent's RESUME on the same ticket comes too late: the ticket went with the forged one.
  const genuine = prepareResume(VM, 'test', secret, first.client.version, first.ticket);
  const again = await qemuEnd();
  again.write(Buffer.concat([genuine.frame, listFrame('genuine')]));
  const client = await agentOver(again, { resumeSent: genuine });
  expect(logs.filter((l) => /resumed on its ticket/.test(l))).toEqual([]);
  client.close();
});

test("a RESUME on a live session's link (a pause) starts the session again on the same link", async () => {
  const first = await sessionWithTicket();
  first.client.send({ type: 'window-list', focused: 0, windows: [testWindow(1, 'before')] });
  await waitFor(() => windowsOf() === 1 || undefined);
  const prepared: PreparedResume = prepareResume(VM, 'test', secret, first.client.version, first.ticket);
  first.link.pause();
  first.client.close();
  first.link.write(Buffer.concat([prepared.frame, listFrame('after', 'pause')]));
  first.link.resume();
  const client = await agentOver(first.link, { resumeSent: prepared });
  await waitFor(() => windowsOf() === 2 || undefined);
  const kinds = events.filter((e) => e.type === 'agent-connected' || e.type === 'agent-disconnected');
  expect(kinds.map((e) => e.type)).toEqual(['agent-connected', 'agent-disconnected', 'agent-connected']);
  expect(logs).toContain(`agent ${VM} connected from virtio-serial (resumed on its ticket)`);
  client.close();
});

test('a version-3 session gets no ticket: WELCOME and nothing after it', async () => {
  const link = await qemuEnd();
  const decoder = new FrameDecoder();
  const received: Message[] = [];
  link.on('data', (chunk: Buffer) => {
    for (const r of decoder.push(chunk)) if (r.ok) received.push(r.message);
  });
  const agentNonce = randomBytes(32);
  const hello = encodeHello(VM, 'old', agentNonce);
  // The same HELLO with maxVersion 3: bytes 9-10 of the frame (after length, type and magic) hold minVersion.
  hello.writeUInt16BE(3, 11);
  link.write(hello);
  await waitFor(() => received.find((m) => m.type === 'challenge'));
  const challenge = received.find((m) => m.type === 'challenge')!;
  if (challenge.type !== 'challenge') throw new Error('no challenge');
  expect(challenge.version).toBe(3);
  const ctx = { vmName: VM, version: 3, agentNonce, proxyNonce: challenge.proxyNonce };
  link.write(encodeMessage({ type: 'auth', mac: computeAuthMac(secret, 'agent', ctx) }));
  await waitFor(() => received.find((m) => m.type === 'welcome'));
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(received.map((m) => m.type)).toEqual(['challenge', 'welcome']);
  link.destroy();
});

test('a proxy that did not issue the ticket (restarted since) challenges the RESUME', async () => {
  const first = await sessionWithTicket();
  const prepared = prepareResume(VM, 'test', secret, first.client.version, first.ticket);
  first.link.destroy();
  proxy = await bench.restart();
  const link = await qemuEnd();
  link.write(Buffer.concat([prepared.frame, listFrame('stale')]));
  const client = await agentOver(link, { resumeSent: prepared });
  expect(logs).toContain(
    `agent ${VM} (virtio-serial): resume not taken (no ticket for this VM); challenging it as after a HELLO`,
  );
  // In by AUTH; its first ticket from this proxy follows.
  const [ticket] = (await once(client, 'ticket')) as [Buffer];
  expect(ticket.equals(first.ticket)).toBe(false);
  client.close();
});

test('a handshake abandoned by its signal (the VM resumed again) rejects at once and lets the link go', async () => {
  const link = await qemuEnd();
  const controller = new AbortController();
  const attempt = agentOver(link, { signal: controller.signal, timeoutMs: 30_000 });
  const started = Date.now();
  controller.abort();
  await expect(attempt).rejects.toThrow('handshake with serial:0 abandoned');
  expect(Date.now() - started).toBeLessThan(1000);
  expect(link.destroyed).toBe(true);
});

test('a snapshot keeps its ticket: pinned at create, each revert re-arms it for one RESUME, delete unpins it (over the control socket)', async () => {
  const control = new ControlServer(proxy, {
    socketPath: path.join(dir, 'control.sock'),
    log: () => undefined,
  });
  await control.start();
  const ask = <T>(op: string, fields: Record<string, unknown>): Promise<T> =>
    controlRequest<T>(op, fields, { socketPath: path.join(dir, 'control.sock'), timeoutMs: 2000 });
  try {
    const first = await sessionWithTicket();
    // `snapshot create --memory`: the agent holds this ticket inside the snapshot.
    expect(await ask('ticket-pin', { vm: VM, snapshot: 'clean' })).toEqual({ pinned: true });
    const inSnapshot = prepareResume(VM, 'test', secret, first.client.version, first.ticket);
    // Later the VM is saved and restored: that session uses the ticket up and gets another.
    const used = prepareResume(VM, 'test', secret, first.client.version, first.ticket);
    first.link.destroy();
    const restored = await qemuEnd();
    restored.write(Buffer.concat([used.frame, listFrame('restored')]));
    const later = await agentOver(restored, { resumeSent: used });
    await once(later, 'ticket');
    restored.destroy();

    // Two reverts to the snapshot: the agent comes back with the snapshot's ticket both times.
    for (const n of [1, 2]) {
      expect(await ask('ticket-rearm', { vm: VM, snapshot: 'clean' })).toEqual({ rearmed: true });
      const link = await qemuEnd();
      link.write(Buffer.concat([inSnapshot.frame, listFrame(`revert ${n}`)]));
      const client = await agentOver(link, { resumeSent: inSnapshot });
      await once(client, 'ticket');
      link.destroy();
    }
    expect(logs.filter((l) => l.endsWith('(resumed on its ticket)'))).toHaveLength(3);
    expect(logs.filter((l) => /resume not taken/.test(l))).toEqual([]);
    // Without a re-arm the snapshot's ticket serves no more.
    const again = await qemuEnd();
    again.write(Buffer.concat([inSnapshot.frame, listFrame('no re-arm')]));
    (await agentOver(again, { resumeSent: inSnapshot })).close();
    expect(logs.filter((l) => /resume not taken \(its MAC does not verify\)/.test(l))).toHaveLength(1);

    expect(await ask('ticket-unpin', { vm: VM, snapshot: 'clean' })).toEqual({ unpinned: true });
    expect(await ask('ticket-rearm', { vm: VM, snapshot: 'clean' })).toEqual({ rearmed: false });
    expect(await ask('ticket-pin', { vm: 'vmp-t-ticket-none', snapshot: 'x' })).toEqual({ pinned: false });
    await expect(ask('ticket-pin', { vm: VM, snapshot: '../x' })).rejects.toThrow(
      'snapshot "../x" is not a valid snapshot name',
    );
  } finally {
    await control.close();
  }
});
