import net from 'node:net';
import {
  InputError,
  NotFoundError,
  ServiceUnavailableError,
  TimeoutError,
  VmpError,
} from '../util/errors.js';
import { defaultControlSocketPath } from './control-socket.js';
import type { ProxyEvent } from './server.js';
import type { VmStatusView, VmWindowsView } from './window-table.js';

/**
 * Client of the proxy's control socket, used by the `windows` and `clipboard`
 * commands. Every call has a deadline; failures become the CLI's typed errors.
 */

export interface ControlClientOptions {
  socketPath?: string;
  /** Deadline for connecting and for the answer. Default 10 s. */
  timeoutMs?: number;
  /** Gives up at once (closing the connection) when aborted: the request rejects with the signal's reason. */
  signal?: AbortSignal;
}

export const DEFAULT_CONTROL_TIMEOUT_MS = 10_000;

export interface StatusResult {
  listening: string[];
  vms: VmStatusView[];
  /** Control connections currently following events. */
  followers: number;
}
export interface WindowsResult {
  vms: VmWindowsView[];
}
export interface ClipboardResult {
  mimeType: string;
  /** base64 */
  data: string;
}

interface Response {
  id: unknown;
  ok: boolean;
  result?: unknown;
  error?: { code: string; message: string };
}

function notRunning(socketPath: string, err: Error): ServiceUnavailableError {
  return new ServiceUnavailableError(
    `the window proxy is not running (no answer on ${socketPath}: ${err.message}); ` +
      'start it with `vm-provisioner proxy` or `systemctl --user start vm-provisioner-proxy`',
    { cause: err },
  );
}

function errorFromResponse(error: { code: string; message: string }): VmpError {
  switch (error.code) {
    case 'not_found':
      return new NotFoundError(error.message);
    case 'refused':
    case 'bad_request':
      return new InputError(error.message);
    case 'timeout':
      return new TimeoutError(error.message);
    case 'not_connected':
      return new ServiceUnavailableError(error.message);
    default:
      return new VmpError(error.message);
  }
}

function connect(socketPath: string, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new TimeoutError(
          `the window proxy did not accept a connection on ${socketPath} within ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(notRunning(socketPath, err));
    });
  });
}

/** Reads newline-delimited JSON from a socket. */
function onLines(socket: net.Socket, handler: (value: unknown) => void): void {
  let buffer = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line.trim() !== '') handler(JSON.parse(line));
    }
  });
}

/** Sends one request and waits for its answer. */
export async function controlRequest<T>(
  op: string,
  fields: Record<string, unknown> = {},
  options: ControlClientOptions = {},
): Promise<T> {
  const socketPath = options.socketPath ?? defaultControlSocketPath();
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONTROL_TIMEOUT_MS;
  const socket = await connect(socketPath, timeoutMs);
  try {
    return await new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new TimeoutError(`the window proxy did not answer "${op}" within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const settle = (fn: () => void): void => {
        clearTimeout(timer);
        fn();
      };
      onLines(socket, (value) => {
        const res = value as Response;
        if (res.id !== 1) return;
        if (res.ok) settle(() => resolve(res.result as T));
        else
          settle(() => reject(errorFromResponse(res.error ?? { code: 'failed', message: 'unknown error' })));
      });
      socket.once('close', () =>
        settle(() =>
          reject(new ServiceUnavailableError(`the window proxy closed the connection during "${op}"`)),
        ),
      );
      socket.once('error', (err) => settle(() => reject(notRunning(socketPath, err))));
      const onAbort = (): void =>
        settle(() => reject(options.signal?.reason ?? new VmpError(`"${op}" was abandoned`)));
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      socket.once('close', () => options.signal?.removeEventListener('abort', onAbort));
      socket.write(`${JSON.stringify({ id: 1, op, ...fields })}\n`);
    });
  } finally {
    socket.destroy();
  }
}

export interface FollowOptions extends ControlClientOptions {
  vm?: string;
  onEvent(event: ProxyEvent): void;
  /** Stops following (resolves the promise) when aborted. */
  signal?: AbortSignal;
}

/** Streams events until the signal aborts (resolves) or the proxy goes away (rejects). */
export async function followEvents(options: FollowOptions): Promise<void> {
  const socketPath = options.socketPath ?? defaultControlSocketPath();
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONTROL_TIMEOUT_MS;
  const socket = await connect(socketPath, timeoutMs);
  return new Promise<void>((resolve, reject) => {
    let acknowledged = false;
    const ackTimer = setTimeout(() => {
      socket.destroy();
      reject(new TimeoutError(`the window proxy did not answer "follow" within ${timeoutMs} ms`));
    }, timeoutMs);
    const onAbort = (): void => {
      socket.destroy();
      resolve();
    };
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    onLines(socket, (value) => {
      const line = value as Response & { event?: ProxyEvent };
      if (line.event) {
        options.onEvent(line.event);
      } else if (line.id === 1) {
        clearTimeout(ackTimer);
        if (!line.ok) {
          socket.destroy();
          reject(errorFromResponse(line.error ?? { code: 'failed', message: 'unknown error' }));
        } else acknowledged = true;
      }
    });
    socket.once('close', () => {
      clearTimeout(ackTimer);
      options.signal?.removeEventListener('abort', onAbort);
      if (options.signal?.aborted) return resolve();
      reject(
        new ServiceUnavailableError(
          acknowledged ? 'the window proxy stopped' : 'the window proxy closed the connection',
        ),
      );
    });
    socket.once('error', () => undefined);
    socket.write(`${JSON.stringify({ id: 1, op: 'follow', ...(options.vm ? { vm: options.vm } : {}) })}\n`);
  });
}

export interface AttachedOptions<T> extends ControlClientOptions {
  /** The answer; after it, the connection carries `{"event": ...}` lines until either side ends it. */
  onResult(result: T): void;
  onEvent(event: unknown): void;
  /** Detaches (closes the connection, which ends the session at the proxy) and resolves. */
  signal?: AbortSignal;
}

/**
 * A request whose answer starts a session bound to the connection (`file-open`
 * with writeback): resolves when the proxy ends it or the signal aborts;
 * rejects with the request's error, or when the proxy goes away.
 */
export async function attachedRequest<T>(
  op: string,
  fields: Record<string, unknown>,
  options: AttachedOptions<T>,
): Promise<void> {
  const socketPath = options.socketPath ?? defaultControlSocketPath();
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONTROL_TIMEOUT_MS;
  const socket = await connect(socketPath, timeoutMs);
  return new Promise<void>((resolve, reject) => {
    let answered = false;
    let failed = false;
    const timer = setTimeout(() => {
      failed = true;
      socket.destroy();
      reject(new TimeoutError(`the window proxy did not answer "${op}" within ${timeoutMs} ms`));
    }, timeoutMs);
    const onAbort = (): void => {
      socket.destroy();
    };
    if (options.signal?.aborted) {
      clearTimeout(timer);
      socket.destroy();
      return resolve();
    }
    options.signal?.addEventListener('abort', onAbort, { once: true });
    onLines(socket, (value) => {
      const line = value as Response & { event?: unknown };
      if (line.event !== undefined) {
        if (answered) options.onEvent(line.event);
      } else if (line.id === 1 && !answered) {
        clearTimeout(timer);
        if (!line.ok) {
          failed = true;
          socket.destroy();
          reject(errorFromResponse(line.error ?? { code: 'failed', message: 'unknown error' }));
          return;
        }
        answered = true;
        options.onResult(line.result as T);
      }
    });
    socket.once('close', () => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      if (failed) return;
      if (answered || options.signal?.aborted) return resolve();
      reject(new ServiceUnavailableError(`the window proxy closed the connection during "${op}"`));
    });
    socket.once('error', () => undefined);
    socket.write(`${JSON.stringify({ id: 1, op, ...fields })}\n`);
  });
}
