import { constants, promises as fs } from 'node:fs';

/**
 * Reading a file the user names, without trusting what stat says about it.
 * /proc and /sys files report size 0 and then stream without end
 * (/proc/self/pagemap: gigabytes), and opening a FIFO blocks until a writer
 * comes. So the read itself is bounded, and the file is opened non-blocking
 * and checked on the open descriptor, which is the file actually read.
 */

/** The path names something other than a regular file (directory, FIFO, device, socket). */
export class NotRegularFileError extends Error {}

/** The file holds more than the limit; reading stopped within one chunk past it. */
export class FileTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`more than ${limit} bytes`);
  }
}

const CHUNK = 64 * 1024;

/** The whole content of a regular file of at most `maxBytes`; errno errors pass through. */
export async function readRegularFileBounded(file: string, maxBytes: number): Promise<Buffer> {
  // O_NONBLOCK: open() of a FIFO returns at once instead of waiting for a writer.
  const handle = await fs.open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new NotRegularFileError('not a regular file');
    // Whole chunks, not "the last byte or two": some /proc files refuse reads of
    // odd sizes (pagemap wants multiples of 8, EINVAL otherwise). So at most
    // maxBytes + CHUNK bytes are read before the file is refused.
    // Chunk by chunk rather than into one buffer of the limit: `list` reads a small config
    // of every VM, and zeroing maxBytes for each cost more than reading them.
    const chunks: Buffer[] = [];
    let total = 0;
    while (total <= maxBytes) {
      const chunk = Buffer.alloc(CHUNK);
      const { bytesRead } = await handle.read(chunk, 0, CHUNK, null);
      if (bytesRead === 0) return Buffer.concat(chunks, total);
      chunks.push(chunk.subarray(0, bytesRead));
      total += bytesRead;
    }
    throw new FileTooLargeError(maxBytes);
  } finally {
    await handle.close();
  }
}
