import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { InputError } from '../util/errors.js';
import { APP_DIR_NAME } from '../util/paths.js';

/**
 * Where an install's serial console log lives: $XDG_STATE_HOME/vm-provisioner/logs
 * (default ~/.local/state/...). It is state worth keeping after a failure,
 * not cache. libvirtd opens the file and hands QEMU the descriptor, so the
 * directory need not be reachable by the QEMU user.
 */
export function installLogDir(): string {
  const value = process.env.XDG_STATE_HOME;
  const base = value && path.isAbsolute(value) ? value : path.join(os.homedir(), '.local', 'state');
  return path.join(base, APP_DIR_NAME, 'logs');
}

/**
 * Makes the log directory (mode 0700) before a domain whose serial console logs
 * into it is defined: virtlogd creates the file but not its directory, so
 * without it a start by virsh or virt-manager would fail.
 */
export async function ensureLogDir(): Promise<void> {
  await fs.mkdir(installLogDir(), { recursive: true, mode: 0o700 });
}

/**
 * `<installLogDir()>/<vmName>-console.log`: an installed VM's serial console,
 * written by virtlogd (the domain's `<serial><log file=... append='on'/>`).
 */
export function consoleLogPath(vmName: string): string {
  return installLogPath(vmName).replace(/-install\.log$/, '-console.log');
}

/** `<installLogDir()>/<vmName>-install.log`; the name must be a plain file-name-safe VM name. */
export function installLogPath(vmName: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(vmName)) {
    throw new InputError(
      `VM name ${JSON.stringify(vmName)} must be 1-63 characters of [A-Za-z0-9._-], starting with a letter or digit`,
    );
  }
  return path.join(installLogDir(), `${vmName}-install.log`);
}
