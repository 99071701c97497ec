import fs from 'node:fs';
import net from 'node:net';
import type { PreparedResume } from '../../src/protocol/index.js';

/**
 * The agent's end of its virtio-serial link to the proxy (docs/protocol.md,
 * "Transport"): `/dev/virtio-ports/org.vm-provisioner.agent.0`, whose host
 * side QEMU connects to the proxy's Unix socket.
 *
 * Node will not make a stream of a character device (`net.Socket({ fd })`
 * refuses it as a file, and a file stream's reads block a thread-pool thread
 * that nothing can cancel, which once kept the agent from exiting, see
 * wake.ts). The port polls like a socket, so it is handed to libuv as a pipe:
 * reads and writes are then non-blocking, driven by epoll like any socket's.
 * While the port's host side is not connected (no proxy yet, or QEMU between
 * reconnects) the guest reads end-of-file at once: the handshake fails fast
 * and the agent tries again after its backoff.
 *
 * The port stays open from one handshake to the next (AgentPort): after a
 * restore every guest code path runs for the first time under emulation, and
 * closing and opening the port again (two control messages to QEMU, the
 * kernel's and libuv's paths) cost more than the handshake's own messages. It is
 * opened again only once it has failed (end-of-file, an error, a failed handshake).
 */
export const AGENT_PORT = '/dev/virtio-ports/org.vm-provisioner.agent.0';

interface PipeHandle {
  open(fd: number): number;
}
type PipeConstructor = new (type: number) => PipeHandle;

// pipe_wrap is one of the bindings process.binding still hands out; it is how libuv adopts an fd.
const pipeWrap = (
  process as unknown as {
    binding(name: 'pipe_wrap'): { Pipe: PipeConstructor; constants: { SOCKET: number } };
  }
).binding('pipe_wrap');

export function agentPortPresent(file: string = AGENT_PORT): boolean {
  return fs.existsSync(file);
}

/**
 * Opens the port as a socket. A port opens once at a time: the last link's
 * close lets go of it on the event loop's next turn, so EBUSY is retried briefly.
 */
export async function openAgentPort(file: string = AGENT_PORT, busyForMs = 1000): Promise<net.Socket> {
  const deadline = Date.now() + busyForMs;
  for (;;) {
    try {
      return adopt(
        file,
        fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY),
      );
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EBUSY' || Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}

function adopt(file: string, fd: number): net.Socket {
  const handle = new pipeWrap.Pipe(pipeWrap.constants.SOCKET);
  const status = handle.open(fd);
  if (status !== 0) {
    fs.closeSync(fd);
    throw new Error(`cannot poll ${file} (libuv status ${status})`);
  }
  return new net.Socket({ handle, readable: true, writable: true } as unknown as net.SocketConstructorOpts);
}

/** What a resume wrote first on the port, for the handshake that follows to go on from. */
export type SentOpening = { kind: 'hello'; nonce: Buffer } | { kind: 'resume'; resume: PreparedResume };

/** The port, opened on first use and kept open until it fails. */
export class AgentPort {
  private socket: net.Socket | undefined;
  /** The next HELLO, encoded while idle (prepareHello). */
  private prepared: { frame: Buffer; nonce: Buffer } | undefined;
  /** The next RESUME, made while idle from the proxy's latest ticket (prepareResume). */
  private preparedResume: PreparedResume | undefined;
  /** What sendOpening wrote, and on which socket. */
  private sent: { socket: net.Socket; opening: SentOpening } | undefined;

  constructor(private readonly file: string = AGENT_PORT) {}

  get path(): string {
    return this.file;
  }

  async get(): Promise<net.Socket> {
    if (this.socket && !this.socket.destroyed) return this.socket;
    const socket = await openAgentPort(this.file);
    // Nobody may be listening between two handshakes: a failing port must not throw unhandled.
    socket.on('error', () => undefined);
    this.socket = socket;
    return socket;
  }

  close(): void {
    this.socket?.destroy();
    this.socket = undefined;
  }

  /** Encodes the next session's HELLO ahead, with a fresh nonce: `encode(nonce)` is encodeHello's. */
  prepareHello(nonce: Buffer, encode: (nonce: Buffer) => Buffer): void {
    this.prepared = { frame: encode(nonce), nonce };
  }

  /** Keeps the next session's RESUME (prepareResume's), replacing an older one: each ticket is good once. */
  keepResume(resume: PreparedResume | undefined): void {
    this.preparedResume = resume;
  }

  /**
   * The VM has just resumed (GuestAgent's onResume): writes at once, on the open port, the RESUME made
   * ahead with `windowList()` behind it in the same write, or else the HELLO made ahead (docs/protocol.md,
   * "Resume"). False when there is neither or the port is not open; the handshake then sends its own HELLO.
   */
  sendOpening(windowList: () => Buffer): boolean {
    const socket = this.socket;
    if (!socket || socket.destroyed) return false;
    const resume = this.preparedResume;
    if (resume) {
      this.preparedResume = undefined;
      socket.write(Buffer.concat([resume.frame, windowList()]));
      this.sent = { socket, opening: { kind: 'resume', resume } };
      return true;
    }
    const prepared = this.prepared;
    if (!prepared) return false;
    this.prepared = undefined;
    socket.write(prepared.frame);
    this.sent = { socket, opening: { kind: 'hello', nonce: prepared.nonce } };
    return true;
  }

  /** What sendOpening wrote, if it went out on `socket`; once. */
  takeSentOpening(socket: net.Socket): SentOpening | undefined {
    const sent = this.sent;
    this.sent = undefined;
    return sent && sent.socket === socket ? sent.opening : undefined;
  }
}
