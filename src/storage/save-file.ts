import { constants, createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { VmpError } from '../util/errors.js';

/**
 * libvirt's QEMU save image (what `virsh save` writes), as libvirt 9.0 lays
 * it out (src/qemu/qemu_saveimage.h): a fixed 92-byte header in the host's
 * byte order
 *
 *     char     magic[16]      "LibvirtQemudSave" ("LibvirtQemudPart" while incomplete)
 *     uint32   version        2
 *     uint32   data_len       bytes of the data area that follows the header
 *     uint32   was_running    1: resume running after a restore
 *     uint32   format         compression of QEMU's stream: 0 raw, 1 gzip, 2 bzip2, 3 xz, 4 lzop, 5 zstd
 *     uint32   cookieOffset   where the cookie starts in the data area (0: none)
 *     uint32   unused[14]
 *
 * then the data area: the domain XML with its NUL, the cookie (libvirt's own
 * XML about the saved QEMU) with its NUL at cookieOffset, zeros up to
 * data_len; then QEMU's migration stream to the end of the file.
 *
 * A clone is restored from a copy of the header whose domain XML names the
 * clone (src/disposable/clone-xml.ts); the stream, the bulk of the file, is
 * never copied: `streamRewritten` writes the new head and then the original
 * stream into a FIFO that libvirt's restore reads. Anything this module does
 * not recognise is refused with SaveFormatError, and the caller boots instead.
 */

export const SAVE_MAGIC = 'LibvirtQemudSave';
export const SAVE_MAGIC_PARTIAL = 'LibvirtQemudPart';
export const SAVE_VERSION = 2;
export const SAVE_HEADER_BYTES = 92;
/** The formats libvirt 9.0 knows; the stream is passed through untouched, whichever it is. */
export const SAVE_FORMATS = ['raw', 'gzip', 'bzip2', 'xz', 'lzop', 'zstd'] as const;
/** QEMU's migration stream magic, "QEVM" (QEMU_VM_FILE_MAGIC). */
export const QEMU_STREAM_MAGIC = 0x5145564d;
/** A domain XML with its cookie is a few tens of KiB; libvirt pads 64 KiB. More is not a save image of ours. */
export const MAX_DATA_BYTES = 16 * 1024 * 1024;

export class SaveFormatError extends VmpError {
  override readonly name = 'SaveFormatError';
}

export interface SaveHeader {
  version: number;
  dataLength: number;
  wasRunning: boolean;
  format: (typeof SAVE_FORMATS)[number];
  cookieOffset: number;
}

/** The head of a save image: its header and the data area, parsed. */
export interface SaveHead {
  header: SaveHeader;
  xml: string;
  /** libvirt's cookie, kept as it was; absent if the image has none. */
  cookie?: string;
  /** Where QEMU's stream begins in the file. */
  streamOffset: number;
}

/** Parses the fixed header; throws SaveFormatError naming what is not recognised. */
export function parseSaveHeader(buf: Buffer, source = 'save image'): SaveHeader {
  if (buf.length < SAVE_HEADER_BYTES) {
    throw new SaveFormatError(
      `${source}: ${buf.length} bytes is shorter than the ${SAVE_HEADER_BYTES}-byte libvirt save header`,
    );
  }
  const magic = buf.subarray(0, 16).toString('latin1');
  if (magic === SAVE_MAGIC_PARTIAL) {
    throw new SaveFormatError(`${source}: the save image is incomplete (magic ${SAVE_MAGIC_PARTIAL})`);
  }
  if (magic !== SAVE_MAGIC) {
    throw new SaveFormatError(`${source}: not a libvirt QEMU save image (magic is not ${SAVE_MAGIC})`);
  }
  const version = buf.readUInt32LE(16);
  if (version !== SAVE_VERSION) {
    // libvirt writes the host's byte order; a byte-swapped 2 is a big-endian host's image.
    const swapped = buf.readUInt32BE(16) === SAVE_VERSION ? ' (a big-endian host wrote it)' : '';
    throw new SaveFormatError(
      `${source}: save image version ${version}${swapped} is not recognised (only version ${SAVE_VERSION}, little-endian)`,
    );
  }
  const dataLength = buf.readUInt32LE(20);
  const wasRunning = buf.readUInt32LE(24);
  const formatCode = buf.readUInt32LE(28);
  const cookieOffset = buf.readUInt32LE(32);
  if (dataLength === 0 || dataLength > MAX_DATA_BYTES) {
    throw new SaveFormatError(
      `${source}: data length ${dataLength} is not recognised (must be 1 to ${MAX_DATA_BYTES} bytes)`,
    );
  }
  if (wasRunning > 1) throw new SaveFormatError(`${source}: was_running ${wasRunning} is not 0 or 1`);
  const format = SAVE_FORMATS[formatCode];
  if (format === undefined) {
    throw new SaveFormatError(`${source}: stream format ${formatCode} is not recognised (0-5)`);
  }
  if (cookieOffset >= dataLength) {
    throw new SaveFormatError(
      `${source}: cookie offset ${cookieOffset} lies outside the ${dataLength}-byte data`,
    );
  }
  for (let at = 36; at < SAVE_HEADER_BYTES; at += 4) {
    if (buf.readUInt32LE(at) !== 0) {
      throw new SaveFormatError(
        `${source}: reserved header field at byte ${at} is not zero (a newer format?)`,
      );
    }
  }
  return { version, dataLength, wasRunning: wasRunning === 1, format, cookieOffset };
}

/** Parses header and data area from the first `SAVE_HEADER_BYTES + dataLength` bytes of an image. */
export function parseSaveHead(buf: Buffer, source = 'save image'): SaveHead {
  const header = parseSaveHeader(buf, source);
  const end = SAVE_HEADER_BYTES + header.dataLength;
  if (buf.length < end) {
    throw new SaveFormatError(`${source}: the data area ends early (${buf.length} of ${end} bytes)`);
  }
  const data = buf.subarray(SAVE_HEADER_BYTES, end);
  const xmlEnd = data.indexOf(0);
  if (xmlEnd <= 0) throw new SaveFormatError(`${source}: the domain XML is empty or not NUL-terminated`);
  if (header.cookieOffset !== 0 && header.cookieOffset <= xmlEnd) {
    throw new SaveFormatError(`${source}: cookie offset ${header.cookieOffset} overlaps the domain XML`);
  }
  const xml = data.subarray(0, xmlEnd).toString('utf8');
  if (!/^\s*<domain[\s>]/.test(xml)) {
    throw new SaveFormatError(`${source}: the data area does not start with a <domain> XML`);
  }
  let cookie: string | undefined;
  if (header.cookieOffset !== 0) {
    const cookieEnd = data.indexOf(0, header.cookieOffset);
    if (cookieEnd < 0) throw new SaveFormatError(`${source}: the cookie is not NUL-terminated`);
    cookie = data.subarray(header.cookieOffset, cookieEnd).toString('utf8');
  }
  return { header, xml, ...(cookie !== undefined ? { cookie } : {}), streamOffset: end };
}

/**
 * A new head for the same stream: the header with `xml` in place of the old
 * XML, the cookie kept. The data area keeps its length when the new XML fits
 * (zero-padded, as libvirt pads); otherwise it grows to fit. Byte order and
 * every other field are the original's.
 */
export function encodeSaveHead(head: Pick<SaveHead, 'header' | 'cookie'>, xml: string): Buffer {
  if (xml.includes('\0')) throw new SaveFormatError('the new domain XML contains a NUL byte');
  const xmlBytes = Buffer.from(`${xml}\0`, 'utf8');
  const cookieBytes = head.cookie !== undefined ? Buffer.from(`${head.cookie}\0`, 'utf8') : Buffer.alloc(0);
  const used = xmlBytes.length + cookieBytes.length;
  const dataLength = Math.max(head.header.dataLength, used);
  if (dataLength > MAX_DATA_BYTES) {
    throw new SaveFormatError(
      `the new domain XML makes the data area ${dataLength} bytes, over ${MAX_DATA_BYTES}`,
    );
  }
  const out = Buffer.alloc(SAVE_HEADER_BYTES + dataLength);
  out.write(SAVE_MAGIC, 0, 'latin1');
  out.writeUInt32LE(head.header.version, 16);
  out.writeUInt32LE(dataLength, 20);
  out.writeUInt32LE(head.header.wasRunning ? 1 : 0, 24);
  out.writeUInt32LE(SAVE_FORMATS.indexOf(head.header.format), 28);
  out.writeUInt32LE(head.cookie !== undefined ? xmlBytes.length : 0, 32);
  xmlBytes.copy(out, SAVE_HEADER_BYTES);
  cookieBytes.copy(out, SAVE_HEADER_BYTES + xmlBytes.length);
  return out;
}

/** Reads and parses the head of the save image `file` (two small reads; the stream is not read). */
export async function readSaveHead(file: string): Promise<SaveHead> {
  const handle = await fs.open(file, 'r');
  try {
    const fixed = Buffer.alloc(SAVE_HEADER_BYTES);
    const { bytesRead } = await handle.read(fixed, 0, SAVE_HEADER_BYTES, 0);
    const header = parseSaveHeader(fixed.subarray(0, bytesRead), file);
    const whole = Buffer.alloc(SAVE_HEADER_BYTES + header.dataLength);
    const again = await handle.read(whole, 0, whole.length, 0);
    const head = parseSaveHead(whole.subarray(0, again.bytesRead), file);
    // An uncompressed stream starts with QEMU's own magic: a check that the layout is read right.
    const magic = Buffer.alloc(4);
    const streamRead = await handle.read(magic, 0, 4, head.streamOffset);
    if (streamRead.bytesRead < 4) throw new SaveFormatError(`${file}: no QEMU stream after the header`);
    if (head.header.format === 'raw' && magic.readUInt32BE(0) !== QEMU_STREAM_MAGIC) {
      throw new SaveFormatError(
        `${file}: the QEMU stream does not start at byte ${head.streamOffset} (no QEVM magic)`,
      );
    }
    return head;
  } finally {
    await handle.close();
  }
}

/**
 * Feeds a restore: writes `head` (from encodeSaveHead) and then the stream of
 * `image` from `streamOffset` on into `fifo`. Opening a FIFO for writing
 * waits for its reader, so call this before starting the restore and await
 * both. `signal` aborts it (the restore then sees end of file and fails).
 */
export async function streamRewritten(
  image: string,
  streamOffset: number,
  head: Buffer,
  fifo: string,
  signal?: AbortSignal,
): Promise<void> {
  const stat = await fs.lstat(fifo);
  if (!stat.isFIFO()) throw new VmpError(`${fifo} should be a FIFO but is another kind of file`);
  // Non-blocking open would fail with ENXIO until the reader is there; the blocking one waits in the thread pool.
  const out = await fs.open(fifo, constants.O_WRONLY);
  const writer = out.createWriteStream();
  const source = createReadStream(image, { start: streamOffset, highWaterMark: 1024 * 1024 });
  async function* chunks(): AsyncGenerator<Buffer> {
    yield head;
    for await (const chunk of source) yield chunk as Buffer;
  }
  await pipeline(chunks, writer, signal ? { signal } : {});
}
