import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import {
  IDENTITY_READY_LINE,
  MAX_IDENTITY_LINE_BYTES,
  parseIdentityLine,
  type CloneIdentity,
} from '../../src/protocol/identity.js';

/**
 * A clone source's agent (VMP_AWAIT_IDENTITY=1) connects nowhere until the
 * host has given its clone an identity on the wake channel (docs/protocol.md,
 * "Identity of a clone"): the saved memory every clone starts from holds the
 * source's name and secret, which no clone may use.
 */

export type { CloneIdentity } from '../../src/protocol/identity.js';

/** Splits bytes into lines; an over-long line is dropped whole. Pure, so it is tested without a port. */
export class IdentityLines {
  private pending = Buffer.alloc(0);
  private overlong = false;

  /** Feeds bytes; returns the identity of the first valid line, and calls `reject` for every other line. */
  push(chunk: Buffer, reject: (why: string) => void): CloneIdentity | undefined {
    this.pending = Buffer.concat([this.pending, chunk]);
    for (;;) {
      const nl = this.pending.indexOf(0x0a);
      if (nl < 0) {
        if (this.pending.length >= MAX_IDENTITY_LINE_BYTES) {
          this.overlong = true;
          this.pending = Buffer.alloc(0);
        }
        return undefined;
      }
      const line = this.pending.subarray(0, nl).toString('latin1');
      this.pending = this.pending.subarray(nl + 1);
      if (this.overlong || nl + 1 > MAX_IDENTITY_LINE_BYTES) {
        this.overlong = false;
        reject(`a line over ${MAX_IDENTITY_LINE_BYTES} bytes`);
        continue;
      }
      // Wake bytes ('w') sent before the identity carry no line of their own.
      const trimmed = line.replace(/^w+/, '');
      if (trimmed === '') continue;
      const parsed = parseIdentityLine(trimmed);
      if (typeof parsed !== 'string') return parsed;
      reject(parsed);
    }
  }
}

/**
 * Opens the wake port read-write, says it is waiting (IDENTITY_READY_LINE),
 * and reads until a valid identity line arrives. The port is closed again,
 * so the ordinary wake watch can open it afterwards (a virtio-serial port
 * has one opener at a time).
 */
export async function awaitIdentity(port: string, log: (line: string) => void): Promise<CloneIdentity> {
  // Dirty pages saved in the ready state would be written out again by every clone, into its overlay.
  await flushFileSystems(log);
  const handle = await fs.open(port, constants.O_RDWR);
  try {
    await handle.write(Buffer.from(IDENTITY_READY_LINE, 'ascii'));
    const lines = new IdentityLines();
    const buffer = Buffer.alloc(MAX_IDENTITY_LINE_BYTES);
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) throw new Error(`wake channel ${port} closed before an identity arrived`);
      const identity = lines.push(Buffer.from(buffer.subarray(0, bytesRead)), (why) =>
        log(`wake channel: ignored ${why}`),
      );
      if (identity) return identity;
    }
  } finally {
    await handle.close();
  }
}

async function flushFileSystems(log: (line: string) => void): Promise<void> {
  await new Promise<void>((resolve) => {
    execFile('sync', [], { timeout: 60_000 }, (err) => {
      if (err) log(`sync before the ready state failed: ${err.message}`);
      resolve();
    });
  });
}

/**
 * What the agent itself can re-seed as the session user: the kernel's RNG
 * (any user may write /dev/urandom; the bytes are mixed into the pool, so
 * each clone's random output diverges from the source's and every other
 * clone's). The host name and machine ID belong to root: they are asked of
 * vmp-apply-identity (a root path unit) through `requestDir`, when present.
 */
export async function applyIdentity(
  identity: CloneIdentity,
  log: (line: string) => void,
  paths: { urandom?: string; requestDir?: string } = {},
): Promise<void> {
  const urandom = paths.urandom ?? '/dev/urandom';
  try {
    await fs.writeFile(urandom, Buffer.from(identity.seed, 'hex'), { flag: 'a' });
  } catch (err) {
    log(`could not seed ${urandom}: ${(err as Error).message}`);
  }
  const dir = paths.requestDir ?? IDENTITY_REQUEST_DIR;
  try {
    const tmp = `${dir}/request.tmp`;
    await fs.writeFile(tmp, `name=${identity.name}\nmachine-id=${identity.machineId}\n`, { mode: 0o600 });
    await fs.rename(tmp, `${dir}/request`);
  } catch (err) {
    log(
      `host name and machine ID not re-seeded (${(err as NodeJS.ErrnoException).code ?? String(err)} on ${dir})`,
    );
  }
}

/**
 * A clone's reconnect schedule: its NIC is hot-plugged just before the identity arrives, so its first
 * attempts can find no route yet (the guest is still bringing the new NIC up). Retrying every
 * 100-300 ms for the first two seconds instead of the usual 1 s, 2 s, 4 s saves seconds of a disposable's start; it backs off as
 * usual after that.
 */
export const CLONE_BACKOFF = { initialMs: 100, maxMs: 30_000, factor: 1.25, jitter: 0.2 };

/** Made by vmp-apply-config for a clone source, owned by the agent's user; watched by vmp-apply-identity.path. */
export const IDENTITY_REQUEST_DIR = '/run/vmp-identity';
