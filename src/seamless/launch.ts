import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeDomain } from '../libvirt/inspect.js';
import type { Hypervisor } from '../service/ports.js';
import type { Label } from '../spec/types.js';
import { TimeoutError, VmpError } from '../util/errors.js';
import { runtimeDir } from '../util/paths.js';
import { ATTACHED_LINE, clientFailure, xpraClientCommand, xpraClientEnv } from './client.js';

/**
 * Shows a running VM's app windows on the host display (docs/seamless.md):
 * waits for the guest's display bridge to open its end of the display
 * channel, then starts the xpra client, detached, on the channel's Unix
 * socket, and returns once it is attached. The client outlives the CLI, as
 * the SPICE viewer does.
 */

export interface SeamlessOptions {
  /** The host environment: only DISPLAY and XAUTHORITY are passed on to the client. */
  env: NodeJS.ProcessEnv;
  /** How long to wait for the guest's bridge to open the port (a cold boot under emulation takes a while). */
  guestTimeoutMs: number;
  /** How long to wait, once the client runs, for it to be attached (the guest starts its xpra server at the first attach). */
  attachTimeoutMs: number;
}

export interface SeamlessResult {
  pid: number;
  /** The client's log file (it repeats what the guest sent: read it as untrusted). */
  log: string;
  /** A client of ours was already attached to this VM; nothing new was started. */
  alreadyAttached: boolean;
}

/** `<runtime>/seamless/NAME`: the client's private HOME, its log and pid file; 0700. */
export function seamlessDir(name: string): string {
  return path.join(runtimeDir(), 'seamless', name);
}

export async function showSeamless(
  hypervisor: Hypervisor,
  name: string,
  label: Label,
  options: SeamlessOptions,
): Promise<SeamlessResult> {
  if (!options.env.DISPLAY) {
    throw new VmpError(
      `seamless display of '${name}' needs an X display (DISPLAY is not set; XWayland counts)`,
    );
  }
  let display = describeDomain(await hypervisor.xml(name)).display;
  if (!display) {
    throw new VmpError(
      `VM '${name}' has no display channel (defined before seamless windows existed): recreate it, or use SPICE (start --no-seamless)`,
    );
  }
  const socket = display.socket;
  const command = xpraClientCommand(name, label, socket);
  const dir = seamlessDir(name);
  const home = path.join(dir, 'home');
  await fs.mkdir(home, { recursive: true, mode: 0o700 });
  await fs.chmod(dir, 0o700);
  const pidFile = path.join(dir, 'client.pid');
  const logFile = path.join(dir, 'client.log');
  const running = await liveClient(pidFile, socket);
  if (running !== undefined) return { pid: running, log: logFile, alreadyAttached: true };

  await restrictSocket(socket);
  const guestDeadline = Date.now() + options.guestTimeoutMs;
  // libvirt records in the live XML whether the guest has the port open; without that attribute, do not wait.
  while (display?.guestConnected === false) {
    if (Date.now() > guestDeadline) {
      throw new TimeoutError(
        `the seamless display bridge of '${name}' did not open its port within ${Math.round(options.guestTimeoutMs / 1000)} s (is xpra in the guest?)`,
      );
    }
    await sleep(500);
    display = describeDomain(await hypervisor.xml(name)).display;
  }

  const log = await fs.open(logFile, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
  // no_new_privs: nothing it runs gains privileges (setuid helpers); no inheritable capabilities; no core
  // dumps of memory holding what the guest sent; a bounded number of open files.
  const child = spawn(
    'setpriv',
    [
      '--no-new-privs',
      '--inh-caps=-all',
      '--',
      'prlimit',
      '--core=0:0',
      '--nofile=1024:1024',
      '--',
      command.file,
      ...command.args,
    ],
    { env: xpraClientEnv(options.env, home), cwd: home, detached: true, stdio: ['ignore', log.fd, log.fd] },
  );
  await log.close();
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : null)));
    child.once('error', () => resolve(127));
  });
  const pid = child.pid;
  if (pid === undefined)
    throw new VmpError(`could not start the xpra client for '${name}' (is xpra installed?)`);
  const attachDeadline = Date.now() + options.attachTimeoutMs;
  for (;;) {
    const text = await fs.readFile(logFile, 'utf8').catch(() => '');
    if (ATTACHED_LINE.test(text)) break;
    const code = await Promise.race([exited, sleep(200).then(() => undefined)]);
    if (code !== undefined) {
      const final = await fs.readFile(logFile, 'utf8').catch(() => '');
      throw new VmpError(
        `seamless display of '${name}': the xpra client exited (code ${code}): ${clientFailure(final)} (log: ${logFile})`,
      );
    }
    if (Date.now() > attachDeadline) {
      process.kill(pid, 'SIGTERM');
      await Promise.race([exited, sleep(5000)]);
      if (child.exitCode === null) process.kill(pid, 'SIGKILL');
      throw new TimeoutError(
        `seamless display of '${name}': the xpra client was not attached within ${Math.round(options.attachTimeoutMs / 1000)} s; stopped it (log: ${logFile})`,
      );
    }
  }
  await fs.writeFile(pidFile, `${pid}\n`, { mode: 0o600 });
  child.unref();
  return { pid, log: logFile, alreadyAttached: false };
}

/**
 * QEMU's socket in bind mode accepts one client at a time; libvirt creates it
 * with a mode that follows QEMU's umask, owned by QEMU's user on the system
 * instance. Narrowed to 0600 so only its owner (and root) can connect.
 * Refuses anything but a socket.
 */
async function restrictSocket(socket: string): Promise<void> {
  const stat = await fs.lstat(socket).catch(() => undefined);
  if (!stat) throw new VmpError(`the display socket ${socket} is missing (is the VM running?)`);
  if (!stat.isSocket())
    throw new VmpError(`${socket} should be the VM's display socket but is another kind of file`);
  if ((stat.mode & 0o777) !== 0o600) {
    try {
      await fs.chmod(socket, 0o600);
    } catch (err) {
      throw new VmpError(
        `cannot restrict the display socket ${socket} to its owner (mode ${(stat.mode & 0o777).toString(8)}): ${(err as Error).message}`,
      );
    }
  }
}

/** The pid of a client still attached to `socket` from an earlier `start`, if there is one. */
async function liveClient(pidFile: string, socket: string): Promise<number | undefined> {
  const pid = Number((await fs.readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.split('\0').includes(`socket://${socket}`) ? pid : undefined;
}
