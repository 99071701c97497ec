import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { execArgvProblem, MAX_CLIPBOARD_BYTES, MAX_MIME_BYTES, VM_NAME_PATTERN } from '../protocol/index.js';
import { SNAPSHOT_NAME_PATTERN } from '../spec/snapshot-name.js';
import { runtimeDir } from '../util/paths.js';
import { HostFileError, readHostFile } from './host-file.js';
import { probeUnixSocket } from '../util/unix-socket.js';
import { ProxyRequestError, type ProxyEvent, type ProxyServer, type WritebackEvent } from './server.js';

/**
 * The proxy's local control socket: newline-delimited JSON over a Unix socket
 * that only the proxy's user can open (directory 0700, socket 0600). Serves
 * `status`, `windows`, `follow`, the clipboard, `run` and `forget` (docs/protocol.md).
 */

export const CONTROL_SOCKET_NAME = 'proxy.sock';
/** Longest request line (a 256 KiB paste is ~350 KiB of base64). */
export const MAX_CONTROL_LINE = 1024 * 1024;
/** A control connection that neither follows nor asks anything for this long is closed. */
export const CONTROL_IDLE_TIMEOUT_MS = 60_000;
/** Longest a `run` request may wait for its VM's agent to connect (a cold boot under emulation). */
export const MAX_RUN_WAIT_MS = 600_000;
/** A follower that stops reading is dropped rather than buffered for. */
export const MAX_FOLLOWER_BUFFER = 4 * 1024 * 1024;

export function defaultControlSocketPath(): string {
  return path.join(runtimeDir(), CONTROL_SOCKET_NAME);
}

export type ControlErrorCode =
  'bad_request' | 'not_found' | 'not_connected' | 'refused' | 'timeout' | 'failed';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface ControlServerOptions {
  socketPath?: string;
  log?: (line: string) => void;
}

function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

class BadRequest extends Error {}

export class ControlServer {
  readonly socketPath: string;
  private server: net.Server | undefined;
  private readonly clients = new Set<net.Socket>();
  private readonly followers = new Set<net.Socket>();
  private readonly log: (line: string) => void;

  constructor(
    private readonly proxy: ProxyServer,
    options: ControlServerOptions = {},
  ) {
    this.socketPath = options.socketPath ?? defaultControlSocketPath();
    this.log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
  }

  async start(): Promise<void> {
    const dir = path.dirname(this.socketPath);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const st = await fs.stat(dir);
    if (typeof process.getuid === 'function' && st.uid !== process.getuid()) {
      throw new Error(`control socket directory ${dir} belongs to another user`);
    }
    await fs.chmod(dir, 0o700);
    await this.removeStaleSocket();
    const server = net.createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    await fs.chmod(this.socketPath, 0o600);
    server.on('error', (err) => this.log(`control socket: ${err.message}`));
    this.server = server;
  }

  /** A socket file nobody answers on is left over from a crash; one that answers means a proxy runs. */
  private async removeStaleSocket(): Promise<void> {
    try {
      await fs.lstat(this.socketPath);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return;
      throw err;
    }
    if ((await probeUnixSocket(this.socketPath)) === 'answers')
      throw new Error(`another proxy is already serving ${this.socketPath}`);
    await fs.unlink(this.socketPath);
  }

  private accept(socket: net.Socket): void {
    this.clients.add(socket);
    let buffer = '';
    let following: ((event: ProxyEvent) => void) | undefined;
    const stopFollowing = (): void => {
      if (following) this.proxy.off('event', following);
      following = undefined;
      this.followers.delete(socket);
    };
    // Sessions bound to this connection (`file-open` with writeback): ended when it closes.
    const attached = new Set<() => void>();
    socket.setEncoding('utf8');
    // Requests still being answered (a `run` waiting for its VM's agent) keep the connection.
    let answering = 0;
    socket.setTimeout(CONTROL_IDLE_TIMEOUT_MS, () => {
      if (!following && answering === 0 && attached.size === 0) socket.destroy();
    });
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.trim() === '') continue;
        answering++;
        void this.handleLine(
          socket,
          line,
          (listener) => {
            stopFollowing();
            following = listener;
            this.followers.add(socket);
            this.proxy.on('event', listener);
          },
          (end) => {
            if (socket.destroyed) return end();
            attached.add(end);
          },
        ).finally(() => answering--);
      }
      if (buffer.length > MAX_CONTROL_LINE) {
        this.reply(socket, null, {
          code: 'bad_request',
          message: `request line over ${MAX_CONTROL_LINE} bytes`,
        });
        socket.end();
        buffer = '';
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      for (const end of attached) end();
      attached.clear();
      stopFollowing();
      this.clients.delete(socket);
    });
  }

  private reply(
    socket: net.Socket,
    id: Json,
    outcome: { result: Json } | { code: ControlErrorCode; message: string },
  ): void {
    if (socket.destroyed) return;
    const body =
      'result' in outcome
        ? { id, ok: true, result: outcome.result }
        : { id, ok: false, error: { code: outcome.code, message: outcome.message } };
    socket.write(`${JSON.stringify(body)}\n`);
  }

  private async handleLine(
    socket: net.Socket,
    line: string,
    follow: (listener: (event: ProxyEvent) => void) => void,
    attach: (end: () => void) => void,
  ): Promise<void> {
    let id: Json = null;
    try {
      let request: unknown;
      try {
        request = JSON.parse(line);
      } catch {
        throw new BadRequest('request is not valid JSON');
      }
      if (typeof request !== 'object' || request === null || Array.isArray(request)) {
        throw new BadRequest('request must be a JSON object');
      }
      const req = request as Record<string, unknown>;
      id = (req.id ?? null) as Json;
      const result = await this.dispatch(socket, req, follow, attach);
      this.reply(socket, id, { result });
    } catch (err) {
      if (err instanceof BadRequest || err instanceof HostFileError)
        this.reply(socket, id, { code: 'bad_request', message: err.message });
      else if (err instanceof ProxyRequestError)
        this.reply(socket, id, { code: err.code, message: err.message });
      else this.reply(socket, id, { code: 'failed', message: (err as Error).message ?? String(err) });
    }
  }

  private async dispatch(
    socket: net.Socket,
    req: Record<string, unknown>,
    follow: (listener: (event: ProxyEvent) => void) => void,
    attach: (end: () => void) => void,
  ): Promise<Json> {
    switch (req.op) {
      case 'status':
        return { ...this.proxy.status(), followers: this.followers.size } as unknown as Json;
      case 'windows': {
        const vm = optionalVm(req.vm);
        if (vm === undefined) {
          return {
            vms: this.proxy.table.names().map((n) => this.proxy.table.windowsOf(n)!),
          } as unknown as Json;
        }
        const view = this.proxy.table.windowsOf(vm);
        if (!view) throw new ProxyRequestError('not_found', `no agent has connected for VM "${vm}"`);
        return { vms: [view] } as unknown as Json;
      }
      case 'follow': {
        const vm = optionalVm(req.vm);
        // Events are batched into one write per event-loop turn: at tens of
        // thousands of events a second, a write per event costs more than the events.
        let pending: string[] = [];
        let pendingBytes = 0;
        let scheduled = false;
        const drop = (): void => {
          this.log('control socket: dropping a follower that does not read');
          pending = [];
          socket.destroy();
        };
        const flush = (): void => {
          scheduled = false;
          if (socket.destroyed) return;
          const text = pending.join('');
          pending = [];
          pendingBytes = 0;
          socket.write(text);
          if (socket.writableLength > MAX_FOLLOWER_BUFFER) drop();
        };
        const listener = (event: ProxyEvent): void => {
          if (vm !== undefined && event.vm !== vm) return;
          if (socket.destroyed) return;
          const line = `${JSON.stringify({ event })}\n`;
          pending.push(line);
          pendingBytes += line.length;
          if (pendingBytes + socket.writableLength > MAX_FOLLOWER_BUFFER) return drop();
          if (!scheduled) {
            scheduled = true;
            setImmediate(flush);
          }
        };
        follow(listener);
        return {};
      }
      case 'clipboard-copy': {
        const vm = requiredVm(req.vm);
        const content = await this.proxy.requestClipboard(vm);
        return { mimeType: content.mimeType, data: content.data.toString('base64') };
      }
      case 'clipboard-paste': {
        const vm = requiredVm(req.vm);
        if (
          typeof req.mimeType !== 'string' ||
          req.mimeType === '' ||
          Buffer.byteLength(req.mimeType) > MAX_MIME_BYTES
        ) {
          throw new BadRequest(`mimeType must be a non-empty string of at most ${MAX_MIME_BYTES} bytes`);
        }
        if (typeof req.data !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(req.data)) {
          throw new BadRequest('data must be base64');
        }
        const data = Buffer.from(req.data, 'base64');
        if (data.length > MAX_CLIPBOARD_BYTES) {
          throw new BadRequest(
            `clipboard content is ${data.length} bytes; the limit is ${MAX_CLIPBOARD_BYTES}`,
          );
        }
        await this.proxy.sendClipboard(vm, { mimeType: req.mimeType, data });
        return {};
      }
      case 'run': {
        const vm = requiredVm(req.vm);
        const problem = execArgvProblem(req.argv);
        if (problem) throw new BadRequest(problem);
        const { waitMs, since } = waitFields(req);
        // A client that leaves (a disposable that ended, a Ctrl+C) takes its wait with it.
        const gone = new AbortController();
        const onClose = (): void => gone.abort();
        socket.once('close', onClose);
        const started = await this.proxy
          .exec(vm, req.argv as string[], { waitMs, connectedSinceMs: since, signal: gone.signal })
          .finally(() => socket.off('close', onClose));
        return { pid: started.pid, execId: started.execId };
      }
      case 'forget': {
        const vm = requiredVm(req.vm);
        return { forgotten: this.proxy.forget(vm) };
      }
      // Resume tickets of snapshots (docs/protocol.md, "Resume: tickets"): `snapshot create --memory`
      // pins, `snapshot revert` re-arms, `snapshot delete` unpins.
      case 'ticket-pin':
        return { pinned: this.proxy.pinTicket(requiredVm(req.vm), requiredSnapshot(req.snapshot)) };
      case 'ticket-rearm':
        return { rearmed: this.proxy.rearmTicket(requiredVm(req.vm), requiredSnapshot(req.snapshot)) };
      case 'ticket-unpin':
        return { unpinned: this.proxy.unpinTicket(requiredVm(req.vm), requiredSnapshot(req.snapshot)) };
      case 'file-copy':
      case 'file-open': {
        const vm = requiredVm(req.vm);
        const { waitMs, since } = waitFields(req);
        if (typeof req.path !== 'string') throw new BadRequest('path must be an absolute path');
        const writeback = req.writeback ?? false;
        if (typeof writeback !== 'boolean') throw new BadRequest('writeback must be true or false');
        if (writeback && req.op !== 'file-open') throw new BadRequest('only file-open takes writeback');
        // The proxy reads the file itself, through one descriptor it checked (regular, no symlink, size).
        const file = await readHostFile(req.path);
        // Writeback events go to this connection until it closes; the last one ends it from our side.
        const onWriteback = (event: WritebackEvent): void => {
          if (socket.destroyed) return;
          socket.write(`${JSON.stringify({ event })}\n`);
          if (event.type !== 'written') socket.end();
        };
        const session = await this.proxy.sendFile(vm, file, {
          kind: req.op === 'file-copy' ? 'copy' : 'open',
          writeback,
          onWriteback,
          waitMs,
          connectedSinceMs: since,
        });
        if (writeback) attach(() => session.close());
        return req.op === 'file-copy'
          ? { guestPath: session.path }
          : { guestPath: session.path, pid: session.pid };
      }
      default:
        throw new BadRequest(`unknown op ${JSON.stringify(req.op ?? null)}`);
    }
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const c of this.clients) c.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    await fs.rm(this.socketPath, { force: true });
  }
}

/** `waitMs` and `connectedSince` of `run` and the file ops. */
function waitFields(req: Record<string, unknown>): { waitMs: number; since: number } {
  const waitMs = req.waitMs ?? 0;
  if (typeof waitMs !== 'number' || !Number.isInteger(waitMs) || waitMs < 0 || waitMs > MAX_RUN_WAIT_MS) {
    throw new BadRequest(`waitMs must be a whole number of milliseconds from 0 to ${MAX_RUN_WAIT_MS}`);
  }
  const since = req.connectedSince ?? 0;
  if (typeof since !== 'number' || !Number.isSafeInteger(since) || since < 0) {
    throw new BadRequest('connectedSince must be a time in milliseconds since the epoch');
  }
  return { waitMs, since };
}

function optionalVm(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  return requiredVm(value);
}

function requiredVm(value: unknown): string {
  if (typeof value !== 'string' || !VM_NAME_PATTERN.test(value)) {
    throw new BadRequest(`vm ${JSON.stringify(value ?? null)} is not a valid VM name`);
  }
  return value;
}

function requiredSnapshot(value: unknown): string {
  if (typeof value !== 'string' || !SNAPSHOT_NAME_PATTERN.test(value)) {
    throw new BadRequest(`snapshot ${JSON.stringify(value ?? null)} is not a valid snapshot name`);
  }
  return value;
}
