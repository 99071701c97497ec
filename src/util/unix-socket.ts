import net from 'node:net';

/** sun_path holds 108 bytes with its terminating NUL. */
export const UNIX_SOCKET_PATH_MAX = 107;

/**
 * Whether a process answers on the Unix socket at `socketPath`: how a proxy
 * starting up tells a socket another proxy still serves (refuse to start) from
 * one a killed proxy left behind (remove it). `silent`: neither an answer nor
 * a refusal within `timeoutMs`; each caller decides what that means.
 */
export function probeUnixSocket(
  socketPath: string,
  timeoutMs = 1000,
): Promise<'answers' | 'refused' | 'silent'> {
  return new Promise((resolve) => {
    const probe = net.connect(socketPath);
    const timer = setTimeout(() => {
      probe.destroy();
      resolve('silent');
    }, timeoutMs);
    probe.once('connect', () => {
      clearTimeout(timer);
      probe.destroy();
      resolve('answers');
    });
    probe.once('error', () => {
      clearTimeout(timer);
      resolve('refused');
    });
  });
}
