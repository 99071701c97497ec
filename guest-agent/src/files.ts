import { createHash } from 'node:crypto';
import { constants, promises as fs, watch, type FSWatcher } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  FileKind,
  fileNameProblem,
  MAX_FILE_BYTES,
  MAX_FILE_CHUNK_BYTES,
  ProtocolError,
  type FileKindValue,
  type Message,
} from '../../src/protocol/index.js';

/**
 * Files the host sends (FILE_BEGIN / FILE_DATA / FILE_END, docs/protocol.md):
 * `copy-to-vm` lands them in ~/Incoming/host/ without overwriting anything;
 * `open` puts one read-only copy in a fresh directory only this user can read
 * and starts the session's default handler (xdg-open) on it; `open
 * --writeback` keeps that copy writable, watches it and sends each saved
 * version back (WRITEBACK_BEGIN / DATA / END) until the host sends FILE_CLOSE
 * or the link ends. One FileSession lives exactly as long as one link.
 */

/** Incoming transfers one link may have open at once (each is held in memory until FILE_END). */
export const MAX_OPEN_TRANSFERS = 2;
/** Writable copies one link may watch at once; more are refused. */
export const MAX_WATCHES = 16;
/** Quiet time after the last change to a watched copy before its content is read and sent. */
export const WRITEBACK_SETTLE_MS = 250;
/** Name clashes in ~/Incoming/host tried (`name (1).ext` ...) before giving up. */
const MAX_SUFFIX = 999;

export type FileOutbound = Extract<
  Message,
  { type: 'file-result' | 'writeback-begin' | 'writeback-data' | 'writeback-end' }
>;
export type FileInbound = Extract<Message, { type: 'file-begin' | 'file-data' | 'file-end' | 'file-close' }>;

export interface FilePorts {
  /** The user's home: copies go to HOME/Incoming/host. */
  home: string;
  /** Where `open` makes its per-run directories (XDG_RUNTIME_DIR/vm-provisioner/open). */
  openRoot: string;
  /** Starts the default handler on a file (xdg-open PATH, as EXEC starts a command); resolves with its pid. */
  open(file: string): Promise<number>;
  send(message: FileOutbound): void;
  /** Resolves once the link has room for more output (backpressure for writebacks). */
  drained(): Promise<void>;
  log(line: string): void;
}

/** Defaults for the real agent: its user's home and runtime directory. */
export function defaultFileLocations(env: NodeJS.ProcessEnv = process.env): {
  home: string;
  openRoot: string;
} {
  const home = env.HOME || os.homedir();
  const runtime = env.XDG_RUNTIME_DIR;
  return {
    home,
    openRoot: runtime
      ? path.join(runtime, 'vm-provisioner', 'open')
      : path.join(home, '.cache', 'vm-provisioner', 'open'),
  };
}

interface Incoming {
  kind: FileKindValue;
  name: string;
  size: number;
  received: number;
  chunks: Buffer[];
}

const sha256 = (data: Buffer): Buffer => createHash('sha256').update(data).digest();

export class FileSession {
  private readonly incoming = new Map<number, Incoming>();
  private readonly watches = new Map<number, Watch>();
  private closed = false;

  constructor(private readonly ports: FilePorts) {}

  /** Applies one message; throws ProtocolError for anything the protocol forbids (the link then closes). */
  handle(m: FileInbound): void {
    switch (m.type) {
      case 'file-begin': {
        if (this.incoming.has(m.transferId) || this.watches.has(m.transferId)) {
          throw new ProtocolError(`file-begin: transfer ${m.transferId} is already in use`);
        }
        if (this.incoming.size >= MAX_OPEN_TRANSFERS) {
          throw new ProtocolError(`file-begin: over ${MAX_OPEN_TRANSFERS} transfers at once`);
        }
        // The codec checked kind, size and name; checked again here because this is where they become a path.
        const problem = fileNameProblem(m.name);
        if (problem) throw new ProtocolError(`file-begin: ${problem}`);
        this.incoming.set(m.transferId, {
          kind: m.kind,
          name: m.name,
          size: m.size,
          received: 0,
          chunks: [],
        });
        return;
      }
      case 'file-data': {
        const t = this.incoming.get(m.transferId);
        if (!t) throw new ProtocolError(`file-data for transfer ${m.transferId}, which is not open`);
        if (t.received + m.data.length > t.size) {
          throw new ProtocolError(
            `file-data: transfer ${m.transferId} is over its announced ${t.size} bytes`,
          );
        }
        t.received += m.data.length;
        t.chunks.push(m.data);
        return;
      }
      case 'file-end': {
        const t = this.incoming.get(m.transferId);
        if (!t) throw new ProtocolError(`file-end for transfer ${m.transferId}, which is not open`);
        if (t.received !== t.size) {
          throw new ProtocolError(`file-end: transfer ${m.transferId} has ${t.received} of ${t.size} bytes`);
        }
        this.incoming.delete(m.transferId);
        const data = Buffer.concat(t.chunks, t.size);
        if (!sha256(data).equals(m.sha256)) {
          this.result(m.transferId, 'failed', 0, '', 'the SHA-256 of the received bytes does not match');
          return;
        }
        void this.finish(m.transferId, t, data);
        return;
      }
      case 'file-close': {
        // Unknown ids are not errors: the watch may have ended on its own (its directory was removed).
        this.watches.get(m.transferId)?.stop();
        this.watches.delete(m.transferId);
        return;
      }
    }
  }

  /** The link ended: drop half-received files (they were only ever in memory) and stop every watch. */
  close(): void {
    this.closed = true;
    this.incoming.clear();
    for (const w of this.watches.values()) w.stop();
    this.watches.clear();
  }

  private result(
    transferId: number,
    status: 'ok' | 'refused' | 'failed',
    pid: number,
    where: string,
    message: string,
  ): void {
    if (this.closed) return;
    const code = { ok: 0, refused: 1, failed: 2 }[status];
    this.ports.send({ type: 'file-result', transferId, status: code, pid, path: where, message });
  }

  private async finish(transferId: number, t: Incoming, data: Buffer): Promise<void> {
    try {
      if (t.kind === FileKind.COPY) {
        const where = await this.copyToIncoming(t.name, data);
        this.ports.log(`received ${where} (${data.length} bytes) from the host`);
        this.result(transferId, 'ok', 0, where, '');
        return;
      }
      const writeback = t.kind === FileKind.OPEN_WRITEBACK;
      if (writeback && this.watches.size >= MAX_WATCHES) {
        this.result(transferId, 'refused', 0, '', `already watching ${MAX_WATCHES} files for writeback`);
        return;
      }
      const { dir, file } = await this.placeForOpen(t.name, data, writeback);
      let pid: number;
      try {
        pid = await this.ports.open(file);
      } catch (err) {
        await removeOpenDir(dir);
        const e = err as NodeJS.ErrnoException;
        throw new Error(
          `cannot start xdg-open: ${e.code === 'ENOENT' ? 'no such program' : (e.code ?? e.message)}`,
          { cause: err },
        );
      }
      this.ports.log(`opened ${file} (${data.length} bytes) for the host (pid ${pid})`);
      if (writeback && !this.closed) {
        this.watches.set(transferId, new Watch(transferId, dir, file, sha256(data), this.ports));
      }
      this.result(transferId, 'ok', pid, file, '');
    } catch (err) {
      const what = (err as Error).message ?? String(err);
      this.ports.log(`could not take ${t.name} from the host: ${what}`);
      this.result(transferId, 'failed', 0, '', what);
    }
  }

  /** ~/Incoming/host/NAME, or NAME (1), NAME (2)... : O_EXCL makes "never overwrite" hold even in a race. */
  private async copyToIncoming(name: string, data: Buffer): Promise<string> {
    const dir = path.join(this.ports.home, 'Incoming', 'host');
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const st = await fs.lstat(dir);
    if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
    for (let n = 0; n <= MAX_SUFFIX; n++) {
      const candidate = path.join(dir, suffixed(name, n));
      let handle: fs.FileHandle;
      try {
        handle = await fs.open(candidate, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
        throw err;
      }
      try {
        await handle.writeFile(data);
        await handle.close();
      } catch (err) {
        await handle.close().catch(() => undefined);
        await fs.rm(candidate, { force: true });
        throw err;
      }
      return candidate;
    }
    throw new Error(`${dir} already holds ${name} and ${MAX_SUFFIX} numbered copies of it`);
  }

  /**
   * A fresh directory (mkdtemp: random name, mode 0700) holding only this file:
   * read-only (file 0444, directory 0500) unless it is a writeback copy, which
   * stays writable (0644 in a 0700 directory, so an editor can save by rename).
   */
  private async placeForOpen(
    name: string,
    data: Buffer,
    writeback: boolean,
  ): Promise<{ dir: string; file: string }> {
    await fs.mkdir(this.ports.openRoot, { recursive: true, mode: 0o700 });
    const dir = await fs.mkdtemp(path.join(this.ports.openRoot, 'f-'));
    const file = path.join(dir, name);
    try {
      await fs.writeFile(file, data, { flag: 'wx', mode: 0o600 });
      await fs.chmod(file, writeback ? 0o644 : 0o444);
      if (!writeback) await fs.chmod(dir, 0o500);
    } catch (err) {
      await removeOpenDir(dir);
      throw err;
    }
    return { dir, file };
  }
}

/** Removes a per-run directory even when it was already made read-only. */
async function removeOpenDir(dir: string): Promise<void> {
  await fs.chmod(dir, 0o700).catch(() => undefined);
  await fs.rm(dir, { recursive: true, force: true });
}

/** `report.pdf`, `report (1).pdf`, `report (2).pdf`... within the name's byte limit. */
export function suffixed(name: string, n: number): string {
  if (n === 0) return name;
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 ? name.slice(dot) : '';
  let stem = dot > 0 ? name.slice(0, dot) : name;
  const tail = ` (${n})${ext}`;
  while (stem.length > 1 && Buffer.byteLength(stem + tail, 'utf8') > 255)
    stem = [...stem].slice(0, -1).join('');
  return stem + tail;
}

/**
 * Watches one writable copy. Editors save in place or by writing a new file
 * and renaming it over the old one, so the directory is watched, not the file;
 * a version is read once changes have settled, and sent only when its
 * SHA-256 differs from the last one the host has.
 */
class Watch {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private sending = false;
  private again = false;
  private stopped = false;

  constructor(
    private readonly transferId: number,
    dir: string,
    private readonly file: string,
    private lastSha: Buffer,
    private readonly ports: FilePorts,
  ) {
    try {
      this.watcher = watch(dir, () => this.changed());
      this.watcher.on('error', () => this.stop());
    } catch (err) {
      ports.log(`cannot watch ${dir}: ${(err as Error).message}`);
    }
  }

  private changed(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.check(), WRITEBACK_SETTLE_MS);
  }

  private async check(): Promise<void> {
    if (this.sending) {
      this.again = true;
      return;
    }
    this.sending = true;
    try {
      do {
        this.again = false;
        await this.sendIfChanged();
      } while (this.again && !this.stopped);
    } finally {
      this.sending = false;
    }
  }

  private async sendIfChanged(): Promise<void> {
    let data: Buffer;
    try {
      // O_NOFOLLOW and fstat: a symlink or anything but a regular file put in its place is never read.
      const handle = await fs.open(
        this.file,
        constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK,
      );
      try {
        const st = await handle.stat();
        if (!st.isFile()) return;
        if (st.size > MAX_FILE_BYTES) {
          this.ports.log(`${this.file} is over ${MAX_FILE_BYTES} bytes; not sent back`);
          return;
        }
        data = await handle.readFile();
      } finally {
        await handle.close();
      }
    } catch {
      return; // gone for a moment (a save by rename) or unreadable: the next change tries again
    }
    if (data.length > MAX_FILE_BYTES || this.stopped) return;
    const digest = sha256(data);
    if (digest.equals(this.lastSha)) return;
    this.lastSha = digest;
    const transferId = this.transferId;
    this.ports.send({ type: 'writeback-begin', transferId, size: data.length });
    for (let at = 0; at < data.length; at += MAX_FILE_CHUNK_BYTES) {
      await this.ports.drained();
      if (this.stopped) return;
      this.ports.send({
        type: 'writeback-data',
        transferId,
        data: data.subarray(at, Math.min(at + MAX_FILE_CHUNK_BYTES, data.length)),
      });
    }
    this.ports.send({ type: 'writeback-end', transferId, sha256: digest });
    this.ports.log(`sent ${this.file} back to the host (${data.length} bytes)`);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    this.watcher?.close();
    // What is saved from now on stays in the guest: make that visible.
    void fs.chmod(this.file, 0o444).catch(() => undefined);
  }
}
