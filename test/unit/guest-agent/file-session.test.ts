import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FileSession, type FileOutbound } from '../../../guest-agent/src/files.js';
import { FileKind } from '../../../src/protocol/index.js';

/**
 * The agent's file session on a real temporary directory: what is left when a
 * transfer is cut short or does not match its digest (nothing), and which
 * sequences break the protocol.
 */

let root: string;
let sent: FileOutbound[];
let opened: string[];
let session: FileSession;

const sha = (b: Buffer | string): Buffer => createHash('sha256').update(b).digest();
const everything = (): string[] => fs.readdirSync(root, { recursive: true }).map(String).sort();

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-file-session-'));
  fs.mkdirSync(path.join(root, 'home'));
  sent = [];
  opened = [];
  session = new FileSession({
    home: path.join(root, 'home'),
    openRoot: path.join(root, 'run', 'open'),
    open: async (file) => {
      opened.push(file);
      return 4242;
    },
    send: (m) => sent.push(m),
    drained: async () => undefined,
    log: () => undefined,
  });
});

afterEach(() => {
  session.close();
  fs.rmSync(root, { recursive: true, force: true });
});

const until = async (cond: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
};

test('a transfer cut short by the end of the link leaves nothing', () => {
  session.handle({ type: 'file-begin', transferId: 1, kind: FileKind.COPY, size: 10, name: 'a.txt' });
  session.handle({ type: 'file-data', transferId: 1, data: Buffer.from('hello') });
  session.close();
  expect(everything()).toEqual(['home']);
  expect(sent).toEqual([]);
});

test('a digest that does not match is answered FAILED and writes nothing', async () => {
  session.handle({ type: 'file-begin', transferId: 2, kind: FileKind.OPEN, size: 5, name: 'a.txt' });
  session.handle({ type: 'file-data', transferId: 2, data: Buffer.from('hello') });
  session.handle({ type: 'file-end', transferId: 2, sha256: sha('other') });
  expect(sent).toEqual([
    expect.objectContaining({ type: 'file-result', transferId: 2, status: 2, path: '' }),
  ]);
  await new Promise((r) => setTimeout(r, 50));
  expect(everything()).toEqual(['home']);
  expect(opened).toEqual([]);
});

test('an opener that cannot start removes the directory it made', async () => {
  const failing = new FileSession({
    home: path.join(root, 'home'),
    openRoot: path.join(root, 'run', 'open'),
    open: async () => {
      throw Object.assign(new Error('spawn xdg-open ENOENT'), { code: 'ENOENT' });
    },
    send: (m) => sent.push(m),
    drained: async () => undefined,
    log: () => undefined,
  });
  failing.handle({ type: 'file-begin', transferId: 3, kind: FileKind.OPEN, size: 2, name: 'x.pdf' });
  failing.handle({ type: 'file-data', transferId: 3, data: Buffer.from('hi') });
  failing.handle({ type: 'file-end', transferId: 3, sha256: sha('hi') });
  await until(() => sent.length > 0);
  expect(sent).toEqual([
    expect.objectContaining({ status: 2, message: 'cannot start xdg-open: no such program' }),
  ]);
  expect(fs.readdirSync(path.join(root, 'run', 'open'))).toEqual([]);
});

test.each([
  [
    'data for a transfer that is not open',
    [{ type: 'file-data', transferId: 9, data: Buffer.from('x') }],
    /not open/,
  ],
  [
    'more data than announced',
    [
      { type: 'file-begin', transferId: 9, kind: FileKind.COPY, size: 1, name: 'a' },
      { type: 'file-data', transferId: 9, data: Buffer.from('xy') },
    ],
    /over its announced 1 bytes/,
  ],
  [
    'an end before all the data',
    [
      { type: 'file-begin', transferId: 9, kind: FileKind.COPY, size: 3, name: 'a' },
      { type: 'file-end', transferId: 9, sha256: Buffer.alloc(32) },
    ],
    /has 0 of 3 bytes/,
  ],
  [
    'a transfer id already in use',
    [
      { type: 'file-begin', transferId: 9, kind: FileKind.COPY, size: 3, name: 'a' },
      { type: 'file-begin', transferId: 9, kind: FileKind.COPY, size: 3, name: 'b' },
    ],
    /already in use/,
  ],
  [
    'a third transfer at once',
    [1, 2, 3].map((id) => ({ type: 'file-begin', transferId: id, kind: FileKind.COPY, size: 3, name: 'a' })),
    /over 2 transfers at once/,
  ],
] as const)('%s is a protocol error', (_what, messages, why) => {
  expect(() => {
    for (const m of messages) session.handle(m as Parameters<FileSession['handle']>[0]);
  }).toThrow(why);
  expect(everything()).toEqual(['home']);
});

test('a copy whose name is taken gets the next free number; the others are untouched', async () => {
  const incoming = path.join(root, 'home', 'Incoming', 'host');
  fs.mkdirSync(incoming, { recursive: true });
  fs.writeFileSync(path.join(incoming, 'r.txt'), 'old');
  fs.writeFileSync(path.join(incoming, 'r (1).txt'), 'old 1');
  session.handle({ type: 'file-begin', transferId: 4, kind: FileKind.COPY, size: 3, name: 'r.txt' });
  session.handle({ type: 'file-data', transferId: 4, data: Buffer.from('new') });
  session.handle({ type: 'file-end', transferId: 4, sha256: sha('new') });
  await until(() => sent.length > 0);
  expect(sent[0]).toMatchObject({ status: 0, path: path.join(incoming, 'r (2).txt') });
  expect(fs.readFileSync(path.join(incoming, 'r.txt'), 'utf8')).toBe('old');
  expect(fs.readFileSync(path.join(incoming, 'r (1).txt'), 'utf8')).toBe('old 1');
  expect(fs.readFileSync(path.join(incoming, 'r (2).txt'), 'utf8')).toBe('new');
});
