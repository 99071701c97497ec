import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileNameProblem, MAX_FILE_BYTES } from '../protocol/index.js';
import { attachedRequest, controlRequest } from '../proxy/control-client.js';
import type { WritebackEvent } from '../proxy/server.js';
import { describeValue } from '../spec/validate.js';
import { CancelledError, InputError } from '../util/errors.js';
import { DEFAULT_RUN_WAIT_MS, type RunOptions } from './run.js';

/**
 * `open NAME FILE [--writeback]` and `copy-to-vm NAME FILE...`: one host file
 * at a time goes to the VM's guest agent through the host proxy (control ops
 * `file-open` / `file-copy`, protocol messages FILE_*; docs/files.md). The
 * proxy reads the file itself and checks it again on the descriptor it sends
 * from; the check here is for a clear error before any VM is started.
 */

/** Typed by the user, checked: an absolute path to a regular file of at most MAX_FILE_BYTES, not a symlink. */
export async function checkHostFile(file: unknown): Promise<string> {
  // The whole path, escaped (JSON: control characters and NUL as \t, \u0000...): its last segment matters.
  const shown =
    typeof file === 'string'
      ? JSON.stringify(file.length > 1024 ? `${file.slice(0, 1024)}...` : file)
      : describeValue(file);
  const bad = (rule: string): InputError => new InputError(`invalid file ${shown}: ${rule}`);
  if (typeof file !== 'string' || file === '') throw bad('name a file');
  if (file.includes('\0')) throw bad('a path cannot contain a NUL byte');
  const absolute = path.resolve(file);
  const nameProblem = fileNameProblem(path.basename(absolute));
  if (nameProblem) {
    throw bad(
      `${nameProblem}; a file sent to a VM keeps its name, which must be 1-255 bytes with no '/', ` +
        "no control character and no leading '.' (rename or copy it first)",
    );
  }
  let st;
  try {
    st = await fs.lstat(absolute);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw bad(code === 'ENOENT' || code === 'ENOTDIR' ? 'no such file' : `cannot read it (${code})`);
  }
  if (st.isSymbolicLink()) throw bad('it is a symbolic link; only regular files are sent (name the target)');
  if (st.isDirectory()) throw bad('it is a directory; only regular files are sent');
  if (!st.isFile()) {
    const kind = st.isFIFO() ? 'a FIFO' : st.isSocket() ? 'a socket' : 'a device';
    throw bad(`it is ${kind}; only regular files are sent`);
  }
  if (st.size > MAX_FILE_BYTES) throw bad(`it is ${st.size} bytes; the limit is ${MAX_FILE_BYTES} (64 MiB)`);
  try {
    await fs.access(absolute, constants.R_OK);
  } catch {
    throw bad('permission denied');
  }
  return absolute;
}

function socketOf(options: RunOptions): { socketPath?: string } {
  return options.socketPath ? { socketPath: options.socketPath } : {};
}

function waitOf(options: RunOptions): { waitMs: number; connectedSince?: number } {
  return {
    waitMs: options.waitMs ?? DEFAULT_RUN_WAIT_MS,
    ...(options.connectedSince ? { connectedSince: options.connectedSince } : {}),
  };
}

/** Puts a copy of `file` (checked, absolute) into the running VM's ~/Incoming/host; resolves with its guest path. */
export async function copyToVm(name: string, file: string, options: RunOptions = {}): Promise<string> {
  const wait = waitOf(options);
  const { guestPath } = await controlRequest<{ guestPath: string }>(
    'file-copy',
    { vm: name, path: file, ...wait },
    // The agent's wait, the transfer and the agent's 30 s to confirm.
    { ...socketOf(options), timeoutMs: wait.waitMs + 60_000 },
  );
  return guestPath;
}

export interface OpenOptions extends RunOptions {
  /** Send each version saved in the guest back to `file` until `signal` aborts or the VM's agent goes. */
  writeback?: boolean;
  /** Ends a writeback session; without writeback, abandons the wait for the agent's answer. */
  signal?: AbortSignal;
  /** Called once the file is open in the guest. */
  onOpened?(opened: { guestPath: string; pid: number }): void;
  onWriteback?(event: WritebackEvent): void;
}

/**
 * Opens `file` (checked, absolute) in the running VM NAME with the guest's
 * default handler. Without writeback, returns once the handler started; with
 * it, once the session ends: `signal` aborted (resolves with `detached`), the
 * agent went away (`ended`), or a version could not be written back because
 * the host file changed (`refused`, with the reason).
 */
export async function openInVm(
  name: string,
  file: string,
  options: OpenOptions = {},
): Promise<{ guestPath: string; pid: number; end?: WritebackEvent | { type: 'detached' } }> {
  const wait = waitOf(options);
  const timeoutMs = wait.waitMs + 60_000;
  if (!options.writeback) {
    const opened = await controlRequest<{ guestPath: string; pid: number }>(
      'file-open',
      { vm: name, path: file, ...wait },
      { ...socketOf(options), timeoutMs, ...(options.signal ? { signal: options.signal } : {}) },
    );
    options.onOpened?.(opened);
    return opened;
  }
  let opened: { guestPath: string; pid: number } | undefined;
  let end: WritebackEvent | { type: 'detached' } = { type: 'detached' };
  await attachedRequest<{ guestPath: string; pid: number }>(
    'file-open',
    { vm: name, path: file, writeback: true, ...wait },
    {
      ...socketOf(options),
      timeoutMs,
      ...(options.signal ? { signal: options.signal } : {}),
      onResult: (result) => {
        opened = result;
        options.onOpened?.(result);
      },
      onEvent: (value) => {
        const event = value as WritebackEvent;
        if (event.type !== 'written') end = event;
        options.onWriteback?.(event);
      },
    },
  );
  if (!opened) throw new CancelledError(`open ${name}: cancelled before the file was opened`);
  return { ...opened, end };
}
