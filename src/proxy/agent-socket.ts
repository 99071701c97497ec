import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { InputError } from '../util/errors.js';
import { probeUnixSocket, UNIX_SOCKET_PATH_MAX } from '../util/unix-socket.js';

/**
 * The proxy's end of the agents' virtio-serial links (docs/protocol.md,
 * "Transport"). Each VM's `org.vm-provisioner.agent.0` port is a Unix socket
 * chardev in client mode: QEMU connects here when it starts (and again a
 * second after a drop), so the guest finds its port's host side connected
 * the moment it runs, a restored guest included, with no network in between.
 *
 * Where: `/tmp/vm-provisioner-agents-UID/agent.sock`, a fixed path the CLI
 * writes into each domain and the proxy listens on. Under qemu:///system QEMU
 * runs as another user (libvirt-qemu), who can neither reach
 * $XDG_RUNTIME_DIR (0700) nor connect to a socket it cannot write: the
 * directory is 0711 (reachable, not listable) and the socket 0666. That is
 * the exposure the loopback TCP port has always had (any local process can
 * connect); what guards both is the handshake, which accepts only an agent
 * that proves its VM's secret. A directory we do not own, or that others can
 * write, is refused rather than used.
 */

export interface AgentSocketListener {
  path: string;
  server: net.Server;
  /** Unlinks the socket if it is still the one this listener made. */
  remove(): Promise<void>;
}

/** Fixed, not from the environment: the CLI that writes domains and the proxy must agree without talking. */
export function agentSocketPath(uid: number = process.getuid?.() ?? 0): string {
  return path.join('/tmp', `vm-provisioner-agents-${uid}`, 'agent.sock');
}

export async function listenAgentSocket(
  socketPath: string,
  onConnection: (socket: net.Socket) => void,
): Promise<AgentSocketListener> {
  if (!path.isAbsolute(socketPath) || Buffer.byteLength(socketPath) > UNIX_SOCKET_PATH_MAX) {
    throw new InputError(
      `agent socket '${socketPath}' is invalid: must be an absolute path of at most ${UNIX_SOCKET_PATH_MAX} bytes`,
    );
  }
  const dir = path.dirname(socketPath);
  await fs.mkdir(dir, { mode: 0o711 }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  const st = await fs.lstat(dir);
  const uid = process.getuid?.();
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o022) !== 0) {
    throw new InputError(
      `agent socket directory '${dir}' is unsafe: it must be a directory of this user that no one else can write`,
    );
  }
  await fs.chmod(dir, 0o711);
  await removeStale(socketPath);
  const server = net.createServer(onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ path: socketPath, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await fs.chmod(socketPath, 0o666);
  const made = await fs.lstat(socketPath);
  return {
    path: socketPath,
    server,
    async remove(): Promise<void> {
      const now = await fs.lstat(socketPath).catch(() => undefined);
      if (now && now.ino === made.ino && now.dev === made.dev) await fs.rm(socketPath, { force: true });
    },
  };
}

/** A socket nobody answers on is a crashed proxy's: removed. One that answers belongs to a running proxy. */
async function removeStale(socketPath: string): Promise<void> {
  const st = await fs.lstat(socketPath).catch(() => undefined);
  if (!st) return;
  if (!st.isSocket()) {
    throw new InputError(`agent socket '${socketPath}' is invalid: something other than a socket is there`);
  }
  // Silent counts as in use: a socket is only removed once nothing can be listening on it.
  if ((await probeUnixSocket(socketPath)) !== 'refused')
    throw new InputError(`agent socket '${socketPath}' is in use: another proxy listens on it`);
  await fs.rm(socketPath, { force: true });
}
