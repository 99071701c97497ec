import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';

/**
 * The wake channel (docs/protocol.md, "Resume"): a virtio-serial port the host
 * writes one byte to right after the VM resumes (from saved state, a snapshot
 * with memory, or a pause). A resumed guest cannot tell by itself: its clock
 * and its sockets look as they were, and its connection to the proxy died
 * with the QEMU process that was saved.
 *
 * The port is read by a `cat` child whose stdout is a pipe Node polls, not by
 * `fs.read`: that read blocks a libuv thread-pool thread until the host
 * writes, nothing can cancel it, and Node's exit joins the pool, so an agent
 * told to stop (SIGTERM at every guest shutdown) hung until systemd killed it
 * 90 s later. A child is killed at once, and the agent still has no timer for this.
 */
export const WAKE_PORT = '/dev/virtio-ports/org.vm-provisioner.wake.0';

/** coreutils' `cat` writes each read through at once (no buffering across reads). */
const READER = '/usr/bin/cat';

/** What a failing reader says on stderr is logged, bounded. */
const MAX_READER_ERROR = 512;

export interface WakeWatch {
  stop(): void;
}

export function watchWake(
  onWake: () => void,
  log: (line: string) => void,
  file: string = WAKE_PORT,
): WakeWatch {
  let stopped = false;
  let reader: ChildProcess | undefined;
  // Checked here rather than left to the reader, for one clear line on the common case: a guest without the port.
  fs.access(file, fs.constants.R_OK, (err) => {
    if (err) {
      log(
        `no wake channel (${err.code ?? err.message} on ${file}); a resume is noticed at the next heartbeat`,
      );
      return;
    }
    if (stopped) return;
    const child = spawn(READER, [file], { stdio: ['ignore', 'pipe', 'pipe'] });
    reader = child;
    let stderr = '';
    child.stdout.on('data', () => {
      if (!stopped) onWake();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < MAX_READER_ERROR) stderr += chunk.toString('utf8').slice(0, MAX_READER_ERROR);
    });
    child.on('error', (e) => {
      if (!stopped) log(`wake channel ${file}: ${e.message}; a resume is noticed at the next heartbeat`);
    });
    child.on('close', (code) => {
      if (stopped || code === null) return;
      // End of file: nothing on the host side (not our pipe); reading on would spin.
      if (code === 0) {
        log(`wake channel ${file}: the host end is not connected; a resume is noticed at the next heartbeat`);
        return;
      }
      const why = stderr.trim().split('\n')[0] || `reader exited with ${code}`;
      log(`wake channel ${file}: ${why}; a resume is noticed at the next heartbeat`);
    });
  });
  return {
    stop(): void {
      stopped = true;
      reader?.kill('SIGKILL');
    },
  };
}
