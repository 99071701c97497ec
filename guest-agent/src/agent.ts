import { Backoff } from './backoff.js';
import { FileSession, type FileInbound, type FileOutbound } from './files.js';
import type { WindowEvent, WindowInfo, WindowTracker } from './window-tracker.js';

/**
 * The agent's behaviour, independent of the wire: keep one authenticated link
 * to the host proxy, send the full window list whenever a link comes up,
 * stream window events while it lasts, answer clipboard requests, and
 * reconnect with capped exponential backoff when it drops. The link itself
 * (TCP, codec, authentication, heartbeat) is behind `AgentLink`.
 */

/** What the agent tells the proxy; the link maps each to a protocol message. */
export type AgentOutbound =
  | { type: 'window-list'; windows: WindowInfo[]; focused: number | null }
  | { type: 'window-event'; event: WindowEvent }
  | { type: 'clipboard-content'; requestId: number; text: string }
  | { type: 'clipboard-result'; requestId: number; status: ClipboardResultStatus; message: string }
  | { type: 'exec-result'; requestId: number; status: ExecResultStatus; pid: number; message: string }
  | { type: 'file'; message: FileOutbound }
  | { type: 'exec-exited'; requestId: number; end: ExecEndInfo };

/** How a started command ended: its exit status, or the signal that killed it. */
export type ExecEndInfo = { how: 'exited'; code: number } | { how: 'signalled'; signal: number };

export type ExecResultStatus = 'started' | 'refused' | 'failed';

export type ClipboardResultStatus = 'ok' | 'refused' | 'empty' | 'too-large' | 'failed';

/** What the proxy asks of the agent. */
export type AgentInbound =
  | { type: 'clipboard-read'; requestId: number }
  | { type: 'clipboard-write'; requestId: number; mimeType: string; data: Buffer }
  | { type: 'exec'; requestId: number; argv: string[] }
  | { type: 'file'; message: FileInbound };

export interface AgentLink {
  send(message: AgentOutbound): void;
  onMessage(handler: (message: AgentInbound) => void): void;
  /** Resolves once the link has room for more output (large transfers wait on it). */
  drained(): Promise<void>;
  /** Ends the link with a protocol error (the peer broke the protocol). */
  fail(reason: string): void;
  /** Resolves when the link ends, from either side, for any reason. */
  readonly closed: Promise<void>;
  close(): void;
}

/**
 * Opens and authenticates a link; rejects when the proxy is unreachable or refuses us. `signal`
 * abandons the attempt (the VM resumed again while it was under way): it rejects at once, and a link
 * it was using on the port is let go.
 */
export type LinkFactory = (signal?: AbortSignal) => Promise<AgentLink>;

export interface ClipboardPort {
  read(): Promise<string>;
  write(text: string): Promise<void>;
}

/** Thrown by a ClipboardPort for content over the size limit. */
export interface TooLarge {
  tooLarge: true;
}

/**
 * Starts a command in the session (guest-agent/src/exec.ts); resolves with its
 * pid. `onExit`, when given, is called once when the command has ended.
 */
export interface ExecPort {
  start(argv: string[], onExit?: (end: ExecEndInfo) => void): Promise<number>;
}

export interface AgentOptions {
  tracker: WindowTracker;
  clipboard: ClipboardPort;
  /** Without it, every EXEC is answered REFUSED. */
  exec?: ExecPort;
  /** Where files from the host go (guest-agent/src/files.ts); without it, every file is refused. */
  files?: { home: string; openRoot: string };
  connect: LinkFactory;
  /**
   * Links share one device that opens once at a time (the virtio-serial port): on a resume the old link
   * is closed before the new one opens, instead of after the new one's window list.
   */
  singleLink?: boolean;
  /**
   * Called first on a resume with a session up (singleLink), before any other code runs, that session's
   * teardown included: the agent's port writes the RESUME (or HELLO) it prepared (docs/protocol.md,
   * "Resume"). The old session lets go of the link in the same turn of the event loop, so the proxy's
   * answer reaches the new one.
   */
  onResume?: () => void;
  backoff?: Backoff;
  log?: (line: string) => void;
}

export class GuestAgent {
  private stopped = false;
  private link: AgentLink | null = null;
  private wake: (() => void) | null = null;
  private loop: Promise<void> | null = null;
  /** The next attempt goes without the backoff delay (set by `reconnectNow`). */
  private immediate = false;
  /** Ends the current `serve` at once on a resume, without waiting for the old link to close. */
  private leave: (() => void) | null = null;
  /** The link a resume left behind (most likely dead): closed once the new one has sent its window list. */
  private stale: AgentLink | null = null;
  /**
   * Log lines held back while a resume's reconnect is on its way: under emulation each line wakes the
   * guest's journald, whose code, like all code after a restore, is translated again first.
   */
  private held: string[] | null = null;
  /** A resume's handshake, started by reconnectNow itself (singleLink). */
  private early: Promise<AgentLink> | null = null;
  /** The attempt under way, to abandon it on a wake (connectOnce). */
  private connecting: AbortController | null = null;
  private readonly backoff: Backoff;
  private readonly log: (line: string) => void;
  /** Number of links that came up; a test and a log line can tell a reconnect happened. */
  connections = 0;

  constructor(private readonly opts: AgentOptions) {
    this.backoff = opts.backoff ?? new Backoff();
    this.log = opts.log ?? (() => undefined);
  }

  start(): void {
    this.loop ??= this.run();
  }

  get connected(): boolean {
    return this.link !== null;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.link?.close();
    this.retireStale();
    this.wake?.();
    await this.loop;
  }

  /**
   * The VM has just resumed: the link, if any, is most likely dead (its QEMU
   * process was saved and replaced) or stale. Connect again at once; the new
   * link starts with the window list, as every link does. Everything else
   * waits until that list is sent: closing the old link (a FIN into a
   * connection the new QEMU does not know) and the log lines.
   */
  reconnectNow(reason: string): void {
    if (this.stopped) return;
    const onLink = this.opts.singleLink === true && this.link !== null && this.early === null;
    // After a restore every step here is guest code translated anew (tens of ms under emulation): what the
    // port prepared goes first, and the rest runs while it travels.
    if (onLink) this.opts.onResume?.();
    this.hold(`${reason}: reconnecting now`);
    this.immediate = true;
    if (onLink && this.link) {
      // The new handshake starts here, before the old session's teardown (serve's finally, the loop coming
      // round) has run.
      this.link.close();
      const early = this.connectOnce();
      early.catch(() => undefined);
      this.early = early;
    } else if (this.connecting) {
      // A handshake under way when the VM was saved or paused: what it wrote may have gone to a QEMU
      // connection that is gone, and its answer with it. It is abandoned and the loop connects afresh,
      // instead of waiting for its deadline (10 s). Never two at once.
      this.connecting.abort();
    }
    this.leave?.();
    this.wake?.();
  }

  /** The link factory's attempt, abandoned by a wake that comes while it is under way (reconnectNow). */
  private connectOnce(): Promise<AgentLink> {
    const controller = new AbortController();
    this.connecting = controller;
    const attempt = this.opts.connect(controller.signal);
    const done = (): void => {
      if (this.connecting === controller) this.connecting = null;
    };
    attempt.then(done, done);
    return attempt;
  }

  /** Logs now, or after the resume's window list when one is on its way. */
  private note(line: string): void {
    if (this.held) this.held.push(line);
    else this.log(line);
  }

  private hold(line: string): void {
    (this.held ??= []).push(line);
  }

  /** The resume's reconnect is through (or failed): close what it left behind, then log. */
  private retireStale(): void {
    const stale = this.stale;
    this.stale = null;
    stale?.close();
    const held = this.held ?? [];
    this.held = null;
    for (const line of held) this.log(line);
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        const early = this.early;
        this.early = null;
        const link = await (early ?? this.connectOnce());
        if (this.stopped) {
          link.close();
          break;
        }
        await this.serve(link);
      } catch (err) {
        this.retireStale();
        this.log(`proxy link failed: ${(err as Error).message}`);
      }
      if (this.stopped) break;
      if (this.immediate) {
        this.immediate = false;
        this.backoff.reset();
        continue;
      }
      const delay = this.backoff.next();
      this.log(`reconnecting in ${delay} ms`);
      // The only timer besides the link's heartbeat, and only while disconnected.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
  }

  private async serve(link: AgentLink): Promise<void> {
    this.link = link;
    this.immediate = false;
    this.connections++;
    this.backoff.reset();
    const { tracker } = this.opts;
    const files = this.fileSession(link);
    link.onMessage((m) => {
      if (m.type !== 'file') return void this.answer(link, m);
      if (!files) return this.refuseFile(link, m.message);
      try {
        files.handle(m.message);
      } catch (err) {
        link.fail((err as Error).message);
      }
    });
    // Snapshot and subscription in one synchronous step: no event falls between them.
    link.send({ type: 'window-list', windows: tracker.windows(), focused: tracker.focusedWindow() });
    const unsubscribe = tracker.onWindowEvent((event) => link.send({ type: 'window-event', event }));
    this.retireStale();
    this.log(`connected to the proxy (link ${this.connections})`);
    let resumed = false;
    try {
      await Promise.race([
        link.closed,
        new Promise<void>((resolve) => {
          this.leave = () => {
            resumed = true;
            resolve();
          };
        }),
      ]);
    } finally {
      this.leave = null;
      unsubscribe();
      files?.close();
      this.link = null;
      if (resumed && this.opts.singleLink) {
        // Closed already by reconnectNow, which started the new link's handshake on the same port.
        this.note('closed the link from before the resume');
      } else if (resumed) {
        this.stale = link;
        this.note('left the link from before the resume');
      } else this.note('proxy link closed');
    }
  }

  private fileSession(link: AgentLink): FileSession | undefined {
    const { files, exec } = this.opts;
    if (!files || !exec) return undefined;
    return new FileSession({
      ...files,
      open: (file) => exec.start(['xdg-open', file]),
      send: (message) => link.send({ type: 'file', message }),
      drained: () => link.drained(),
      log: this.log,
    });
  }

  /** An agent without a place for files answers each FILE_END with REFUSED. */
  private refuseFile(link: AgentLink, m: FileInbound): void {
    if (m.type !== 'file-end') return;
    link.send({
      type: 'file',
      message: {
        type: 'file-result',
        transferId: m.transferId,
        status: 1,
        pid: 0,
        path: '',
        message: 'this agent does not take files',
      },
    });
  }

  private async answer(link: AgentLink, m: Exclude<AgentInbound, { type: 'file' }>): Promise<void> {
    if (m.type === 'exec') return this.runCommand(link, m.requestId, m.argv);
    const result = (status: ClipboardResultStatus, message = ''): void =>
      link.send({ type: 'clipboard-result', requestId: m.requestId, status, message });
    try {
      if (m.type === 'clipboard-read') {
        const text = await this.opts.clipboard.read();
        if (text === '') result('empty');
        else link.send({ type: 'clipboard-content', requestId: m.requestId, text });
        return;
      }
      if (!/^text\/plain(;\s*charset=utf-8)?$/i.test(m.mimeType)) {
        result('refused', `only text/plain;charset=utf-8 is supported, not "${m.mimeType}"`);
        return;
      }
      let text: string;
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(m.data);
      } catch {
        result('refused', 'clipboard data is not valid UTF-8');
        return;
      }
      await this.opts.clipboard.write(text);
      result('ok');
    } catch (err) {
      result((err as Partial<TooLarge>).tooLarge ? 'too-large' : 'failed', (err as Error).message);
    }
  }

  /** The link's codec has checked argv against the protocol's grammar and limits already. */
  private async runCommand(link: AgentLink, requestId: number, argv: string[]): Promise<void> {
    const reply = (status: ExecResultStatus, pid: number, message: string): void =>
      link.send({ type: 'exec-result', requestId, status, pid, message });
    if (!this.opts.exec) return reply('refused', 0, 'this agent does not run commands');
    try {
      // The exit goes out on whatever link is up when it happens (the one that asked may have been
      // replaced by a reconnect); with none up, it is lost (docs/protocol.md, EXEC_EXITED).
      const pid = await this.opts.exec.start(argv, (end) => {
        this.log(
          `${argv[0]} (for the host) ended: ${end.how === 'exited' ? `status ${end.code}` : `signal ${end.signal}`}`,
        );
        this.link?.send({ type: 'exec-exited', requestId, end });
      });
      this.log(`started ${argv[0]} (pid ${pid}) for the host`);
      reply('started', pid, '');
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      this.log(`could not start ${argv[0]}: ${e.code ?? e.message}`);
      reply(
        'failed',
        0,
        `cannot start ${argv[0]}: ${e.code === 'ENOENT' ? 'no such program' : (e.code ?? e.message)}`,
      );
    }
  }
}
