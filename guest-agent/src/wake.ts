import fs from 'node:fs';

/**
 * The wake channel (docs/protocol.md, "Resume"): a virtio-serial port the host
 * writes one byte to right after the VM resumes (from saved state, a snapshot
 * with memory, or a pause). A resumed guest cannot tell by itself: its clock
 * and its sockets look as they were, and its connection to the proxy died
 * with the QEMU process that was saved. The read blocks (in libuv's thread
 * pool) until the host writes, so the agent has no timer for this.
 */
export const WAKE_PORT = '/dev/virtio-ports/org.vm-provisioner.wake.0';

export interface WakeWatch {
  stop(): void;
}

export function watchWake(
  onWake: () => void,
  log: (line: string) => void,
  file: string = WAKE_PORT,
): WakeWatch {
  let stopped = false;
  let fd: number | undefined;
  const buffer = Buffer.alloc(64);
  const read = (): void => {
    if (stopped || fd === undefined) return;
    fs.read(fd, buffer, 0, buffer.length, null, (err, n) => {
      if (stopped) return;
      if (err || n === 0) fs.close(fd!, () => undefined);
      if (err) {
        log(`wake channel ${file}: ${err.message}; a resume is noticed at the next heartbeat`);
        return;
      }
      // End of file: nothing on the host side (not our pipe); reading on would spin.
      if (n === 0) {
        log(`wake channel ${file}: the host end is not connected; a resume is noticed at the next heartbeat`);
        return;
      }
      onWake();
      read();
    });
  };
  fs.open(file, 'r', (err, opened) => {
    if (err) {
      log(
        `no wake channel (${err.code ?? err.message} on ${file}); a resume is noticed at the next heartbeat`,
      );
      return;
    }
    if (stopped) {
      fs.close(opened, () => undefined);
      return;
    }
    fd = opened;
    read();
  });
  return {
    stop(): void {
      stopped = true;
      // A read blocked in the thread pool cannot be cancelled; process exit ends it.
    },
  };
}
