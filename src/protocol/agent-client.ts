import { EventEmitter } from 'node:events';
import net from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { computeAuthMac, takeNonce, verifyAuthMac, type AuthContext } from './auth.js';
import { encodeMessage, ProtocolError, type DecodeResult } from './codec.js';
import { FrameDecoder } from './frame-decoder.js';
import { heartbeatSchedule } from './heartbeat.js';
import {
  ErrorCode,
  MAC_BYTES,
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  RESUME_MIN_VERSION,
  type Message,
} from './messages.js';

/**
 * The agent's side of a connection: connect, handshake (verifying the proxy
 * too), then exchange messages with heartbeats and a silence timeout. Used by
 * the guest agent and by tests and benchmarks that play agents.
 */

export interface AgentClientOptions {
  host: string;
  port: number;
  /**
   * A link that is already open instead of a TCP connection to host:port (the
   * guest's virtio-serial port, docs/protocol.md "Transport"): HELLO goes out at
   * once. Given a socket, `host` and `port` only name it in messages.
   */
  open?: () => net.Socket;
  /**
   * With `open`: closing the client leaves the link open for the next client (the port stays open
   * across handshakes, see docs/protocol.md "Transport"). A failed handshake still destroys it.
   */
  keepOpen?: boolean;
  /**
   * With `open`: the nonce of a HELLO already written on the link (encodeHello), sent ahead by the agent
   * the moment it learned its VM resumed; the handshake goes on from there.
   */
  helloSent?: Buffer;
  /**
   * With `open`: a RESUME already written on the link (prepareResume), the agent's window list behind it.
   * The proxy answers WELCOME when it takes the ticket, else CHALLENGE, and the handshake goes on as after
   * a HELLO (docs/protocol.md, "Resume").
   */
  resumeSent?: PreparedResume;
  /** How the link is named in messages (default host:port). */
  where?: string;
  vmName: string;
  /** The 32-byte agent secret (see parseAgentSecret). */
  secret: Buffer;
  agentVersion?: string;
  /** Deadline for connect + handshake. Default 10 s. */
  timeoutMs?: number;
  /** Send HEARTBEAT and enforce the silence timeout (3 intervals). Default true. */
  heartbeats?: boolean;
  /** Abandons the handshake: it rejects at once, as on a failure (the link is destroyed). */
  signal?: AbortSignal;
}

/** An agent's HELLO (docs/protocol.md, "Handshake"). */
export function encodeHello(vmName: string, agentVersion: string, agentNonce: Buffer): Buffer {
  return encodeMessage({
    type: 'hello',
    minVersion: MIN_PROTOCOL_VERSION,
    maxVersion: PROTOCOL_VERSION,
    vmName,
    agentVersion,
    agentNonce,
  });
}

/**
 * A RESUME made ahead from the proxy's latest ticket (docs/protocol.md, "Resume"), with everything the
 * handshake needs after it: made while the agent is idle, so that a resume computes nothing.
 */
export interface PreparedResume {
  /** The RESUME frame. */
  frame: Buffer;
  agentNonce: Buffer;
  /** The version of the session that received the ticket: the resumed session speaks it. */
  version: number;
  /** The proxy's MAC a WELCOME must carry for this RESUME. */
  expectedWelcome: Buffer;
}

/** The RESUME for `ticket`, received on a session of `version`, with a fresh nonce. */
export function prepareResume(
  vmName: string,
  agentVersion: string,
  secret: Buffer,
  version: number,
  ticket: Buffer,
  agentNonce: Buffer = takeNonce(),
): PreparedResume {
  const ctx: AuthContext = { vmName, version, agentNonce, proxyNonce: ticket };
  const frame = encodeMessage({
    type: 'resume',
    minVersion: MIN_PROTOCOL_VERSION,
    maxVersion: PROTOCOL_VERSION,
    vmName,
    agentVersion,
    agentNonce,
    mac: computeAuthMac(secret, 'agent-resume', ctx),
  });
  return { frame, agentNonce, version, expectedWelcome: computeAuthMac(secret, 'proxy-resume', ctx) };
}

/** What a proxy's previous session on an opened link can have left unread: heartbeats, a request or two. */
const MAX_SKIPPED_BEFORE_CHALLENGE = 64;

export interface AgentClientEvents {
  message: [Message];
  /** A TICKET: the proxy's nonce for the next session's RESUME (version 4 on). */
  ticket: [Buffer];
  close: [string];
}

export class AgentClient extends EventEmitter<AgentClientEvents> {
  private closed = false;
  private lastHeard = Date.now();
  private lastSent = Date.now();
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    readonly socket: net.Socket,
    private readonly decoder: FrameDecoder,
    readonly version: number,
    readonly heartbeatIntervalMs: number,
    heartbeats: boolean,
    private readonly ending: 'half-close' | 'destroy' | 'detach' = 'half-close',
  ) {
    super();
    socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
    if (heartbeats) {
      const { tickMs, sendAfterMs } = heartbeatSchedule(heartbeatIntervalMs);
      this.timer = setInterval(() => {
        if (Date.now() - this.lastHeard > 3 * heartbeatIntervalMs) {
          return this.fail(ErrorCode.HEARTBEAT_TIMEOUT, 'proxy silent for 3 heartbeat intervals');
        }
        if (Date.now() - this.lastSent < sendAfterMs) return;
        this.send({ type: 'heartbeat', seq: this.seq });
        this.seq = (this.seq + 1) >>> 0;
      }, tickMs);
    }
  }

  private readonly onData = (chunk: Buffer): void => {
    this.lastHeard = Date.now();
    this.handle(this.decoder.push(chunk));
  };
  private readonly onError = (err: Error): void => this.close(`socket error: ${err.message}`);
  private readonly onClose = (): void => this.close('connection closed');

  /** Connects and authenticates; rejects with the proxy's reason when it refuses. */
  static connect(options: AgentClientOptions): Promise<AgentClient> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    const where = options.where ?? `${options.host}:${options.port}`;
    return new Promise((resolve, reject) => {
      let socket: net.Socket;
      try {
        socket = options.open ? options.open() : net.connect({ host: options.host, port: options.port });
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      if (!options.open) socket.setNoDelay(true);
      const decoder = new FrameDecoder();
      const resumed = options.open ? options.resumeSent : undefined;
      const agentNonce = resumed?.agentNonce ?? ((options.open && options.helloSent) || takeNonce());
      let ctx: AuthContext | undefined;
      let done = false;
      let skipped = 0;
      const finish = (err: Error | undefined, client?: AgentClient): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', abandon);
        socket.removeListener('data', onData);
        socket.removeListener('error', onError);
        socket.removeListener('close', onClose);
        if (err) {
          socket.destroy();
          reject(err);
        } else resolve(client!);
      };
      const timer = setTimeout(
        () => finish(new Error(`handshake with ${where} timed out after ${timeoutMs} ms`)),
        timeoutMs,
      );
      const onData = (chunk: Buffer): void => {
        const results = decoder.push(chunk);
        for (const [i, r] of results.entries()) {
          if (done) return;
          if (!r.ok) return finish(r.error);
          const m = r.message;
          if (m.type === 'error') return finish(new ProtocolError(`proxy refused: ${m.message}`, m.code));
          // An opened link (a virtio-serial port) may hold what the proxy sent its previous session
          // before the agent let go of the port: a heartbeat, a request. Whole frames, a few, skipped.
          if (
            !ctx &&
            m.type !== 'challenge' &&
            !(resumed && m.type === 'welcome') &&
            options.open &&
            skipped < MAX_SKIPPED_BEFORE_CHALLENGE
          ) {
            skipped++;
            continue;
          }
          if (!ctx && m.type === 'challenge') {
            if (m.version < MIN_PROTOCOL_VERSION || m.version > PROTOCOL_VERSION) {
              return finish(
                new ProtocolError(
                  `proxy chose unsupported version ${m.version}`,
                  ErrorCode.UNSUPPORTED_VERSION,
                ),
              );
            }
            ctx = { vmName: options.vmName, version: m.version, agentNonce, proxyNonce: m.proxyNonce };
            socket.write(encodeMessage({ type: 'auth', mac: computeAuthMac(options.secret, 'agent', ctx) }));
          } else if (m.type === 'welcome' && (ctx || resumed)) {
            // After a RESUME the proxy's proof was computed with it, so checking it computes nothing.
            const proven = ctx
              ? verifyAuthMac(options.secret, 'proxy', ctx, m.mac)
              : m.mac.length === MAC_BYTES && timingSafeEqual(m.mac, resumed!.expectedWelcome);
            if (!proven) {
              socket.write(
                encodeMessage({
                  type: 'error',
                  code: ErrorCode.AUTH_FAILED,
                  message: 'proxy failed to authenticate',
                }),
              );
              return finish(
                new ProtocolError('the proxy did not prove it knows the secret', ErrorCode.AUTH_FAILED),
              );
            }
            const client = new AgentClient(
              socket,
              decoder,
              ctx ? ctx.version : resumed!.version,
              m.heartbeatIntervalMs,
              options.heartbeats ?? true,
              !options.open ? 'half-close' : options.keepOpen ? 'detach' : 'destroy',
            );
            finish(undefined, client);
            // Deliver after the caller has had a chance to attach listeners.
            const rest = results.slice(i + 1);
            if (rest.length > 0) setImmediate(() => client.handle(rest));
            return;
          } else {
            return finish(new ProtocolError(`unexpected ${m.type} during the handshake`));
          }
        }
      };
      const onError = (err: Error): void => finish(err);
      const onClose = (): void => finish(new Error('connection closed during the handshake'));
      const abandon = (): void => finish(new Error(`handshake with ${where} abandoned`));
      socket.on('data', onData);
      socket.on('error', onError);
      socket.on('close', onClose);
      if (options.signal?.aborted) return abandon();
      options.signal?.addEventListener('abort', abandon, { once: true });
      const hello = (): void => {
        socket.write(encodeHello(options.vmName, options.agentVersion ?? '', agentNonce));
      };
      if (options.open) {
        if (!options.helloSent && !resumed) hello();
        // A link handed over from an earlier session was paused between the two (see close).
        socket.resume();
      } else socket.once('connect', hello);
    });
  }

  /** Emits decoded messages; the handshake hands over whatever arrived in the same chunk as WELCOME. */
  handle(results: DecodeResult[]): void {
    for (const r of results) {
      if (this.closed) return;
      if (!r.ok) return this.fail(r.error.code, `malformed frame from the proxy: ${r.error.message}`);
      if (r.message.type === 'error')
        return this.close(`proxy error ${r.message.code}: ${r.message.message}`);
      if (r.message.type === 'ticket') {
        if (this.version >= RESUME_MIN_VERSION) this.emit('ticket', r.message.ticket);
      } else if (r.message.type !== 'heartbeat') this.emit('message', r.message);
    }
  }

  /** Queues one message; returns false when the socket's buffer is full (wait for 'drain'). */
  send(message: Message): boolean {
    if (this.closed) return false;
    this.lastSent = Date.now();
    return this.socket.write(encodeMessage(message));
  }

  fail(code: number, reason: string): void {
    if (this.closed) return;
    this.socket.write(encodeMessage({ type: 'error', code, message: reason }));
    this.close(reason);
  }

  close(reason = 'closed by the agent'): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    if (this.ending === 'half-close') {
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 200).unref();
    } else if (this.ending === 'destroy' || this.socket.destroyed) {
      // A virtio-serial port has no half-close, and the next link can open it only once this one let go.
      this.socket.destroy();
    } else {
      // The next handshake runs on the same open port. Paused, so nothing it reads in between is lost.
      this.socket.pause();
      this.socket.off('data', this.onData);
      this.socket.off('error', this.onError);
      this.socket.off('close', this.onClose);
    }
    this.emit('close', reason);
  }

  get isClosed(): boolean {
    return this.closed;
  }
}
