import os from 'node:os';
import path from 'node:path';

/** XDG base directories, resolved per call so tests can point HOME/XDG_* elsewhere. */
function xdg(envVar: string, fallback: string[]): string {
  const value = process.env[envVar];
  // The XDG spec says relative values are invalid and must be ignored.
  if (value && path.isAbsolute(value)) return value;
  return path.join(os.homedir(), ...fallback);
}

export const APP_DIR_NAME = 'vm-provisioner';

/** The user's defaults file, beside the VMs' config files (src/spec/defaults-file.ts reads it). */
export const DEFAULTS_FILE_NAME = 'defaults.toml';

/** $XDG_CONFIG_HOME itself (default ~/.config): systemd's user units live under it too. */
export function xdgConfigHome(): string {
  return xdg('XDG_CONFIG_HOME', ['.config']);
}

export function configDir(): string {
  return path.join(xdg('XDG_CONFIG_HOME', ['.config']), APP_DIR_NAME);
}

export function cacheDir(): string {
  return path.join(xdg('XDG_CACHE_HOME', ['.cache']), APP_DIR_NAME);
}

export function dataDir(): string {
  return path.join(xdg('XDG_DATA_HOME', ['.local', 'share']), APP_DIR_NAME);
}

/** Per-user runtime dir for sockets; falls back to a private dir under /tmp keyed by uid. */
export function runtimeDir(): string {
  const value = process.env.XDG_RUNTIME_DIR;
  if (value && path.isAbsolute(value)) return path.join(value, APP_DIR_NAME);
  return path.join(os.tmpdir(), `${APP_DIR_NAME}-${process.getuid?.() ?? 'user'}`);
}

/** Per-user state worth keeping across runs (install logs, create journals): $XDG_STATE_HOME/vm-provisioner. */
export function stateDir(): string {
  return path.join(xdg('XDG_STATE_HOME', ['.local', 'state']), APP_DIR_NAME);
}
