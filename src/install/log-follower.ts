import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';

/**
 * Follows a file as it grows (like `tail -F`), yielding new text as it is
 * written. It wakes on inotify events for the file's directory (fs.watch),
 * so it sees the file appear, grow, or be replaced, and falls back to a
 * modest poll in case an event is missed. The file may not exist yet.
 */

export interface FollowOptions {
  /** Stop following: the generator reads what is left, yields it, and returns. */
  signal?: AbortSignal;
  /** Fallback poll when no change event arrives. Default 1000 ms. */
  pollIntervalMs?: number;
  /** Byte offset to start at. Default 0. */
  startOffset?: number;
}

const READ_CHUNK = 64 * 1024;

export async function* followFile(
  file: string,
  options: FollowOptions = {},
): AsyncGenerator<string, void, undefined> {
  const { signal } = options;
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  const name = path.basename(file);
  let decoder = new StringDecoder('utf8');
  let offset = options.startOffset ?? 0;
  let changed = true;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    changed = true;
    wake?.();
  };

  let watcher: fs.FSWatcher | undefined;
  try {
    watcher = fs.watch(path.dirname(file), { persistent: false }, (_event, filename) => {
      if (filename === null || filename.toString() === name) notify();
    });
    watcher.on('error', () => {
      // The poll below still runs; a failed watcher only costs latency.
      watcher?.close();
      watcher = undefined;
    });
  } catch {
    watcher = undefined;
  }
  signal?.addEventListener('abort', notify, { once: true });

  try {
    for (;;) {
      const stopping = signal?.aborted ?? false;
      if (changed || stopping) {
        changed = false;
        const read = await readNew(file, offset);
        if (read.truncated) {
          // Replaced or truncated: start over, and drop a half-decoded character.
          offset = 0;
          decoder = new StringDecoder('utf8');
        }
        offset = read.offset;
        const text = read.data.length > 0 ? decoder.write(read.data) : '';
        if (text) yield text;
        if (read.more) {
          changed = true;
          continue;
        }
      }
      if (stopping) {
        const rest = decoder.end();
        if (rest) yield rest;
        return;
      }
      if (!changed) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, pollIntervalMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
        // The poll is the fallback for a missed event: look at the file either way.
        changed = true;
      }
    }
  } finally {
    watcher?.close();
    signal?.removeEventListener('abort', notify);
  }
}

interface ReadResult {
  data: Buffer;
  offset: number;
  truncated: boolean;
  /** More bytes are waiting beyond this chunk. */
  more: boolean;
}

async function readNew(file: string, offset: number): Promise<ReadResult> {
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      return { data: Buffer.alloc(0), offset, truncated: false, more: false };
    throw err;
  }
  try {
    const { size } = await handle.stat();
    const truncated = size < offset;
    const from = truncated ? 0 : offset;
    const length = Math.min(size - from, READ_CHUNK);
    if (length <= 0) return { data: Buffer.alloc(0), offset: from, truncated, more: false };
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, from);
    return {
      data: buffer.subarray(0, bytesRead),
      offset: from + bytesRead,
      truncated,
      more: from + bytesRead < size,
    };
  } finally {
    await handle.close();
  }
}
