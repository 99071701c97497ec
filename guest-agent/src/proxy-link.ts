import {
  AgentClient,
  encodeHello,
  encodeMessage,
  newNonce,
  prepareResume,
  ClipboardStatus,
  ErrorCode,
  EXEC_EXITED_MIN_VERSION,
  EXEC_MIN_VERSION,
  ExecEnd,
  ExecStatus,
  FILE_MIN_VERSION,
  MAX_AGENT_VERSION_BYTES,
  MAX_CLASS_BYTES,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_SNAPSHOT_WINDOWS,
  MAX_TITLE_BYTES,
  type Message,
  type WindowInfo as WireWindow,
} from '../../src/protocol/index.js';
import type {
  AgentInbound,
  AgentLink,
  AgentOutbound,
  ClipboardResultStatus,
  ExecResultStatus,
} from './agent.js';
import type { AgentPort } from './agent-port.js';
import type { WindowInfo, WindowTracker } from './window-tracker.js';

/**
 * An `AgentLink` over the window protocol (docs/protocol.md): window events
 * out, clipboard requests and commands to start (EXEC) in. Everything on the wire (codec, handshake,
 * heartbeats) is src/protocol's, shared with the proxy.
 */

export interface ProxyLinkOptions {
  host: string;
  port: number;
  vmName: string;
  /** The virtio-serial port to use instead of TCP to host:port (agent-port.ts). */
  serialPort?: AgentPort;
  /** The 32-byte HMAC key (hex-decoded agent.secret). */
  secret: Buffer;
  agentVersion: string;
  /** Connect plus handshake must finish within this, or the attempt fails. */
  handshakeTimeoutMs?: number;
  /** Abandons the attempt (the VM resumed again meanwhile): it rejects at once. */
  signal?: AbortSignal;
  log?: (line: string) => void;
}

export const TEXT_MIME = 'text/plain;charset=utf-8';
const CLOSED_BY_AGENT = 'closed by the agent';
/** A proxy that stops reading is dropped once this much output is queued (docs/protocol.md "Errors"). */
const MAX_QUEUED_BYTES = 4 * 1024 * 1024;

/**
 * Connects and authenticates with the protocol's own agent-side client
 * (src/protocol/agent-client.ts: handshake, mutual HMAC proof, heartbeats,
 * silence timeout) and adapts it to the agent's `AgentLink`.
 */
export async function connectProxyLink(opts: ProxyLinkOptions): Promise<AgentLink> {
  const port = opts.serialPort;
  const socket = port ? await port.get() : undefined;
  const opening = port && socket ? port.takeSentOpening(socket) : undefined;
  const sent =
    opening?.kind === 'hello'
      ? { helloSent: opening.nonce }
      : opening?.kind === 'resume'
        ? { resumeSent: opening.resume }
        : {};
  const where = port?.path ?? `${opts.host}:${opts.port}`;
  const agentVersion = clip(opts.agentVersion, MAX_AGENT_VERSION_BYTES);
  const client = await AgentClient.connect({
    host: opts.host,
    port: opts.port,
    ...(socket ? { open: () => socket, keepOpen: true, where, ...sent } : {}),
    vmName: opts.vmName,
    secret: opts.secret,
    agentVersion,
    timeoutMs: opts.handshakeTimeoutMs ?? 10_000,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  // The next session's HELLO, made while idle: a resume then sends it before anything else runs.
  if (port) {
    setImmediate(() => port.prepareHello(newNonce(), (n) => encodeHello(opts.vmName, agentVersion, n)));
    // And its RESUME, from each ticket the proxy sends (docs/protocol.md, "Resume"): its MACs are
    // computed here, while idle, so the way back from a resume computes none. Only a port resumes:
    // the frames it writes behind the RESUME go to the host before the proxy has proven itself.
    port.keepResume(undefined);
    client.on('ticket', (ticket) =>
      port.keepResume(prepareResume(opts.vmName, agentVersion, opts.secret, client.version, ticket)),
    );
  }
  return new ProxyLink(client, opts.log ?? (() => undefined), where);
}

/**
 * The port first, TCP when the port fails (docs/protocol.md, "Transport"): a proxy without the agent
 * socket (`--agent-socket none`, an older one) never connects the port's host side. The failed port is
 * let go, so the next attempt opens it afresh and tries it first again.
 */
export async function portThenTcp(
  viaPort: () => Promise<AgentLink>,
  viaTcp: () => Promise<AgentLink>,
  releasePort: () => void,
  signal?: AbortSignal,
): Promise<AgentLink> {
  try {
    return await viaPort();
  } catch (portError) {
    releasePort();
    // Abandoned, not failed: the caller connects afresh, over the port first again.
    if (signal?.aborted) throw portError;
    try {
      return await viaTcp();
    } catch (tcpError) {
      throw new Error(`${(portError as Error).message}; over TCP: ${(tcpError as Error).message}`, {
        cause: tcpError,
      });
    }
  }
}

class ProxyLink implements AgentLink {
  readonly closed: Promise<void>;
  private handler: (m: AgentInbound) => void = () => undefined;

  constructor(
    private readonly client: AgentClient,
    log: (line: string) => void,
    where: string,
  ) {
    this.closed = new Promise((resolve) => {
      client.once('close', (reason) => {
        // The agent says why when it closes a link itself, after a resume's new link is up.
        if (reason !== CLOSED_BY_AGENT) log(`link to ${where} ended: ${reason}`);
        resolve();
      });
      if (client.isClosed) resolve();
    });
    client.on('message', (m) => this.receive(m));
  }

  onMessage(handler: (m: AgentInbound) => void): void {
    this.handler = handler;
  }

  send(out: AgentOutbound): void {
    // A proxy of an older version knows no EXEC_EXITED: it would end the link on it.
    if (out.type === 'exec-exited' && this.client.version < EXEC_EXITED_MIN_VERSION) return;
    for (const m of toWire(out)) {
      if (this.client.isClosed) return;
      this.client.send(m);
    }
    if (this.client.socket.writableLength > MAX_QUEUED_BYTES) {
      this.client.close('the proxy is not reading (over 4 MiB queued)');
    }
  }

  close(): void {
    this.client.close(CLOSED_BY_AGENT);
  }

  fail(reason: string): void {
    this.client.fail(ErrorCode.PROTOCOL_ERROR, reason);
  }

  drained(): Promise<void> {
    const socket = this.client.socket;
    // Well under the 4 MiB at which a peer that does not read is dropped.
    if (this.client.isClosed || socket.writableLength < 1024 * 1024) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        socket.off('drain', done);
        socket.off('close', done);
        resolve();
      };
      socket.once('drain', done);
      socket.once('close', done);
    });
  }

  private receive(m: Message): void {
    switch (m.type) {
      case 'clipboard-request':
        this.handler({ type: 'clipboard-read', requestId: m.requestId });
        break;
      case 'clipboard-data':
        this.handler({ type: 'clipboard-write', requestId: m.requestId, mimeType: m.mimeType, data: m.data });
        break;
      case 'exec':
        // Only an authenticated link delivers messages at all (AgentClient emits after WELCOME).
        if (this.client.version < EXEC_MIN_VERSION) {
          this.client.fail(
            ErrorCode.PROTOCOL_ERROR,
            `exec is not part of protocol version ${this.client.version}`,
          );
          break;
        }
        this.handler({ type: 'exec', requestId: m.requestId, argv: m.argv });
        break;
      case 'file-begin':
      case 'file-data':
      case 'file-end':
      case 'file-close':
        if (this.client.version < FILE_MIN_VERSION) {
          this.client.fail(
            ErrorCode.PROTOCOL_ERROR,
            `${m.type} is not part of protocol version ${this.client.version}`,
          );
          break;
        }
        this.handler({ type: 'file', message: m });
        break;
      default:
        this.client.fail(ErrorCode.PROTOCOL_ERROR, `unexpected ${m.type} from the proxy`);
    }
  }
}

const EXEC_STATUS_CODES: Record<ExecResultStatus, number> = {
  started: ExecStatus.STARTED,
  refused: ExecStatus.REFUSED,
  failed: ExecStatus.FAILED,
};

const STATUS_CODES: Record<ClipboardResultStatus, number> = {
  ok: ClipboardStatus.OK,
  refused: ClipboardStatus.REFUSED,
  empty: ClipboardStatus.EMPTY,
  'too-large': ClipboardStatus.TOO_LARGE,
  failed: ClipboardStatus.FAILED,
};

/**
 * The window list as a resume sends it behind its RESUME (docs/protocol.md, "Resume"), encoded while the
 * agent is idle and again after every change: after a restore, encoding it would be guest code running
 * for the first time under emulation, between the VM's wake and its window list reaching the host.
 */
export function windowListFrame(
  tracker: Pick<WindowTracker, 'windows' | 'focusedWindow' | 'onWindowEvent'>,
): () => Buffer {
  const encode = (): Buffer =>
    Buffer.concat(
      toWire({ type: 'window-list', windows: tracker.windows(), focused: tracker.focusedWindow() }).map(
        encodeMessage,
      ),
    );
  let frame: Buffer | undefined = encode();
  let queued = false;
  tracker.onWindowEvent(() => {
    frame = undefined;
    if (queued) return;
    queued = true;
    // A burst of events is encoded once, after it.
    setImmediate(() => {
      queued = false;
      frame = encode();
    });
  });
  return () => (frame ??= encode());
}

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
    case 'exec-result':
      return [
        {
          type: 'exec-result',
          requestId: out.requestId,
          status: EXEC_STATUS_CODES[out.status],
          pid: out.pid,
          message: clip(out.message, MAX_ERROR_MESSAGE_BYTES),
        },
      ];
    case 'file':
      return [
        out.message.type === 'file-result'
          ? { ...out.message, message: clip(out.message.message, MAX_ERROR_MESSAGE_BYTES) }
          : out.message,
      ];
    case 'exec-exited':
      return [
        {
          type: 'exec-exited',
          requestId: out.requestId,
          how: out.end.how === 'exited' ? ExecEnd.EXITED : ExecEnd.SIGNALLED,
          code: Math.min(
            255,
            Math.max(
              out.end.how === 'exited' ? 0 : 1,
              out.end.how === 'exited' ? out.end.code : out.end.signal,
            ),
          ),
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
