import { connect as tcpConnect, type Socket } from 'node:net';
import {
  ClipboardStatus,
  computeAuthMac,
  encodeMessage,
  ErrorCode,
  FrameDecoder,
  MAX_CLASS_BYTES,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_SNAPSHOT_WINDOWS,
  MAX_TITLE_BYTES,
  MIN_PROTOCOL_VERSION,
  newNonce,
  PROTOCOL_VERSION,
  verifyAuthMac,
  type AuthContext,
  type Message,
  type WindowInfo as WireWindow,
} from '../../src/protocol/index.js';
import type { AgentInbound, AgentLink, AgentOutbound, ClipboardResultStatus } from './agent.js';
import type { WindowInfo } from './window-tracker.js';

/**
 * An `AgentLink` over the window protocol (docs/protocol.md): TCP to the
 * proxy, HELLO / CHALLENGE / AUTH / WELCOME with mutual HMAC proof, then
 * window events out, clipboard requests in, and heartbeats both ways. The
 * codec is src/protocol, shared with the proxy.
 */

export interface ProxyLinkOptions {
  host: string;
  port: number;
  vmName: string;
  /** The 32-byte HMAC key (hex-decoded agent.secret). */
  secret: Buffer;
  agentVersion: string;
  /** Connect plus handshake must finish within this, or the attempt fails. */
  handshakeTimeoutMs?: number;
  log?: (line: string) => void;
}

export const TEXT_MIME = 'text/plain;charset=utf-8';
/** A proxy that stops reading is dropped once this much output is queued (docs/protocol.md "Errors"). */
const MAX_QUEUED_BYTES = 4 * 1024 * 1024;

export class LinkError extends Error {
  override readonly name = 'LinkError';
}

export function connectProxyLink(opts: ProxyLinkOptions): Promise<AgentLink> {
  const log = opts.log ?? (() => undefined);
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: opts.host, port: opts.port });
    socket.setNoDelay(true);
    const decoder = new FrameDecoder();
    const agentNonce = newNonce();
    let ctx: AuthContext | null = null;
    let settled = false;
    const where = `${opts.host}:${opts.port}`;

    const fail = (err: Error, code?: number): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (code !== undefined && socket.writable) {
        socket.end(
          encodeMessage({ type: 'error', code, message: clip(err.message, MAX_ERROR_MESSAGE_BYTES) }),
        );
      } else {
        socket.destroy();
      }
      // Make sure a peer that never closes its side cannot keep the socket.
      setTimeout(() => socket.destroy(), 1000).unref();
      reject(err);
    };
    const timer = setTimeout(
      () => fail(new LinkError(`proxy ${where}: no WELCOME within ${opts.handshakeTimeoutMs ?? 10_000} ms`)),
      opts.handshakeTimeoutMs ?? 10_000,
    );

    socket.on('connect', () => {
      socket.write(
        encodeMessage({
          type: 'hello',
          minVersion: MIN_PROTOCOL_VERSION,
          maxVersion: PROTOCOL_VERSION,
          vmName: opts.vmName,
          agentVersion: clip(opts.agentVersion, 64),
          agentNonce,
        }),
      );
    });
    socket.on('error', (err) => fail(new LinkError(`proxy ${where}: ${err.message}`)));
    socket.on('close', () =>
      fail(new LinkError(`proxy ${where} closed the connection during the handshake`)),
    );

    const onData = (chunk: Buffer): void => {
      for (const result of decoder.push(chunk)) {
        if (settled) return;
        if (!result.ok) {
          fail(new LinkError(`proxy ${where}: ${result.error.message}`), ErrorCode.PROTOCOL_ERROR);
          return;
        }
        const m = result.message;
        if (m.type === 'error') {
          fail(new LinkError(`proxy ${where} refused us: ${m.message} (code ${m.code})`));
        } else if (m.type === 'challenge' && ctx === null) {
          if (m.version < MIN_PROTOCOL_VERSION || m.version > PROTOCOL_VERSION) {
            fail(
              new LinkError(`proxy ${where} chose protocol version ${m.version}`),
              ErrorCode.UNSUPPORTED_VERSION,
            );
            return;
          }
          ctx = { vmName: opts.vmName, version: m.version, agentNonce, proxyNonce: m.proxyNonce };
          socket.write(encodeMessage({ type: 'auth', mac: computeAuthMac(opts.secret, 'agent', ctx) }));
        } else if (m.type === 'welcome' && ctx !== null) {
          if (!verifyAuthMac(opts.secret, 'proxy', ctx, m.mac)) {
            fail(new LinkError(`proxy ${where} does not know this VM's secret`), ErrorCode.AUTH_FAILED);
            return;
          }
          settled = true;
          clearTimeout(timer);
          socket.removeListener('data', onData);
          socket.removeAllListeners('error');
          socket.removeAllListeners('close');
          resolve(new ProxyLink(socket, decoder, m.heartbeatIntervalMs, log, where));
        } else {
          fail(new LinkError(`proxy ${where} sent ${m.type} during the handshake`), ErrorCode.PROTOCOL_ERROR);
        }
      }
    };
    socket.on('data', onData);
  });
}

class ProxyLink implements AgentLink {
  readonly closed: Promise<void>;
  private handler: (m: AgentInbound) => void = () => undefined;
  private lastHeard = Date.now();
  private heartbeatSeq = 0;
  private readonly heartbeat: NodeJS.Timeout;
  private done = false;
  private resolveClosed!: () => void;

  constructor(
    private readonly socket: Socket,
    private readonly decoder: FrameDecoder,
    private readonly intervalMs: number,
    private readonly log: (line: string) => void,
    private readonly where: string,
  ) {
    this.closed = new Promise((r) => (this.resolveClosed = r));
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (err) => this.shutdown(`socket error: ${err.message}`));
    socket.on('close', () => this.shutdown('connection closed by the proxy'));
    // One timer does both jobs: send our heartbeat, and notice a silent proxy.
    this.heartbeat = setInterval(() => this.tick(), intervalMs);
  }

  onMessage(handler: (m: AgentInbound) => void): void {
    this.handler = handler;
  }

  send(out: AgentOutbound): void {
    if (this.done) return;
    for (const m of toWire(out)) this.write(m);
  }

  close(): void {
    this.shutdown('closed by the agent');
  }

  private write(m: Message): void {
    if (this.done) return;
    this.socket.write(encodeMessage(m));
    if (this.socket.writableLength > MAX_QUEUED_BYTES)
      this.shutdown('the proxy is not reading (4 MiB queued)');
  }

  private tick(): void {
    if (Date.now() - this.lastHeard > 3 * this.intervalMs) {
      this.abort(ErrorCode.HEARTBEAT_TIMEOUT, `nothing heard for ${3 * this.intervalMs} ms`);
      return;
    }
    this.heartbeatSeq = (this.heartbeatSeq + 1) >>> 0;
    this.write({ type: 'heartbeat', seq: this.heartbeatSeq });
  }

  private receive(chunk: Buffer): void {
    this.lastHeard = Date.now();
    for (const result of this.decoder.push(chunk)) {
      if (this.done) return;
      if (!result.ok) {
        this.abort(ErrorCode.PROTOCOL_ERROR, result.error.message);
        return;
      }
      const m = result.message;
      switch (m.type) {
        case 'heartbeat':
          break;
        case 'error':
          this.shutdown(`proxy sent ERROR ${m.code}: ${m.message}`);
          return;
        case 'clipboard-request':
          this.handler({ type: 'clipboard-read', requestId: m.requestId });
          break;
        case 'clipboard-data':
          this.handler({
            type: 'clipboard-write',
            requestId: m.requestId,
            mimeType: m.mimeType,
            data: m.data,
          });
          break;
        default:
          this.abort(ErrorCode.PROTOCOL_ERROR, `unexpected ${m.type} from the proxy`);
          return;
      }
    }
  }

  private abort(code: number, reason: string): void {
    if (this.done) return;
    if (this.socket.writable) {
      this.socket.write(
        encodeMessage({ type: 'error', code, message: clip(reason, MAX_ERROR_MESSAGE_BYTES) }),
      );
    }
    this.shutdown(reason);
  }

  private shutdown(reason: string): void {
    if (this.done) return;
    this.done = true;
    clearInterval(this.heartbeat);
    this.log(`link to ${this.where} ended: ${reason}`);
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
    this.resolveClosed();
  }
}

const STATUS_CODES: Record<ClipboardResultStatus, number> = {
  ok: ClipboardStatus.OK,
  refused: ClipboardStatus.REFUSED,
  empty: ClipboardStatus.EMPTY,
  'too-large': ClipboardStatus.TOO_LARGE,
  failed: ClipboardStatus.FAILED,
};

/** Maps what the agent says to protocol messages, clipping strings to the protocol's limits. */
export function toWire(out: AgentOutbound): Message[] {
  switch (out.type) {
    case 'window-list':
      return [
        {
          type: 'window-list',
          focused: out.focused ?? 0,
          windows: out.windows.slice(0, MAX_SNAPSHOT_WINDOWS).map(windowRecord),
        },
      ];
    case 'clipboard-content':
      return [
        {
          type: 'clipboard-data',
          requestId: out.requestId,
          mimeType: TEXT_MIME,
          data: Buffer.from(out.text, 'utf8'),
        },
      ];
    case 'clipboard-result':
      return [
        {
          type: 'clipboard-result',
          requestId: out.requestId,
          status: STATUS_CODES[out.status],
          message: clip(out.message, MAX_ERROR_MESSAGE_BYTES),
        },
      ];
    case 'window-event': {
      const w = out.event.window;
      switch (out.event.kind) {
        case 'created':
          return [{ type: 'window-created', window: windowRecord(w) }];
        case 'destroyed':
          return [{ type: 'window-destroyed', id: w.id }];
        case 'moved':
          return [{ type: 'window-moved', id: w.id, x: w.x, y: w.y }];
        case 'resized':
          return [{ type: 'window-resized', id: w.id, width: w.width, height: w.height }];
        case 'focused':
          return [{ type: 'focus-changed', id: w.id }];
        case 'unfocused':
          return [{ type: 'focus-changed', id: 0 }];
        case 'title':
          return [{ type: 'title-changed', id: w.id, title: clip(w.title, MAX_TITLE_BYTES) }];
      }
    }
  }
}

function windowRecord(w: WindowInfo): WireWindow {
  return {
    id: w.id,
    x: w.x,
    y: w.y,
    width: w.width,
    height: w.height,
    // The tracker follows the WM's client list: managed, mapped, top-level windows.
    overrideRedirect: false,
    mapped: true,
    parent: 0,
    transientFor: w.transientFor,
    title: clip(w.title, MAX_TITLE_BYTES),
    wmInstance: clip(w.wmInstance, MAX_CLASS_BYTES),
    wmClass: clip(w.wmClass, MAX_CLASS_BYTES),
  };
}

/** Cuts `s` to at most `maxBytes` of UTF-8 without splitting a character. */
export function clip(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s, 'utf8') <= maxBytes) return s;
  let out = '';
  let used = 0;
  for (const ch of s) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (used + n > maxBytes) break;
    out += ch;
    used += n;
  }
  return out;
}
