import fs from 'node:fs';
import net from 'node:net';

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

/** The port, opened on first use and kept open until it fails. */
export class AgentPort {
  private socket: net.Socket | undefined;
  /** The next HELLO, encoded while idle (prepareHello). */
  private prepared: { frame: Buffer; nonce: Buffer } | undefined;
  /** A HELLO already written (sendPreparedHello), and on which socket. */
  private sent: { socket: net.Socket; nonce: Buffer } | undefined;

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

  /**
   * Writes the prepared HELLO at once on the open port (the VM has just resumed: see GuestAgent's
   * onResume). False when there is none or the port is not open; the handshake then sends its own.
   */
  sendPreparedHello(): boolean {
    const socket = this.socket;
    const prepared = this.prepared;
    if (!socket || socket.destroyed || !prepared) return false;
    this.prepared = undefined;
    socket.write(prepared.frame);
    this.sent = { socket, nonce: prepared.nonce };
    return true;
  }

  /** The nonce of the HELLO sendPreparedHello wrote, if it went out on `socket`; once. */
  takeSentHello(socket: net.Socket): Buffer | undefined {
    const sent = this.sent;
    this.sent = undefined;
    return sent && sent.socket === socket ? sent.nonce : undefined;
  }
}
