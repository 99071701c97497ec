import { EventEmitter } from 'node:events';
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import {
  BadMagicError,
  ClipboardStatus,
  computeAuthMac,
  encodeMessage,
  ErrorCode,
  EXEC_EXITED_MIN_VERSION,
  EXEC_MIN_VERSION,
  ExecEnd,
  execArgvProblem,
  ExecStatus,
  FILE_MIN_VERSION,
  FileKind,
  FileStatus,
  FrameDecoder,
  heartbeatSchedule,
  isWindowEvent,
  MAX_CLIPBOARD_BYTES,
  MAX_FILE_CHUNK_BYTES,
  MIN_PROTOCOL_VERSION,
  newNonce,
  PROTOCOL_VERSION,
  RESUME_MIN_VERSION,
  verifyAuthMac,
  type AuthContext,
  type DecodeResult,
  type HelloMessage,
  type Message,
  type ResumeMessage,
  type WindowEventMessage,
} from '../protocol/index.js';
import { replaceHostFile, type HostFile } from './host-file.js';
import { MAX_WINDOWS_PER_VM, WindowTable, type VmStatusView } from './window-table.js';
import type { ListenAddress } from './listen-addresses.js';
import { formatAddress } from './listen-addresses.js';
import { listenAgentSocket, type AgentSocketListener } from './agent-socket.js';

/**
 * The host proxy's agent-facing side: accepts guest agents on TCP, runs the
 * handshake, keeps the window table and carries clipboard requests. One bad
 * connection is closed and logged; nothing it does reaches the others.
 */

export interface ProxyServerOptions {
  /** Where to listen for agents (port 0 picks a free port). */
  listen: ListenAddress[];
  /**
   * A Unix socket for agents on the virtio-serial link (docs/protocol.md, "Transport"):
   * QEMU connects here for each VM's `org.vm-provisioner.agent.0` port. Made by
   * src/proxy/agent-socket.ts; absent: TCP only.
   */
  agentSocket?: string;
  /** The VM's 32-byte agent secret, or null when there is none. */
  lookupSecret(vmName: string): Promise<Buffer | null>;
  /** Whether clipboard transfers are allowed for this VM; refused for all VMs when absent. */
  clipboardAllowed?(vmName: string): Promise<boolean>;
  heartbeatIntervalMs?: number;
  /** Silence longer than this closes a connection; default 3 heartbeat intervals. */
  heartbeatTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  /** How long an EXEC may wait for the agent's EXEC_RESULT. Default 10 s. */
  execTimeoutMs?: number;
  /** How long after FILE_END the agent has to answer FILE_RESULT. Default 30 s. */
  fileTimeoutMs?: number;
  /** Deadline for lookupSecret and clipboardAllowed. */
  lookupTimeoutMs?: number;
  clipboardTimeoutMs?: number;
  /** One line per notable event (connections, failures). Default: stderr. */
  log?: (line: string) => void;
}

export const DEFAULT_HEARTBEAT_INTERVAL_MS = 10_000;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
export const DEFAULT_LOOKUP_TIMEOUT_MS = 10_000;
export const DEFAULT_CLIPBOARD_TIMEOUT_MS = 5_000;
export const DEFAULT_EXEC_TIMEOUT_MS = 10_000;
export const DEFAULT_FILE_TIMEOUT_MS = 30_000;
/** Output queued to an agent past which a file transfer waits for the socket to drain. */
const FILE_SEND_HIGH_WATER = 1024 * 1024;
/** Closed writeback transfers whose late messages (already on the wire) are dropped rather than fatal. */
const CLOSED_WRITEBACKS_KEPT = 64;
/** A peer that does not read: close rather than buffer without bound. */
export const MAX_OUTGOING_BUFFER = 4 * 1024 * 1024;
export const AGENT_VERSION_UNKNOWN = '';
/** What a restored guest can have left in its port from before the save: a heartbeat or two. */
const MAX_SKIPPED_BEFORE_HELLO = 8;
/** Frames an agent may have written behind a RESUME the proxy did not take: its window list, a few events. */
const MAX_SKIPPED_AFTER_RESUME = 8;
/** Snapshots whose tickets the proxy keeps per VM (pinTicket). */
export const MAX_PINS_PER_VM = 64;
/** One per VM whose agent has not spoken yet: far more than a host runs. */
const MAX_SILENT_LINKS = 1024;

/** What `follow` clients and in-process listeners see. */
export type ProxyEvent = { time: string; vm: string } & (
  | WindowEventMessage
  | { type: 'agent-connected'; peer: string }
  | { type: 'agent-disconnected'; reason: string }
  /** A command started through `exec` ended (EXEC_EXITED); execId is what `exec` resolved with. */
  | { type: 'exec-exited'; execId: number; how: 'exited' | 'signalled'; code: number }
  /** The VM was forgotten (`forget`): its windows are gone from the table. */
  | { type: 'vm-forgotten' }
);

export interface ClipboardContent {
  mimeType: string;
  data: Buffer;
}

/** Why a proxy-side operation for a VM failed; `code` matches the control socket's error codes. */
export class ProxyRequestError extends Error {
  constructor(
    readonly code: 'not_found' | 'not_connected' | 'refused' | 'timeout' | 'failed' | 'bad_request',
    message: string,
  ) {
    super(message);
    this.name = 'ProxyRequestError';
  }
}

/** A command the agent started (EXEC_RESULT STARTED). */
export interface ExecStarted {
  pid: number;
  /** The EXEC's request id: an `exec-exited` event with this execId says the command ended. */
  execId: number;
}

/** A file the agent stored (FILE_RESULT OK). */
export interface FileStored {
  /** Where it is in the guest. */
  path: string;
  /** The opener's pid in the guest (`open`); 0 for a copy. */
  pid: number;
}

/** What happens to an `open --writeback` session; `refused` and `ended` are its last event. */
export type WritebackEvent =
  | { type: 'written'; bytes: number }
  | { type: 'refused'; message: string }
  | { type: 'ended'; reason: string };

export interface FileSession extends FileStored {
  /** Stops the writeback (FILE_CLOSE); a no-op for copies and read-only opens. */
  close(): void;
}

interface WritebackSink {
  onVersion(data: Buffer): void;
  onEnd(reason: string): void;
  receiving?: { size: number; received: number; chunks: Buffer[] };
}

type ConnState = 'hello' | 'looking-up' | 'challenged' | 'ready' | 'closed';

interface PendingClipboard {
  kind: 'copy' | 'paste';
  resolve(value: ClipboardContent | undefined): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

class AgentConnection {
  state: ConnState = 'hello';
  vmName: string | undefined;
  readonly peer: string;
  private hello: HelloMessage | undefined;
  private version = PROTOCOL_VERSION;
  private proxyNonce: Buffer | undefined;
  private secret: Buffer | undefined;
  /** The secret came from the keyring (not from memory): remembered once it has been proven. */
  private fromKeyring = false;
  /** The keyring's answer, read in parallel when the secret came from memory. */
  private confirming: Promise<Buffer | null | Error> | undefined;
  /** The secret this connection authenticated with, to compare with the keyring's later answer. */
  private secretUsed: Buffer | undefined;
  private lastHeard = Date.now();
  private lastSent = Date.now();
  private heartbeatSeq = 0;
  /** When the handshake succeeded (ms since the epoch); 0 before. */
  authenticatedAt = 0;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  readonly pending = new Map<number, PendingClipboard>();
  readonly pendingExec = new Map<
    number,
    { resolve(v: ExecStarted): void; reject(err: Error): void; timer: NodeJS.Timeout }
  >();

  readonly pendingFile = new Map<
    number,
    {
      writeback?: WritebackSink;
      resolve(v: FileStored): void;
      reject(err: Error): void;
      timer?: NodeJS.Timeout;
    }
  >();
  /** Transfers opened with writeback whose FILE_RESULT was OK: the only ids WRITEBACK_* may name. */
  private readonly writebacks = new Map<number, WritebackSink>();
  private readonly closedWritebacks: number[] = [];
  /** File transfers go one at a time on a link: the agent holds each in memory until FILE_END. */
  private fileQueue: Promise<unknown> = Promise.resolve();

  /** Frames skipped before HELLO on a spliced link (see onMessage). */
  private skipped = 0;
  /**
   * After a RESUME the proxy could not take: how many more frames (the window list the agent sent behind
   * it) are skipped before its AUTH (docs/protocol.md, "Resume").
   */
  private skipBeforeAuth = 0;
  /** The session came back on a ticket (RESUME), not through a challenge. */
  private resumed = false;

  get resumedOnTicket(): boolean {
    return this.resumed;
  }

  constructor(
    private readonly server: ProxyServer,
    readonly socket: net.Socket,
    /**
     * A virtio-serial link: QEMU's end of the guest's port, connected before the agent speaks. A guest
     * restored from saved state may still send what its agent wrote on the link from before the save
     * (a heartbeat) ahead of the new HELLO.
     */
    private readonly spliced = false,
    /** A restarted handshake's (see restartOnLink): the frames already read, and what is left of one. */
    private readonly decoder: FrameDecoder = new FrameDecoder(),
  ) {
    this.peer = spliced ? 'virtio-serial' : `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    if (!spliced) socket.setNoDelay(true);
    // QEMU connects a VM's port as the VM starts; its agent speaks once the guest's session is up, tens of
    // seconds later, or never (a clone source waiting for its identity). The clock starts with its first byte.
    if (!spliced) this.startHandshakeClock();
    socket.on('data', this.onSocketData);
    socket.on('end', this.onSocketEnd);
    socket.on('error', this.onSocketError);
    socket.on('close', this.onSocketClose);
  }

  private readonly onSocketData = (chunk: Buffer): void => this.onData(chunk);
  private readonly onSocketEnd = (): void => {
    for (const r of this.decoder.end()) if (!r.ok) this.close(`ended mid-frame: ${r.error.message}`);
    this.close('agent closed the connection');
  };
  private readonly onSocketError = (err: Error): void => this.close(`socket error: ${err.message}`);
  private readonly onSocketClose = (): void => this.close('connection closed');

  /** The protocol version this connection speaks (chosen at CHALLENGE). */
  get protocolVersion(): number {
    return this.version;
  }

  /** A virtio-serial link whose agent has not said anything yet. */
  silent(): boolean {
    return this.spliced && this.state === 'hello' && this.handshakeTimer === undefined;
  }

  /** A method, not a field read, so TypeScript does not narrow across calls that may close. */
  isClosed(): boolean {
    return this.state === 'closed';
  }

  private label(): string {
    return this.vmName ? `agent ${this.vmName} (${this.peer})` : `agent ${this.peer}`;
  }

  private startHandshakeClock(): void {
    this.handshakeTimer = setTimeout(
      () => this.fail(ErrorCode.PROTOCOL_ERROR, 'handshake not completed in time'),
      this.server.handshakeTimeoutMs,
    );
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    if (this.state === 'hello' && !this.handshakeTimer) this.startHandshakeClock();
    this.lastHeard = Date.now();
    this.onResults(this.decoder.push(chunk));
  }

  /** Decoded frames, in order; a restarted handshake hands the rest of them to its new connection. */
  onResults(results: DecodeResult[]): void {
    for (const [i, result] of results.entries()) {
      if (this.isClosed()) return;
      if (!result.ok) {
        if (result.error instanceof BadMagicError) this.close(result.error.message);
        else this.fail(result.error.code, `malformed frame: ${result.error.message}`);
        return;
      }
      const type = result.message.type;
      if (this.spliced && this.state !== 'hello' && (type === 'hello' || type === 'resume')) {
        return this.restartOnLink(results.slice(i));
      }
      this.onMessage(result.message);
    }
  }

  /**
   * HELLO on a virtio-serial link that already had one (docs/protocol.md, "Transport"): the agent was
   * told its VM resumed and cannot tell a pause or a snapshot revert (the same QEMU, so the same
   * connection here) from a restore (a new one). The old session ends as if its connection had
   * closed, and a new one starts on the same link with this HELLO, as on a new connection.
   */
  private restartOnLink(rest: DecodeResult[]): void {
    this.finish('the agent started a new handshake on its link (its VM resumed)', false);
    for (const [event, handler] of [
      ['data', this.onSocketData],
      ['end', this.onSocketEnd],
      ['error', this.onSocketError],
      ['close', this.onSocketClose],
    ] as const) {
      this.socket.off(event, handler);
    }
    this.server.acceptOnLink(this.socket, this.decoder).onResults(rest);
  }

  private onMessage(message: Message): void {
    // Behind a RESUME the proxy did not take: the agent's window list, skipped until its AUTH.
    const awaitingAuth = this.state === 'looking-up' || this.state === 'challenged';
    if (awaitingAuth && message.type !== 'auth' && this.skipBeforeAuth > 0) {
      this.skipBeforeAuth--;
      return;
    }
    switch (this.state) {
      case 'hello':
        // Whole frames only, a few: anything malformed still ends the link (QEMU connects again).
        if (
          message.type !== 'hello' &&
          message.type !== 'resume' &&
          this.spliced &&
          this.skipped < MAX_SKIPPED_BEFORE_HELLO
        ) {
          this.skipped++;
          return;
        }
        if (message.type === 'resume') return this.onResume(message);
        if (message.type !== 'hello')
          return this.fail(ErrorCode.PROTOCOL_ERROR, `expected hello, got ${message.type}`);
        void this.onHello(message);
        return;
      case 'looking-up':
        return this.fail(ErrorCode.PROTOCOL_ERROR, `${message.type} sent before the challenge`);
      case 'challenged':
        if (message.type !== 'auth')
          return this.fail(ErrorCode.PROTOCOL_ERROR, `expected auth, got ${message.type}`);
        return this.onAuth(message.mac);
      case 'ready':
        return this.onReadyMessage(message);
      case 'closed':
        return;
    }
  }

  /**
   * RESUME (docs/protocol.md, "Resume"): the agent proves the secret against the ticket this proxy gave
   * its VM's last session, so the session is up without a challenge, and the window list that follows
   * in the same write is taken at once. A ticket is used once, whatever the outcome. Without a ticket
   * (another proxy process issued it, or it was used), without the secret in memory, or with a MAC that
   * does not verify, the RESUME counts as the HELLO it contains: the agent is challenged, and the frames it
   * sent behind the RESUME are skipped until its AUTH.
   */
  private onResume(resume: ResumeMessage): void {
    const { mac, ...fields } = resume;
    const hello: HelloMessage = { ...fields, type: 'hello' };
    const ticket = this.server.takeTicket(resume.vmName);
    const secret = this.server.rememberedSecret(resume.vmName);
    let refused: string | undefined;
    if (!ticket) refused = 'no ticket for this VM';
    else if (!secret) refused = 'its secret is not in memory';
    else if (ticket.version < resume.minVersion || ticket.version > resume.maxVersion)
      refused = `the ticket's version ${ticket.version} is not in ${resume.minVersion}-${resume.maxVersion}`;
    else {
      const ctx: AuthContext = {
        vmName: resume.vmName,
        version: ticket.version,
        agentNonce: resume.agentNonce,
        proxyNonce: ticket.ticket,
      };
      if (!verifyAuthMac(secret, 'agent-resume', ctx, mac)) refused = 'its MAC does not verify';
      else {
        this.hello = hello;
        this.vmName = resume.vmName;
        this.version = ticket.version;
        this.secret = secret;
        this.proxyNonce = ticket.ticket;
        this.resumed = true;
        // As for a remembered secret after a HELLO: the keyring is read all the same, and the session
        // closed if it no longer holds that secret.
        const confirming = this.readKeyringAgain(resume.vmName);
        this.welcome(ctx, 'proxy-resume');
        this.confirmRemembered(confirming);
        return;
      }
    }
    this.vmName = resume.vmName;
    this.server.log(`${this.label()}: resume not taken (${refused}); challenging it as after a HELLO`);
    this.skipBeforeAuth = MAX_SKIPPED_AFTER_RESUME;
    void this.onHello(hello);
  }

  private async onHello(hello: HelloMessage): Promise<void> {
    this.state = 'looking-up';
    this.hello = hello;
    this.vmName = hello.vmName;
    const top = Math.min(PROTOCOL_VERSION, hello.maxVersion);
    if (top < Math.max(MIN_PROTOCOL_VERSION, hello.minVersion)) {
      return this.fail(
        ErrorCode.UNSUPPORTED_VERSION,
        `agent speaks versions ${hello.minVersion}-${hello.maxVersion}; this proxy speaks ${MIN_PROTOCOL_VERSION}-${PROTOCOL_VERSION}`,
      );
    }
    this.version = top;
    // A VM whose agent proved its secret before is challenged at once with the remembered secret, so a
    // resumed VM's reconnect does not wait for the keyring (a process and a D-Bus round trip, 0.2-0.5 s).
    // The keyring is read all the same, and the connection closed if it no longer holds that secret.
    const remembered = this.server.rememberedSecret(hello.vmName);
    if (remembered) {
      this.secret = remembered;
      this.confirming = this.readKeyringAgain(hello.vmName);
      this.challenge();
      return;
    }
    let secret: Buffer | null;
    try {
      secret = await this.server.withLookupTimeout(this.server.lookupSecret(hello.vmName), 'secret lookup');
    } catch (err) {
      return this.fail(ErrorCode.INTERNAL, `cannot look up the agent secret: ${(err as Error).message}`);
    }
    if ((this.state as ConnState) !== 'looking-up') return;
    // Unknown VM: go through the motions with a random key so the reply does not reveal it.
    this.secret = secret ?? randomBytes(32);
    this.fromKeyring = secret !== null;
    if (!secret) this.server.log(`${this.label()}: no agent secret for this VM; the handshake will fail`);
    this.challenge();
  }

  private challenge(): void {
    this.proxyNonce = newNonce();
    this.state = 'challenged';
    this.send({ type: 'challenge', version: this.version, proxyNonce: this.proxyNonce });
  }

  private onAuth(mac: Buffer): void {
    const ctx = {
      vmName: this.hello!.vmName,
      version: this.version,
      agentNonce: this.hello!.agentNonce,
      proxyNonce: this.proxyNonce!,
    };
    const confirming = this.confirming;
    if (!verifyAuthMac(this.secret!, 'agent', ctx, mac)) {
      if (!confirming) return this.fail(ErrorCode.AUTH_FAILED, 'authentication failed');
      // The remembered secret is stale (the VM was made again under its name?): ask the keyring.
      this.state = 'looking-up';
      this.confirming = undefined;
      this.server.forgetSecret(ctx.vmName);
      void confirming.then((fresh) => {
        if (this.isClosed()) return;
        if (!(fresh instanceof Buffer) || !verifyAuthMac(fresh, 'agent', ctx, mac)) {
          return this.fail(ErrorCode.AUTH_FAILED, 'authentication failed');
        }
        this.secret = fresh;
        this.fromKeyring = true;
        this.welcome(ctx);
      });
      return;
    }
    this.welcome(ctx);
    if (confirming) {
      this.confirming = undefined;
      this.confirmRemembered(confirming);
    }
  }

  /** The keyring's answer for a VM whose secret came from memory, read in parallel; an error as a value. */
  private readKeyringAgain(vmName: string): Promise<Buffer | null | Error> {
    return this.server.withLookupTimeout(this.server.lookupSecret(vmName), 'secret lookup').then(
      (fresh) => fresh,
      (err: unknown) => err as Error,
    );
  }

  /** A session admitted on a secret from memory ends if the keyring, read meanwhile, no longer holds it. */
  private confirmRemembered(confirming: Promise<Buffer | null | Error>): void {
    const used = this.secretUsed!;
    void confirming.then((fresh) => {
      if (this.isClosed()) return;
      if (fresh instanceof Error) {
        this.server.log(`${this.label()}: could not read the keyring again (${fresh.message}); kept`);
      } else if (fresh === null || !fresh.equals(used)) {
        this.server.forgetSecret(this.hello!.vmName);
        this.fail(ErrorCode.AUTH_FAILED, 'the agent secret in the keyring changed');
      }
    });
  }

  private welcome(ctx: AuthContext, role: 'proxy' | 'proxy-resume' = 'proxy'): void {
    clearTimeout(this.handshakeTimer);
    this.handshakeTimer = undefined;
    this.state = 'ready';
    this.authenticatedAt = Date.now();
    this.send({
      type: 'welcome',
      mac: computeAuthMac(this.secret!, role, ctx),
      heartbeatIntervalMs: this.server.heartbeatIntervalMs,
    });
    // The next session's ticket (docs/protocol.md, "Resume"): this one's replaces any earlier one.
    if (this.version >= RESUME_MIN_VERSION) {
      this.send({ type: 'ticket', ticket: this.server.issueTicket(ctx.vmName, this.version) });
    }
    if (this.fromKeyring) this.server.rememberSecret(ctx.vmName, this.secret!);
    this.secretUsed = this.secret;
    this.secret = undefined;
    this.lastHeard = Date.now();
    this.heartbeatTimer = setInterval(() => this.onHeartbeatTick(), this.server.heartbeatTickMs);
    this.server.adopt(this);
  }

  private onHeartbeatTick(): void {
    if (Date.now() - this.lastHeard > this.server.heartbeatTimeoutMs) {
      this.fail(ErrorCode.HEARTBEAT_TIMEOUT, `silent for over ${this.server.heartbeatTimeoutMs} ms`);
      return;
    }
    if (Date.now() - this.lastSent >= this.server.heartbeatSendAfterMs) {
      this.send({ type: 'heartbeat', seq: this.heartbeatSeq });
      this.heartbeatSeq = (this.heartbeatSeq + 1) >>> 0;
    }
  }

  private onReadyMessage(message: Message): void {
    if (isWindowEvent(message)) {
      this.server.onWindowEvent(this, message);
      return;
    }
    switch (message.type) {
      case 'heartbeat':
        return;
      case 'error':
        this.close(`agent reported error ${message.code}: ${message.message}`);
        return;
      case 'clipboard-data': {
        const waiter = this.pending.get(message.requestId);
        if (!waiter || waiter.kind !== 'copy') return; // late or unsolicited: dropped
        this.settle(message.requestId);
        waiter.resolve({ mimeType: message.mimeType, data: message.data });
        return;
      }
      case 'clipboard-result': {
        const waiter = this.pending.get(message.requestId);
        if (!waiter) return;
        this.settle(message.requestId);
        if (message.status === ClipboardStatus.OK && waiter.kind === 'paste') {
          waiter.resolve(undefined);
        } else {
          const code = message.status === ClipboardStatus.REFUSED ? 'refused' : 'failed';
          const detail = message.message ? `: ${message.message}` : '';
          waiter.reject(
            new ProxyRequestError(
              code,
              `the agent in ${this.vmName} answered ${clipboardStatusName(message.status)}${detail}`,
            ),
          );
        }
        return;
      }
      case 'exec-result': {
        // Only an answer to a request of ours, on a link where EXEC exists, is an EXEC_RESULT.
        if (this.version < EXEC_MIN_VERSION) {
          this.fail(ErrorCode.PROTOCOL_ERROR, `exec-result is not part of protocol version ${this.version}`);
          return;
        }
        const waiter = this.pendingExec.get(message.requestId);
        if (!waiter) return; // late (we gave up) or unsolicited: dropped
        clearTimeout(waiter.timer);
        this.pendingExec.delete(message.requestId);
        if (message.status === ExecStatus.STARTED) {
          waiter.resolve({ pid: message.pid, execId: message.requestId });
        } else {
          const code = message.status === ExecStatus.REFUSED ? 'refused' : 'failed';
          const detail = message.message ? `: ${message.message}` : '';
          waiter.reject(
            new ProxyRequestError(
              code,
              `the agent in ${this.vmName} answered ${execStatusName(message.status)}${detail}`,
            ),
          );
        }
        return;
      }
      case 'file-result':
      case 'writeback-begin':
      case 'writeback-data':
      case 'writeback-end':
        if (this.version < FILE_MIN_VERSION) {
          this.fail(
            ErrorCode.PROTOCOL_ERROR,
            `${message.type} is not part of protocol version ${this.version}`,
          );
          return;
        }
        if (message.type === 'file-result') return this.onFileResult(message);
        return this.onWriteback(message);
      case 'exec-exited':
        if (this.version < EXEC_EXITED_MIN_VERSION) {
          this.fail(ErrorCode.PROTOCOL_ERROR, `exec-exited is not part of protocol version ${this.version}`);
          return;
        }
        // Not matched against pending requests: the command may outlive the link that started it.
        this.server.onExecExited(this, message.requestId, message.how, message.code);
        return;
      default:
        this.fail(ErrorCode.PROTOCOL_ERROR, `${message.type} is not something an agent may send`);
    }
  }

  private onFileResult(message: Extract<Message, { type: 'file-result' }>): void {
    const waiter = this.pendingFile.get(message.transferId);
    if (!waiter) return; // late (we gave up) or unsolicited: dropped
    clearTimeout(waiter.timer);
    this.pendingFile.delete(message.transferId);
    if (message.status === FileStatus.OK) {
      if (waiter.writeback) this.writebacks.set(message.transferId, waiter.writeback);
      waiter.resolve({ path: message.path, pid: message.pid });
      return;
    }
    const names: Record<number, string> = { 1: 'REFUSED', 2: 'FAILED' };
    const detail = message.message ? `: ${message.message}` : '';
    waiter.reject(
      new ProxyRequestError(
        message.status === FileStatus.REFUSED ? 'refused' : 'failed',
        `the agent in ${this.vmName} answered ${names[message.status] ?? `status ${message.status}`}${detail}`,
      ),
    );
  }

  /**
   * What a guest sends back is untrusted: only for a transfer this proxy opened
   * with writeback, one version at a time, never more bytes than announced
   * (itself at most the file size limit), and matching its SHA-256.
   */
  private onWriteback(
    message: Extract<Message, { type: 'writeback-begin' | 'writeback-data' | 'writeback-end' }>,
  ): void {
    const id = message.transferId;
    const sink = this.writebacks.get(id);
    if (!sink) {
      if (this.closedWritebacks.includes(id)) return; // sent before our FILE_CLOSE reached the agent
      this.fail(
        ErrorCode.PROTOCOL_ERROR,
        `${message.type} for transfer ${id}, which was not opened with writeback`,
      );
      return;
    }
    const r = sink.receiving;
    switch (message.type) {
      case 'writeback-begin':
        if (r)
          return this.fail(ErrorCode.PROTOCOL_ERROR, `writeback-begin inside a writeback of transfer ${id}`);
        sink.receiving = { size: message.size, received: 0, chunks: [] };
        return;
      case 'writeback-data':
        if (!r)
          return this.fail(ErrorCode.PROTOCOL_ERROR, `writeback-data outside a writeback of transfer ${id}`);
        if (r.received + message.data.length > r.size) {
          return this.fail(
            ErrorCode.PROTOCOL_ERROR,
            `writeback of transfer ${id} is over its announced ${r.size} bytes`,
          );
        }
        r.received += message.data.length;
        r.chunks.push(message.data);
        return;
      case 'writeback-end': {
        if (!r)
          return this.fail(ErrorCode.PROTOCOL_ERROR, `writeback-end outside a writeback of transfer ${id}`);
        sink.receiving = undefined;
        if (r.received !== r.size) {
          return this.fail(
            ErrorCode.PROTOCOL_ERROR,
            `writeback of transfer ${id} ended at ${r.received} of ${r.size} bytes`,
          );
        }
        const data = Buffer.concat(r.chunks, r.size);
        if (!createHash('sha256').update(data).digest().equals(message.sha256)) {
          return this.fail(
            ErrorCode.PROTOCOL_ERROR,
            `writeback of transfer ${id} does not match its SHA-256`,
          );
        }
        sink.onVersion(data);
        return;
      }
    }
  }

  /** Ends a writeback: tells the agent (FILE_CLOSE) and drops what it may still have on the wire. */
  closeWriteback(transferId: number): void {
    if (!this.writebacks.delete(transferId)) return;
    this.closedWritebacks.push(transferId);
    if (this.closedWritebacks.length > CLOSED_WRITEBACKS_KEPT) this.closedWritebacks.shift();
    this.send({ type: 'file-close', transferId });
  }

  /** Sends one file (FILE_BEGIN, FILE_DATA..., FILE_END) and waits for the agent's FILE_RESULT. */
  sendFile(
    transferId: number,
    kind: number,
    name: string,
    data: Buffer,
    timeoutMs: number,
    writeback?: WritebackSink,
  ): Promise<FileStored> {
    const run = this.fileQueue.then(() => this.transfer(transferId, kind, name, data, timeoutMs, writeback));
    this.fileQueue = run.catch(() => undefined);
    return run;
  }

  private async transfer(
    transferId: number,
    kind: number,
    name: string,
    data: Buffer,
    timeoutMs: number,
    writeback?: WritebackSink,
  ): Promise<FileStored> {
    const gone = (): ProxyRequestError =>
      new ProxyRequestError(
        'not_connected',
        `the agent in ${this.vmName} disconnected before the file was sent`,
      );
    if (this.isClosed()) throw gone();
    const answer = new Promise<FileStored>((resolve, reject) => {
      this.pendingFile.set(transferId, { resolve, reject, ...(writeback ? { writeback } : {}) });
    });
    answer.catch(() => undefined);
    this.send({ type: 'file-begin', transferId, kind: kind as 1 | 2 | 3, size: data.length, name });
    for (let at = 0; at < data.length; at += MAX_FILE_CHUNK_BYTES) {
      await this.drained();
      if (this.isClosed()) throw gone();
      this.send({
        type: 'file-data',
        transferId,
        data: data.subarray(at, Math.min(at + MAX_FILE_CHUNK_BYTES, data.length)),
      });
    }
    this.send({ type: 'file-end', transferId, sha256: createHash('sha256').update(data).digest() });
    const waiter = this.pendingFile.get(transferId);
    if (waiter) {
      waiter.timer = setTimeout(() => {
        this.pendingFile.delete(transferId);
        waiter.reject(
          new ProxyRequestError(
            'timeout',
            `the agent in ${this.vmName} did not confirm the file within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
    }
    return answer;
  }

  /** Resolves once the socket has room again (or is gone): a large file never trips the 4 MiB limit. */
  private drained(): Promise<void> {
    if (this.isClosed() || this.socket.writableLength < FILE_SEND_HIGH_WATER) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.once('drain', done);
      this.socket.once('close', done);
    });
  }

  exec(requestId: number, argv: string[], timeoutMs: number): Promise<ExecStarted> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingExec.delete(requestId);
        reject(
          new ProxyRequestError(
            'timeout',
            `the agent in ${this.vmName} did not answer the command within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      this.pendingExec.set(requestId, { resolve, reject, timer });
      this.send({ type: 'exec', requestId, argv });
    });
  }

  private settle(requestId: number): void {
    const waiter = this.pending.get(requestId);
    if (waiter) clearTimeout(waiter.timer);
    this.pending.delete(requestId);
  }

  clipboard(
    kind: 'copy' | 'paste',
    requestId: number,
    message: Message,
    timeoutMs: number,
  ): Promise<ClipboardContent | undefined> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(
          new ProxyRequestError(
            'timeout',
            `the agent in ${this.vmName} did not answer the clipboard ${kind} within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      this.pending.set(requestId, { kind, resolve, reject, timer });
      this.send(message);
    });
  }

  send(message: Message): void {
    if (this.state === 'closed' || this.socket.destroyed) return;
    this.lastSent = Date.now();
    this.socket.write(encodeMessage(message));
    if (this.socket.writableLength > MAX_OUTGOING_BUFFER) {
      this.close(`agent does not read (over ${MAX_OUTGOING_BUFFER} bytes queued)`);
    }
  }

  /** Sends ERROR (best effort), closes, logs. */
  fail(code: number, reason: string): void {
    if (this.state === 'closed') return;
    this.send({ type: 'error', code, message: reason.slice(0, 512) });
    this.close(reason);
  }

  close(reason: string): void {
    this.finish(reason, true);
  }

  /** Ends the session; the socket too unless a new session takes it over (restartOnLink). */
  private finish(reason: string, endSocket: boolean): void {
    if (this.state === 'closed') return;
    const wasReady = this.state === 'ready';
    this.state = 'closed';
    clearTimeout(this.handshakeTimer);
    clearInterval(this.heartbeatTimer);
    for (const [id, waiter] of this.pending) {
      clearTimeout(waiter.timer);
      waiter.reject(new ProxyRequestError('not_connected', `the agent in ${this.vmName} disconnected`));
      this.pending.delete(id);
    }
    for (const [id, waiter] of this.pendingExec) {
      clearTimeout(waiter.timer);
      waiter.reject(
        new ProxyRequestError('not_connected', `the agent in ${this.vmName} disconnected before answering`),
      );
      this.pendingExec.delete(id);
    }
    for (const [id, waiter] of this.pendingFile) {
      clearTimeout(waiter.timer);
      waiter.reject(
        new ProxyRequestError(
          'not_connected',
          `the agent in ${this.vmName} disconnected before confirming the file`,
        ),
      );
      this.pendingFile.delete(id);
    }
    for (const [id, sink] of this.writebacks) {
      this.writebacks.delete(id);
      sink.onEnd(`the agent in ${this.vmName} disconnected (${reason})`);
    }
    if (endSocket) {
      this.socket.end();
      // Give the ERROR frame a moment to leave, then make sure the socket is gone.
      setTimeout(() => this.socket.destroy(), 200).unref();
    }
    this.server.release(this, wasReady, reason);
  }
}

function clipboardStatusName(status: number): string {
  const names: Record<number, string> = { 1: 'REFUSED', 2: 'EMPTY', 3: 'TOO_LARGE', 4: 'FAILED' };
  return names[status] ?? `status ${status}`;
}

function execStatusName(status: number): string {
  const names: Record<number, string> = { 1: 'REFUSED', 2: 'FAILED' };
  return names[status] ?? `status ${status}`;
}

export class ProxyServer extends EventEmitter {
  readonly table = new WindowTable();
  readonly heartbeatIntervalMs: number;
  readonly heartbeatTimeoutMs: number;
  readonly heartbeatTickMs: number;
  readonly heartbeatSendAfterMs: number;
  readonly handshakeTimeoutMs: number;
  private readonly lookupTimeoutMs: number;
  private readonly clipboardTimeoutMs: number;
  private readonly execTimeoutMs: number;
  private readonly fileTimeoutMs: number;
  private readonly servers: net.Server[] = [];
  private readonly connections = new Set<AgentConnection>();
  private readonly current = new Map<string, AgentConnection>();
  private readonly logLine: (line: string) => void;
  private nextRequestId = 1;
  private bound: ListenAddress[] = [];
  private agentSocket: AgentSocketListener | undefined;

  constructor(private readonly options: ProxyServerOptions) {
    super();
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
    this.heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? 3 * this.heartbeatIntervalMs;
    const schedule = heartbeatSchedule(this.heartbeatIntervalMs, this.heartbeatTimeoutMs);
    this.heartbeatTickMs = schedule.tickMs;
    this.heartbeatSendAfterMs = schedule.sendAfterMs;
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    this.lookupTimeoutMs = options.lookupTimeoutMs ?? DEFAULT_LOOKUP_TIMEOUT_MS;
    this.clipboardTimeoutMs = options.clipboardTimeoutMs ?? DEFAULT_CLIPBOARD_TIMEOUT_MS;
    this.execTimeoutMs = options.execTimeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
    this.fileTimeoutMs = options.fileTimeoutMs ?? DEFAULT_FILE_TIMEOUT_MS;
    this.logLine = options.log ?? ((line) => process.stderr.write(`${line}\n`));
  }

  log(line: string): void {
    this.logLine(line);
  }

  lookupSecret(vmName: string): Promise<Buffer | null> {
    return this.options.lookupSecret(vmName);
  }

  /** Secrets agents have proven since the proxy started, by VM (in memory only). */
  private readonly provenSecrets = new Map<string, Buffer>();

  rememberedSecret(vmName: string): Buffer | undefined {
    return this.provenSecrets.get(vmName);
  }

  rememberSecret(vmName: string, secret: Buffer): void {
    this.provenSecrets.set(vmName, Buffer.from(secret));
  }

  forgetSecret(vmName: string): void {
    this.provenSecrets.delete(vmName);
    this.tickets.delete(vmName);
    this.pins.delete(vmName);
  }

  /**
   * Resume tickets, by VM (in memory only): the nonce the VM's latest session was given for its next
   * RESUME, and that session's version. One per VM; each is taken (removed) by the RESUME that names it.
   */
  private readonly tickets = new Map<string, { ticket: Buffer; version: number }>();

  issueTicket(vmName: string, version: number): Buffer {
    const ticket = newNonce();
    this.tickets.set(vmName, { ticket, version });
    return ticket;
  }

  takeTicket(vmName: string): { ticket: Buffer; version: number } | undefined {
    const ticket = this.tickets.get(vmName);
    this.tickets.delete(vmName);
    return ticket;
  }

  /**
   * Tickets pinned to snapshots with memory (docs/protocol.md, "Resume: tickets"), by VM, then snapshot:
   * the ticket the VM's agent held when the snapshot was taken. A revert to the snapshot brings that
   * agent back, so the host re-arms its ticket (rearmTicket) before the guest runs; each re-arm serves
   * one RESUME. In memory only, at most MAX_PINS_PER_VM per VM (the oldest goes first).
   */
  private readonly pins = new Map<string, Map<string, { ticket: Buffer; version: number }>>();

  /** Pins the VM's current ticket to `snapshot`; false when the VM has none. */
  pinTicket(vmName: string, snapshot: string): boolean {
    const current = this.tickets.get(vmName);
    if (!current) return false;
    const pins = this.pins.get(vmName) ?? new Map<string, { ticket: Buffer; version: number }>();
    pins.delete(snapshot);
    pins.set(snapshot, { ticket: Buffer.from(current.ticket), version: current.version });
    while (pins.size > MAX_PINS_PER_VM) pins.delete(pins.keys().next().value!);
    this.pins.set(vmName, pins);
    return true;
  }

  /** Makes the ticket pinned to `snapshot` the VM's ticket again; false when none is pinned. */
  rearmTicket(vmName: string, snapshot: string): boolean {
    const pinned = this.pins.get(vmName)?.get(snapshot);
    if (!pinned) return false;
    this.tickets.set(vmName, { ticket: Buffer.from(pinned.ticket), version: pinned.version });
    return true;
  }

  unpinTicket(vmName: string, snapshot: string): boolean {
    return this.pins.get(vmName)?.delete(snapshot) ?? false;
  }

  withLookupTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${what} timed out after ${this.lookupTimeoutMs} ms`)),
        this.lookupTimeoutMs,
      );
      promise.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  /** Binds every listen address; fails (and unbinds) if any cannot be bound. */
  async start(): Promise<ListenAddress[]> {
    try {
      for (const addr of this.options.listen) {
        const server = net.createServer((socket) => this.accept(socket));
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ host: addr.host, port: addr.port, exclusive: true }, () => {
            server.off('error', reject);
            resolve();
          });
        });
        server.on('error', (err) => this.log(`listener ${formatAddress(addr)}: ${err.message}`));
        this.servers.push(server);
        const info = server.address() as net.AddressInfo;
        this.bound.push({ host: addr.host, port: info.port });
      }
      if (this.options.agentSocket) {
        this.agentSocket = await listenAgentSocket(this.options.agentSocket, (socket) =>
          this.accept(socket, true),
        );
        this.servers.push(this.agentSocket.server);
      }
    } catch (err) {
      await this.close();
      throw err;
    }
    return this.addresses();
  }

  addresses(): ListenAddress[] {
    return this.bound.map((a) => ({ ...a }));
  }

  /** The Unix socket of the virtio-serial links, when listening on one. */
  get agentSocketPath(): string | undefined {
    return this.agentSocket?.path;
  }

  private accept(socket: net.Socket, spliced = false): void {
    // Silent links have no handshake clock (AgentConnection): bound how many anyone can hold open.
    if (spliced && [...this.connections].filter((c) => c.silent()).length >= MAX_SILENT_LINKS) {
      this.log(`agent socket: over ${MAX_SILENT_LINKS} links that have said nothing; refusing another`);
      socket.destroy();
      return;
    }
    const conn = new AgentConnection(this, socket, spliced);
    this.connections.add(conn);
  }

  /** A new session on a virtio-serial link whose agent started its handshake again. */
  acceptOnLink(socket: net.Socket, decoder: FrameDecoder): AgentConnection {
    const conn = new AgentConnection(this, socket, true, decoder);
    this.connections.add(conn);
    return conn;
  }

  /** Called once a connection authenticated: it becomes its VM's connection, replacing an older one. */
  adopt(conn: AgentConnection): void {
    const name = conn.vmName!;
    const old = this.current.get(name);
    // Closing the old connection while it is still current makes release()
    // publish its agent-disconnected before this one's agent-connected, so a
    // follower never sees two connections for one VM.
    if (old && old !== conn) old.fail(ErrorCode.REPLACED, `replaced by a new connection from ${conn.peer}`);
    this.current.set(name, conn);
    this.table.agentConnected(name, conn.peer);
    this.log(
      `agent ${name} connected from ${conn.peer}${conn.resumedOnTicket ? ' (resumed on its ticket)' : ''}`,
    );
    this.publish({ time: new Date().toISOString(), vm: name, type: 'agent-connected', peer: conn.peer });
  }

  release(conn: AgentConnection, wasReady: boolean, reason: string): void {
    this.connections.delete(conn);
    const name = conn.vmName;
    if (wasReady && name && this.current.get(name) === conn) {
      this.current.delete(name);
      this.table.agentDisconnected(name);
      this.publish({ time: new Date().toISOString(), vm: name, type: 'agent-disconnected', reason });
    }
    this.log(`${name ? `agent ${name}` : 'agent'} (${conn.peer}) closed: ${reason}`);
  }

  onWindowEvent(conn: AgentConnection, message: WindowEventMessage): void {
    const name = conn.vmName!;
    const outcome = this.table.apply(name, message);
    if (outcome === 'too-many-windows') {
      conn.fail(ErrorCode.PROTOCOL_ERROR, `too many windows (over ${MAX_WINDOWS_PER_VM})`);
      return;
    }
    // Ignored, as the table ignores it: a follower must not see a window the table never listed.
    if (outcome === 'unknown-window') return;
    if (this.listenerCount('event') > 0)
      this.publish({ time: new Date().toISOString(), vm: name, ...message });
  }

  onExecExited(conn: AgentConnection, execId: number, how: number, code: number): void {
    this.publish({
      time: new Date().toISOString(),
      vm: conn.vmName!,
      type: 'exec-exited',
      execId,
      how: how === ExecEnd.SIGNALLED ? 'signalled' : 'exited',
      code,
    });
  }

  /**
   * Forgets a VM that no longer exists (a disposable just removed): its
   * windows leave the table and its connection, if one is left, is closed.
   * True if the proxy knew it.
   */
  forget(vmName: string): boolean {
    this.current.get(vmName)?.fail(ErrorCode.SHUTTING_DOWN, 'the VM was removed');
    // A VM made again under the name starts without any.
    this.tickets.delete(vmName);
    this.pins.delete(vmName);
    const known = this.table.forget(vmName);
    // Also for a VM never seen: a follower waiting for its agent learns that it will never come.
    this.publish({ time: new Date().toISOString(), vm: vmName, type: 'vm-forgotten' });
    return known;
  }

  private publish(event: ProxyEvent): void {
    this.emit('event', event);
  }

  status(): { listening: string[]; vms: VmStatusView[] } {
    return {
      listening: [
        ...this.bound.map(formatAddress),
        ...(this.agentSocket ? [`unix:${this.agentSocket.path}`] : []),
      ],
      vms: this.table.names().map((n) => this.table.statusOf(n)!),
    };
  }

  private connectionFor(vmName: string): AgentConnection {
    const conn = this.current.get(vmName);
    if (conn) return conn;
    if (this.table.has(vmName))
      throw new ProxyRequestError('not_connected', `the agent in VM "${vmName}" is not connected`);
    throw new ProxyRequestError('not_found', `no agent has connected for VM "${vmName}"`);
  }

  private async checkClipboardAllowed(vmName: string): Promise<void> {
    let allowed = false;
    if (this.options.clipboardAllowed) {
      try {
        allowed = await this.withLookupTimeout(
          this.options.clipboardAllowed(vmName),
          'clipboard policy lookup',
        );
      } catch (err) {
        throw new ProxyRequestError(
          'failed',
          `cannot read the clipboard setting of VM "${vmName}": ${(err as Error).message}`,
        );
      }
    }
    if (!allowed) {
      throw new ProxyRequestError(
        'refused',
        `clipboard is disabled for VM "${vmName}" (set enable_clipboard = true in its config)`,
      );
    }
  }

  private requestId(): number {
    const id = this.nextRequestId;
    this.nextRequestId = this.nextRequestId >= 0xffffffff ? 1 : this.nextRequestId + 1;
    return id;
  }

  /** Fetches the guest's clipboard. */
  async requestClipboard(vmName: string, timeoutMs = this.clipboardTimeoutMs): Promise<ClipboardContent> {
    this.connectionFor(vmName);
    await this.checkClipboardAllowed(vmName);
    const conn = this.connectionFor(vmName);
    const requestId = this.requestId();
    const content = await conn.clipboard(
      'copy',
      requestId,
      { type: 'clipboard-request', requestId },
      timeoutMs,
    );
    return content!;
  }

  /** Puts content into the guest's clipboard; resolves once the agent confirmed. */
  async sendClipboard(
    vmName: string,
    content: ClipboardContent,
    timeoutMs = this.clipboardTimeoutMs,
  ): Promise<void> {
    if (content.data.length > MAX_CLIPBOARD_BYTES) {
      throw new ProxyRequestError(
        'bad_request',
        `clipboard content is ${content.data.length} bytes; the limit is ${MAX_CLIPBOARD_BYTES}`,
      );
    }
    this.connectionFor(vmName);
    await this.checkClipboardAllowed(vmName);
    const conn = this.connectionFor(vmName);
    const requestId = this.requestId();
    await conn.clipboard('paste', requestId, { type: 'clipboard-data', requestId, ...content }, timeoutMs);
  }

  /**
   * The VM's current authenticated connection, waiting up to `waitMs` for one
   * (a VM just started or resumed connects within seconds; the wait ends the
   * moment it authenticates, not on a poll).
   */
  private async connectionWithin(
    vmName: string,
    waitMs: number,
    sinceMs = 0,
    signal?: AbortSignal,
  ): Promise<AgentConnection> {
    const fresh = (conn: AgentConnection | undefined): conn is AgentConnection =>
      conn !== undefined && conn.authenticatedAt >= sinceMs;
    const now = this.current.get(vmName);
    if (fresh(now)) return now;
    if (waitMs <= 0) return this.connectionFor(vmName);
    await new Promise<void>((resolve, reject) => {
      const onEvent = (event: ProxyEvent): void => {
        if (event.vm !== vmName || event.type !== 'agent-connected') return;
        if (!fresh(this.current.get(vmName))) return;
        clearTimeout(timer);
        this.off('event', onEvent);
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      // The asker went away: stop waiting, so that no command starts for nobody once the agent comes.
      const onAbort = (): void => {
        clearTimeout(timer);
        this.off('event', onEvent);
        reject(new ProxyRequestError('failed', `the request for VM "${vmName}" was abandoned`));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(() => {
        this.off('event', onEvent);
        signal?.removeEventListener('abort', onAbort);
        const seen = !this.table.has(vmName)
          ? 'has not connected'
          : this.current.has(vmName)
            ? 'has not connected again since the VM was started or resumed'
            : 'is not connected';
        reject(
          new ProxyRequestError('not_connected', `the agent in VM "${vmName}" ${seen} (waited ${waitMs} ms)`),
        );
      }, waitMs);
      this.on('event', onEvent);
    });
    return this.connectionFor(vmName);
  }

  /**
   * Starts `argv` in the VM's graphical session through its agent (EXEC);
   * resolves with the guest pid once the agent says it started. Waits up to
   * `waitMs` for the agent to connect first; with `connectedSinceMs`, for a
   * connection authenticated at or after that time (ms since the epoch): a VM
   * just started or resumed may still have a connection from before, which
   * looks alive until its agent, woken, replaces it or a heartbeat runs out.
   */
  async exec(
    vmName: string,
    argv: string[],
    options: { waitMs?: number; timeoutMs?: number; connectedSinceMs?: number; signal?: AbortSignal } = {},
  ): Promise<ExecStarted> {
    const problem = execArgvProblem(argv);
    if (problem) throw new ProxyRequestError('bad_request', problem);
    const conn = await this.connectionWithin(
      vmName,
      options.waitMs ?? 0,
      options.connectedSinceMs ?? 0,
      options.signal,
    );
    if (conn.protocolVersion < EXEC_MIN_VERSION) {
      throw new ProxyRequestError(
        'refused',
        `the agent in VM "${vmName}" speaks protocol version ${conn.protocolVersion}, which cannot run commands; update its guest agent`,
      );
    }
    return conn.exec(this.requestId(), argv, options.timeoutMs ?? this.execTimeoutMs);
  }

  /**
   * Sends a host file (already read and checked, src/proxy/host-file.ts) to
   * the VM's agent: a copy into ~/Incoming/host (`copy`), or a copy opened with
   * the guest's default handler (`open`). With `writeback`, each version the
   * guest saves replaces exactly that host file, atomically and only if it did
   * not change on the host meanwhile; `onWriteback` hears of each, and of the
   * end (a refusal ends the session too). Waits for the agent as `exec` does.
   */
  async sendFile(
    vmName: string,
    file: HostFile,
    options: {
      kind: 'copy' | 'open';
      writeback?: boolean;
      onWriteback?: (event: WritebackEvent) => void;
      waitMs?: number;
      timeoutMs?: number;
      connectedSinceMs?: number;
    },
  ): Promise<FileSession> {
    const conn = await this.connectionWithin(vmName, options.waitMs ?? 0, options.connectedSinceMs ?? 0);
    if (conn.protocolVersion < FILE_MIN_VERSION) {
      throw new ProxyRequestError(
        'refused',
        `the agent in VM "${vmName}" speaks protocol version ${conn.protocolVersion}, which cannot take files; update its guest agent`,
      );
    }
    const transferId = this.requestId();
    const kind =
      options.kind === 'copy' ? FileKind.COPY : options.writeback ? FileKind.OPEN_WRITEBACK : FileKind.OPEN;
    const notify = options.onWriteback ?? (() => undefined);
    let sink: WritebackSink | undefined;
    if (kind === FileKind.OPEN_WRITEBACK) {
      let identity = file.identity;
      let chain = Promise.resolve();
      let over = false;
      const end = (event: WritebackEvent): void => {
        if (over) return;
        over = true;
        notify(event);
      };
      sink = {
        onVersion: (data) => {
          // One replacement at a time, in the order the guest saved them.
          chain = chain.then(async () => {
            if (over) return;
            try {
              identity = await replaceHostFile(file.path, identity, file.mode, data);
              this.log(`agent ${vmName}: wrote ${data.length} bytes back to ${file.path}`);
              notify({ type: 'written', bytes: data.length });
            } catch (err) {
              end({ type: 'refused', message: (err as Error).message });
              conn.closeWriteback(transferId);
            }
          });
        },
        onEnd: (reason) => void chain.then(() => end({ type: 'ended', reason })),
      };
    }
    const stored = await conn.sendFile(
      transferId,
      kind,
      file.name,
      file.data,
      options.timeoutMs ?? this.fileTimeoutMs,
      sink,
    );
    return { ...stored, close: () => conn.closeWriteback(transferId) };
  }

  /** Stops listening, tells every agent, and closes all connections. */
  async close(): Promise<void> {
    const servers = this.servers.splice(0);
    for (const conn of [...this.connections]) conn.fail(ErrorCode.SHUTTING_DOWN, 'proxy is shutting down');
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    await this.agentSocket?.remove();
    this.agentSocket = undefined;
    this.bound = [];
  }
}
