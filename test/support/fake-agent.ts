import net from 'node:net';
import {
  computeAuthMac,
  encodeMessage,
  FrameDecoder,
  newNonce,
  type Message,
  type WindowInfo,
} from '../../src/protocol/index.js';

/** Polls until `check` passes or the deadline passes (then throws its last error). */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  timeoutMs = 5000,
  what = 'condition',
): Promise<Exclude<T, false | null | undefined>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== false && value !== undefined && value !== null)
        return value as Exclude<T, false | null | undefined>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw lastError instanceof Error ? lastError : new Error(`timed out waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function testWindow(id: number, title = `window ${id}`): WindowInfo {
  return {
    id,
    x: id % 100,
    y: 10,
    width: 640,
    height: 480,
    overrideRedirect: false,
    mapped: true,
    parent: 0,
    transientFor: 0,
    title,
    wmInstance: 'xterm',
    wmClass: 'XTerm',
  };
}

/** A raw TCP client that records every frame the proxy sends and when the proxy closes. */
export class RawPeer {
  readonly received: Message[] = [];
  closed = false;
  private readonly decoder = new FrameDecoder();

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const r of this.decoder.push(chunk)) if (r.ok) this.received.push(r.message);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
    });
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port }, () => resolve(new RawPeer(socket)));
      socket.once('error', reject);
    });
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  errorCode(): number | undefined {
    const err = this.received.find((m) => m.type === 'error');
    return err?.type === 'error' ? err.code : undefined;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * A raw peer through the handshake as agent `vmName`, offering versions 1 to
 * `maxVersion` (an older agent than ours), up to WELCOME. Returns the version
 * the proxy's CHALLENGE chose, for the test to check.
 */
export async function handshakenRawPeer(
  port: number,
  vmName: string,
  secret: Buffer,
  maxVersion: number,
): Promise<{ peer: RawPeer; version: number }> {
  const peer = await RawPeer.connect(port);
  const agentNonce = newNonce();
  peer.write(
    encodeMessage({
      type: 'hello',
      minVersion: 1,
      maxVersion,
      vmName,
      agentVersion: `v${maxVersion}`,
      agentNonce,
    }),
  );
  const challenge = await waitFor(() => peer.received.find((m) => m.type === 'challenge'), 2000, 'challenge');
  if (challenge.type !== 'challenge') throw new Error('no challenge');
  const ctx = { vmName, version: challenge.version, agentNonce, proxyNonce: challenge.proxyNonce };
  peer.write(encodeMessage({ type: 'auth', mac: computeAuthMac(secret, 'agent', ctx) }));
  await waitFor(() => peer.received.some((m) => m.type === 'welcome'), 2000, 'welcome');
  return { peer, version: challenge.version };
}
