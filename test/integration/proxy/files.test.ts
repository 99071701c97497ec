import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentClient, FileKind, FileStatus, type Message } from '../../../src/protocol/index.js';
import { readHostFile } from '../../../src/proxy/host-file.js';
import { ProxyServer, type WritebackEvent } from '../../../src/proxy/server.js';
import { handshakenRawPeer, RawPeer, waitFor } from '../../support/fake-agent.js';

/**
 * The proxy's side of the file messages over real TCP on loopback, with agents
 * played by the protocol's own client: what an untrusted guest sends back is
 * accepted only for a transfer opened with writeback, within its announced
 * size and matching its SHA-256; anything else closes the link.
 */

const PREFIX = 'vmp-t-proto-files-';
const VM = `${PREFIX}a`;
const OLD = `${PREFIX}old`;
const secrets = new Map([VM, OLD].map((n) => [n, randomBytes(32)]));
let proxy: ProxyServer;
let port: number;
let dir: string;
const clients: AgentClient[] = [];
const raws: RawPeer[] = [];

const sha = (b: Buffer | string): Buffer => createHash('sha256').update(b).digest();

async function agent(): Promise<AgentClient> {
  const client = await AgentClient.connect({ host: '127.0.0.1', port, vmName: VM, secret: secrets.get(VM)! });
  clients.push(client);
  return client;
}

/** Plays an agent that stores every file and answers FILE_RESULT OK; collects what it was sent. */
function storing(client: AgentClient): Message[] {
  const seen: Message[] = [];
  client.on('message', (m) => {
    seen.push(m);
    if (m.type === 'file-end') {
      client.send({
        type: 'file-result',
        transferId: m.transferId,
        status: FileStatus.OK,
        pid: 9,
        path: '/g/x',
        message: '',
      });
    }
  });
  return seen;
}

function hostFile(name: string, content: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, content);
  return file;
}

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-proxy-files-'));
  proxy = new ProxyServer({
    listen: [{ host: '127.0.0.1', port: 0 }],
    lookupSecret: async (n) => secrets.get(n) ?? null,
    fileTimeoutMs: 500,
    log: () => undefined,
  });
  port = (await proxy.start())[0]!.port;
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const r of raws.splice(0)) r.destroy();
  await proxy.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a file goes as FILE_BEGIN, 256 KiB FILE_DATA chunks and FILE_END with its SHA-256', async () => {
  const a = await agent();
  const seen = storing(a);
  const content = randomBytes(600 * 1024).toString('base64');
  const file = await readHostFile(hostFile('big.txt', content));
  await expect(proxy.sendFile(VM, file, { kind: 'copy' })).resolves.toMatchObject({ path: '/g/x', pid: 9 });
  const begin = seen[0] as Extract<Message, { type: 'file-begin' }>;
  expect(begin).toMatchObject({
    type: 'file-begin',
    kind: FileKind.COPY,
    size: content.length,
    name: 'big.txt',
  });
  const data = seen.filter((m) => m.type === 'file-data') as Extract<Message, { type: 'file-data' }>[];
  expect(data.map((d) => d.data.length)).toEqual([262144, 262144, 262144, content.length - 3 * 262144]);
  expect(Buffer.concat(data.map((d) => d.data)).toString()).toBe(content);
  expect(seen.at(-1)).toEqual({ type: 'file-end', transferId: begin.transferId, sha256: sha(content) });
});

test("FILE_RESULT FAILED becomes a failed error with the agent's message; no answer is a timeout", async () => {
  const a = await agent();
  let answer = true;
  a.on('message', (m) => {
    if (m.type === 'file-end' && answer)
      a.send({
        type: 'file-result',
        transferId: m.transferId,
        status: FileStatus.FAILED,
        pid: 0,
        path: '',
        message: 'disk full',
      });
  });
  const file = await readHostFile(hostFile('f.txt', 'x'));
  await expect(proxy.sendFile(VM, file, { kind: 'copy' })).rejects.toMatchObject({
    code: 'failed',
    message: `the agent in ${VM} answered FAILED: disk full`,
  });
  answer = false;
  await expect(proxy.sendFile(VM, file, { kind: 'open' })).rejects.toMatchObject({ code: 'timeout' });
  expect(a.isClosed).toBe(false);
});

const openWithWriteback = async (
  a: AgentClient,
  name = 'w.txt',
): Promise<{ transferId: number; file: string; events: WritebackEvent[] }> => {
  const seen = storing(a);
  const file = hostFile(name, 'v1');
  const events: WritebackEvent[] = [];
  await proxy.sendFile(VM, await readHostFile(file), {
    kind: 'open',
    writeback: true,
    onWriteback: (e) => events.push(e),
  });
  const begin = seen.find((m) => m.type === 'file-begin') as Extract<Message, { type: 'file-begin' }>;
  expect(begin.kind).toBe(FileKind.OPEN_WRITEBACK);
  return { transferId: begin.transferId, file, events };
};

test('a well-formed writeback replaces the host file', async () => {
  const a = await agent();
  const { transferId, file, events } = await openWithWriteback(a);
  a.send({ type: 'writeback-begin', transferId, size: 2 });
  a.send({ type: 'writeback-data', transferId, data: Buffer.from('v2') });
  a.send({ type: 'writeback-end', transferId, sha256: sha('v2') });
  await waitFor(() => events.find((e) => e.type === 'written'), 2000, 'written');
  expect(fs.readFileSync(file, 'utf8')).toBe('v2');
  expect(fs.readdirSync(dir)).toEqual(['w.txt']);
});

test.each<[string, (id: number) => Message[], RegExp]>([
  [
    'a writeback for a transfer never opened',
    (id) => [{ type: 'writeback-begin', transferId: id + 1000, size: 1 }],
    /which was not opened with writeback/,
  ],
  [
    'more bytes than announced',
    (id) => [
      { type: 'writeback-begin', transferId: id, size: 1 },
      { type: 'writeback-data', transferId: id, data: Buffer.from('too long') },
    ],
    /over its announced 1 bytes/,
  ],
  [
    'fewer bytes than announced',
    (id) => [
      { type: 'writeback-begin', transferId: id, size: 5 },
      { type: 'writeback-data', transferId: id, data: Buffer.from('ab') },
      { type: 'writeback-end', transferId: id, sha256: sha('ab') },
    ],
    /ended at 2 of 5 bytes/,
  ],
  [
    'a SHA-256 that does not match',
    (id) => [
      { type: 'writeback-begin', transferId: id, size: 2 },
      { type: 'writeback-data', transferId: id, data: Buffer.from('v2') },
      { type: 'writeback-end', transferId: id, sha256: sha('v3') },
    ],
    /does not match its SHA-256/,
  ],
  [
    'data outside a writeback',
    (id) => [{ type: 'writeback-data', transferId: id, data: Buffer.from('x') }],
    /outside a writeback/,
  ],
  [
    'a FILE_BEGIN (the proxy’s message)',
    () => [{ type: 'file-begin', transferId: 1, kind: 1, size: 1, name: 'x' }],
    /file-begin is not something an agent may send/,
  ],
])('%s closes the link with ERROR 1 and leaves the host file alone', async (_what, messages, why) => {
  const a = await agent();
  const { transferId, file, events } = await openWithWriteback(a);
  const closed = new Promise<string>((r) => a.once('close', r));
  for (const m of messages(transferId)) a.send(m);
  expect(await closed).toMatch(why);
  expect(fs.readFileSync(file, 'utf8')).toBe('v1');
  expect(fs.readdirSync(dir)).toEqual(['w.txt']);
  await waitFor(() => events.find((e) => e.type === 'ended'), 2000, 'ended');
});

test('a writeback for a copy (not opened with writeback) closes the link', async () => {
  const a = await agent();
  const seen = storing(a);
  const file = hostFile('c.txt', 'v1');
  await proxy.sendFile(VM, await readHostFile(file), { kind: 'copy' });
  const begin = seen.find((m) => m.type === 'file-begin') as Extract<Message, { type: 'file-begin' }>;
  const closed = new Promise<string>((r) => a.once('close', r));
  a.send({ type: 'writeback-begin', transferId: begin.transferId, size: 1 });
  expect(await closed).toMatch(/not opened with writeback/);
  expect(fs.readFileSync(file, 'utf8')).toBe('v1');
});

test('after the host ends a writeback (FILE_CLOSE), what the agent still had on the wire is dropped, not fatal', async () => {
  const a = await agent();
  const seen: Message[] = [];
  a.on('message', (m) => seen.push(m));
  const storingSeen = storing(a);
  const file = hostFile('late.txt', 'v1');
  const session = await proxy.sendFile(VM, await readHostFile(file), { kind: 'open', writeback: true });
  const begin = storingSeen.find((m) => m.type === 'file-begin') as Extract<Message, { type: 'file-begin' }>;
  session.close();
  await waitFor(() => seen.find((m) => m.type === 'file-close'), 2000, 'file-close');
  a.send({ type: 'writeback-begin', transferId: begin.transferId, size: 2 });
  a.send({ type: 'writeback-data', transferId: begin.transferId, data: Buffer.from('v2') });
  a.send({ type: 'writeback-end', transferId: begin.transferId, sha256: sha('v2') });
  a.send({ type: 'heartbeat', seq: 1 });
  await new Promise((r) => setTimeout(r, 100));
  expect(a.isClosed).toBe(false);
  expect(fs.readFileSync(file, 'utf8')).toBe('v1');
});

test('a version-2 agent is never sent a file: the request is refused', async () => {
  const { peer, version } = await handshakenRawPeer(port, OLD, secrets.get(OLD)!, 2);
  raws.push(peer);
  expect(version).toBe(2);
  const file = await readHostFile(hostFile('o.txt', 'x'));
  await expect(proxy.sendFile(OLD, file, { kind: 'copy' })).rejects.toMatchObject({
    code: 'refused',
    message: `the agent in VM "${OLD}" speaks protocol version 2, which cannot take files; update its guest agent`,
  });
  expect(peer.received.some((m) => m.type === 'file-begin')).toBe(false);
});
