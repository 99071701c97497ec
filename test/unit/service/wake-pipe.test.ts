import fs, { constants } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureWakePipe, primeWake } from '../../../src/service/state.js';

/**
 * The host end of the wake channel before a restore (docs/protocol.md,
 * "Resume"): the byte is put into the FIFO before QEMU exists, and QEMU, which
 * opens the FIFO read-write when it starts, finds it there. Real FIFOs.
 */
describe('primeWake', () => {
  let dir: string;
  let base: string;
  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-wake-pipe-'));
    base = path.join(dir, 'vm-wake');
    await ensureWakePipe({ wakePipe: base });
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const readNow = (fd: number): string => {
    const buffer = Buffer.alloc(16);
    try {
      return buffer.subarray(0, fs.readSync(fd, buffer)).toString();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return '';
      throw err;
    }
  };

  test('the byte waits in the FIFO for a reader that opens it later, and stays once the CLI lets go', async () => {
    const primed = await primeWake({ wakePipe: base });
    expect(primed).toBeDefined();
    // QEMU starting: it opens the FIFO as the pipe chardev does (read-write).
    const qemu = fs.openSync(`${base}.in`, constants.O_RDWR | constants.O_NONBLOCK);
    try {
      await primed!.close();
      expect(readNow(qemu)).toBe('w');
      expect(readNow(qemu)).toBe('');
    } finally {
      fs.closeSync(qemu);
    }
  });

  test('a restore that never opened the FIFO leaves no byte behind for a later start', async () => {
    const primed = await primeWake({ wakePipe: base });
    await primed!.close();
    const later = fs.openSync(`${base}.in`, constants.O_RDWR | constants.O_NONBLOCK);
    try {
      expect(readNow(later)).toBe('');
    } finally {
      fs.closeSync(later);
    }
  });

  test('no channel, or no FIFO where it should be: nothing is written and the caller falls back', async () => {
    expect(await primeWake({})).toBeUndefined();
    fs.rmSync(`${base}.in`);
    expect(await primeWake({ wakePipe: base })).toBeUndefined();
    expect(fs.existsSync(`${base}.in`)).toBe(false);
  });
});
