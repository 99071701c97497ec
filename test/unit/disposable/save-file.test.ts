import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  encodeSaveHead,
  parseSaveHead,
  parseSaveHeader,
  readSaveHead,
  SAVE_HEADER_BYTES,
  SaveFormatError,
} from '../../../src/storage/save-file.js';

/** A save image head laid out as libvirt 9.0's qemu_saveimage.h says, built field by field. */
function craft(
  opts: {
    magic?: string;
    version?: number;
    dataLength?: number;
    wasRunning?: number;
    format?: number;
    xml?: string;
    cookie?: string;
    reserved?: number;
  } = {},
): Buffer {
  const xml = Buffer.from(`${opts.xml ?? "<domain type='qemu'><name>src</name></domain>"}\0`);
  const cookie = opts.cookie === undefined ? Buffer.alloc(0) : Buffer.from(`${opts.cookie}\0`);
  const dataLength = opts.dataLength ?? xml.length + cookie.length + 64 * 1024;
  // A huge declared length is not backed by bytes: the header alone must be refused.
  const out = Buffer.alloc(
    SAVE_HEADER_BYTES + Math.min(Math.max(dataLength, xml.length + cookie.length), 1 << 20),
  );
  out.write(opts.magic ?? 'LibvirtQemudSave', 0, 'latin1');
  out.writeUInt32LE(opts.version ?? 2, 16);
  out.writeUInt32LE(dataLength, 20);
  out.writeUInt32LE(opts.wasRunning ?? 1, 24);
  out.writeUInt32LE(opts.format ?? 0, 28);
  out.writeUInt32LE(cookie.length > 0 ? xml.length : 0, 32);
  if (opts.reserved) out.writeUInt32LE(opts.reserved, 40);
  xml.copy(out, SAVE_HEADER_BYTES);
  cookie.copy(out, SAVE_HEADER_BYTES + xml.length);
  return out;
}

describe('libvirt QEMU save image header', () => {
  test('parses header, XML and cookie, and where the stream starts', () => {
    const buf = craft({ cookie: '<cookie><cpu/></cookie>' });
    const head = parseSaveHead(buf);
    expect(head.header).toEqual({
      version: 2,
      dataLength: buf.length - SAVE_HEADER_BYTES,
      wasRunning: true,
      format: 'raw',
      cookieOffset: 46,
    });
    expect(head.xml).toBe("<domain type='qemu'><name>src</name></domain>");
    expect(head.cookie).toBe('<cookie><cpu/></cookie>');
    expect(head.streamOffset).toBe(buf.length);
  });

  test('a new XML keeps the data length when it fits, so the head is byte-for-byte libvirt-shaped', () => {
    const buf = craft({ cookie: '<cookie/>' });
    const head = parseSaveHead(buf);
    const xml = "<domain type='qemu'><name>clone-1</name></domain>";
    const out = encodeSaveHead(head, xml);
    expect(out.length).toBe(buf.length);
    const again = parseSaveHead(out);
    expect(again.xml).toBe(xml);
    expect(again.cookie).toBe('<cookie/>');
    expect(again.header).toEqual({ ...head.header, cookieOffset: Buffer.byteLength(xml) + 1 });
    // Same XML back: the original bytes exactly.
    expect(encodeSaveHead(head, head.xml).equals(buf)).toBe(true);
  });

  test('a longer XML grows the data area instead of being cut', () => {
    const head = parseSaveHead(craft({ dataLength: 60, cookie: '<c/>' }));
    const xml = `<domain>${'x'.repeat(200)}</domain>`;
    const again = parseSaveHead(encodeSaveHead(head, xml));
    expect(again.xml).toBe(xml);
    expect(again.cookie).toBe('<c/>');
    expect(again.header.dataLength).toBe(xml.length + 1 + 5);
  });

  test.each([
    ['a wrong magic', { magic: 'QEVMxxxxxxxxxxxx' }, /not a libvirt QEMU save image/],
    ['an incomplete save', { magic: 'LibvirtQemudPart' }, /incomplete/],
    ['version 1', { version: 1 }, /version 1 is not recognised/],
    ['version 3', { version: 3 }, /version 3 is not recognised/],
    ['a big-endian image', { version: 0x02000000 }, /big-endian/],
    ['an unknown stream format', { format: 6 }, /stream format 6 is not recognised/],
    ['was_running 7', { wasRunning: 7 }, /was_running 7/],
    ['a used reserved field', { reserved: 1 }, /reserved header field at byte 40/],
    ['a zero data length', { dataLength: 0 }, /data length 0/],
    ['a huge data length', { dataLength: 0x7fffffff }, /data length 2147483647/],
  ])('refuses %s with a typed error naming it', (_what, opts, message) => {
    const buf = craft(opts);
    expect(() => parseSaveHead(buf)).toThrow(SaveFormatError);
    expect(() => parseSaveHead(buf)).toThrow(message);
  });

  test('refuses a short header, an XML without its NUL, a non-domain XML and a cookie inside the XML', () => {
    expect(() => parseSaveHeader(Buffer.alloc(40))).toThrow(/shorter than the 92-byte/);
    const noNul = craft({ dataLength: 10, xml: '<domain>0123456789' });
    noNul.fill(0x41, SAVE_HEADER_BYTES, SAVE_HEADER_BYTES + 10);
    expect(() => parseSaveHead(noNul)).toThrow(/not NUL-terminated/);
    expect(() => parseSaveHead(craft({ xml: '<network/>' }))).toThrow(/<domain>/);
    const overlap = craft({ cookie: '<c/>' });
    overlap.writeUInt32LE(3, 32);
    expect(() => parseSaveHead(overlap)).toThrow(/overlaps the domain XML/);
    expect(() => encodeSaveHead(parseSaveHead(craft()), 'a\0b')).toThrow(/NUL byte/);
  });

  test("readSaveHead checks that QEMU's stream follows the data area", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-save-'));
    try {
      const head = craft({ cookie: '<c/>' });
      const good = path.join(dir, 'good.save');
      fs.writeFileSync(good, Buffer.concat([head, Buffer.from('QEVM\0\0\0\x03rest')]));
      expect((await readSaveHead(good)).streamOffset).toBe(head.length);
      const shifted = path.join(dir, 'shifted.save');
      fs.writeFileSync(shifted, Buffer.concat([head, Buffer.from('\0QEVM\0\0\0\x03')]));
      await expect(readSaveHead(shifted)).rejects.toThrow(/no QEVM magic/);
      const bare = path.join(dir, 'bare.save');
      fs.writeFileSync(bare, head);
      await expect(readSaveHead(bare)).rejects.toThrow(/no QEMU stream/);
      const text = path.join(dir, 'text.save');
      fs.writeFileSync(text, 'hello');
      await expect(readSaveHead(text)).rejects.toThrow(SaveFormatError);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
