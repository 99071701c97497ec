import { createHash } from 'node:crypto';
import {
  decodeFrame,
  encodeMessage,
  FILE_MIN_VERSION,
  FileKind,
  fileNameProblem,
  FrameDecoder,
  MAX_FILE_BYTES,
  MAX_FILE_CHUNK_BYTES,
  MAX_PAYLOAD_BY_CODE,
  MessageType,
  type Message,
} from '../../../src/protocol/index.js';

/** The file messages 0x40-0x47 (docs/protocol.md): bytes, limits, and frames that break them. */

function frame(code: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(payload.length, 0);
  header.writeUInt8(code, 4);
  return Buffer.concat([header, payload]);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}

function str(s: string | Buffer): Buffer {
  const bytes = Buffer.isBuffer(s) ? s : Buffer.from(s, 'utf8');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(bytes.length, 0);
  return Buffer.concat([len, bytes]);
}

/** A FILE_BEGIN from parts, so tests can build what our encoder refuses to. */
function rawBegin(kind: number, size: number, name: string | Buffer): Buffer {
  return frame(MessageType.FILE_BEGIN, Buffer.concat([u32(5), Buffer.from([kind]), u32(size), str(name)]));
}

const errorOf = (f: Buffer): string => {
  const r = decodeFrame(f);
  if (r.ok) throw new Error(`decoded: ${JSON.stringify(r.message)}`);
  return r.error.message;
};

const sha = createHash('sha256').update('hello').digest();

describe('file messages on the wire', () => {
  test('FILE_BEGIN has the documented bytes and round-trips', () => {
    const m: Message = { type: 'file-begin', transferId: 5, kind: FileKind.OPEN, size: 5, name: 'a.pdf' };
    const f = encodeMessage(m);
    expect(f.toString('hex')).toBe(
      ['00000010', '40', '00000005', '02', '00000005', '0005', Buffer.from('a.pdf').toString('hex')].join(''),
    );
    expect(decodeFrame(f)).toEqual({ ok: true, message: m });
  });

  test.each<Message>([
    { type: 'file-data', transferId: 5, data: Buffer.from('hello') },
    { type: 'file-end', transferId: 5, sha256: sha },
    { type: 'file-result', transferId: 5, status: 0, pid: 77, path: '/run/user/1000/x/a.pdf', message: '' },
    { type: 'file-close', transferId: 5 },
    { type: 'writeback-begin', transferId: 5, size: MAX_FILE_BYTES },
    { type: 'writeback-data', transferId: 5, data: Buffer.alloc(MAX_FILE_CHUNK_BYTES, 1) },
    { type: 'writeback-end', transferId: 5, sha256: sha },
  ])('%s round-trips', (m) => {
    const f = encodeMessage(m);
    expect(f.length - 5).toBeLessThanOrEqual(MAX_PAYLOAD_BY_CODE.get(f[4]!)!);
    expect(decodeFrame(f)).toEqual({ ok: true, message: m });
  });

  test('the file messages need version 3; the codes are 0x40-0x47', () => {
    expect(FILE_MIN_VERSION).toBe(3);
    expect([
      MessageType.FILE_BEGIN,
      MessageType.FILE_DATA,
      MessageType.FILE_END,
      MessageType.FILE_RESULT,
      MessageType.FILE_CLOSE,
      MessageType.WRITEBACK_BEGIN,
      MessageType.WRITEBACK_DATA,
      MessageType.WRITEBACK_END,
    ]).toEqual([0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47]);
    // A data chunk's frame is small enough that one file never needs a frame near the 1 MiB limit.
    expect(MAX_PAYLOAD_BY_CODE.get(MessageType.FILE_DATA)).toBe(8 + 256 * 1024);
    expect(MAX_PAYLOAD_BY_CODE.get(MessageType.WRITEBACK_BEGIN)).toBe(8);
  });
});

describe('fileNameProblem: the one rule for a name in the guest', () => {
  test.each(['a.pdf', 'Report 2026 (final).odt', 'ünïcödé ✓.txt', 'x'.repeat(255), 'a..b', '-dash'])(
    '%j is accepted',
    (name) => expect(fileNameProblem(name)).toBeNull(),
  );
  test.each([
    ['', /empty/],
    ['.bashrc', /starts with '\.'/],
    ['.', /starts with '\.'/],
    ['..', /starts with '\.'/],
    ['a/b', /contains '\/'/],
    ['../../etc/passwd', /contains '\/'/],
    ['a\0b', /control character \(NUL included\)/],
    ['line\nbreak', /control character/],
    ['c1\u009b', /control character/],
    ['\ud800', /not well-formed Unicode/],
    ['x'.repeat(256), /256 bytes; the limit is 255/],
    [42, /must be a string/],
  ])('%j is refused', (name, why) => expect(fileNameProblem(name)).toMatch(why));

  test('the encoder refuses a bad name or size, so a proxy never sends one', () => {
    const base = { type: 'file-begin', transferId: 1, kind: FileKind.COPY, size: 1 } as const;
    expect(() => encodeMessage({ ...base, name: '..' })).toThrow(/starts with '\.'/);
    expect(() => encodeMessage({ ...base, name: 'a/b' })).toThrow(/contains '\/'/);
    expect(() => encodeMessage({ ...base, name: 'ok', size: MAX_FILE_BYTES + 1 })).toThrow(/size/);
  });
});

describe('bad file frames are protocol errors', () => {
  test('FILE_BEGIN with a name that would leave the target directory', () => {
    expect(errorOf(rawBegin(1, 1, '../x'))).toMatch(/file-begin: the name contains '\/'/);
    expect(errorOf(rawBegin(1, 1, '..'))).toMatch(/file-begin: the name starts with '\.'/);
    expect(errorOf(rawBegin(1, 1, 'a/b'))).toMatch(/contains '\/'/);
    expect(errorOf(rawBegin(1, 1, 'a\0b'))).toMatch(/control character/);
    expect(errorOf(rawBegin(1, 1, ''))).toMatch(/empty/);
    expect(errorOf(rawBegin(1, 1, Buffer.from([0xc3, 0x28])))).toMatch(/not valid UTF-8/);
  });

  test('FILE_BEGIN over the size limit or of an unknown kind', () => {
    expect(errorOf(rawBegin(1, MAX_FILE_BYTES + 1, 'a'))).toMatch(/over the 67108864-byte limit/);
    expect(errorOf(rawBegin(0, 1, 'a'))).toMatch(/unknown kind 0/);
    expect(errorOf(rawBegin(4, 1, 'a'))).toMatch(/unknown kind 4/);
  });

  test('WRITEBACK_BEGIN over the size limit', () => {
    const f = frame(MessageType.WRITEBACK_BEGIN, Buffer.concat([u32(1), u32(MAX_FILE_BYTES + 1)]));
    expect(errorOf(f)).toMatch(/writeback-begin: size 67108865 is over/);
  });

  test('a data chunk over 256 KiB is refused from its header, before its payload arrives', () => {
    for (const code of [MessageType.FILE_DATA, MessageType.WRITEBACK_DATA]) {
      const header = Buffer.alloc(5);
      header.writeUInt32BE(8 + MAX_FILE_CHUNK_BYTES + 1, 0);
      header.writeUInt8(code, 4);
      const results = new FrameDecoder().push(header);
      expect(results).toHaveLength(1);
      expect(results[0]).toMatchObject({ ok: false, error: { code: 7 } });
    }
  });

  test('a data blob whose length lies about the bytes left', () => {
    const payload = Buffer.concat([u32(1), u32(100), Buffer.alloc(10)]);
    expect(errorOf(frame(MessageType.FILE_DATA, payload))).toMatch(/truncated at data/);
  });

  test('a SHA-256 of the wrong length, and trailing bytes', () => {
    expect(errorOf(frame(MessageType.FILE_END, Buffer.concat([u32(1), Buffer.alloc(31)])))).toMatch(
      /truncated at sha256/,
    );
    expect(errorOf(frame(MessageType.WRITEBACK_END, Buffer.concat([u32(1), Buffer.alloc(33)])))).toMatch(
      /exceeds its 36-byte limit/,
    );
    const result = Buffer.concat([u32(1), Buffer.from([0]), u32(0), str('/p'), str(''), Buffer.alloc(1)]);
    expect(errorOf(frame(MessageType.FILE_RESULT, result))).toMatch(/1 unexpected trailing bytes/);
  });

  test('a FILE_RESULT path over 4096 bytes', () => {
    const payload = Buffer.concat([u32(1), Buffer.from([0]), u32(0), str('p'.repeat(4097)), str('')]);
    expect(errorOf(frame(MessageType.FILE_RESULT, payload))).toMatch(/exceeds|limit/);
  });
});
