import { execFileSync } from 'node:child_process';
import type { Probe } from './services.js';

/** A probe for a command-line tool the tests run (i3, shellcheck, systemd-analyze, ...). */
export function probeCommand(cmd: string, args: string[] = ['--version']): Probe {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 10_000 });
    return { available: true, reason: '' };
  } catch (err) {
    return {
      available: false,
      reason: `${cmd} ${args.join(' ')} failed: ${(err as Error).message.split('\n')[0]}`,
    };
  }
}

/** Mount namespaces with overlayfs need root and a kernel that allows them. */
export function probeMountNamespace(): Probe {
  if (process.getuid?.() !== 0) return { available: false, reason: 'not root (needs unshare --mount)' };
  return probeCommand('unshare', [
    '--mount',
    '--propagation',
    'private',
    'mount',
    '-t',
    'tmpfs',
    'none',
    '/mnt',
  ]);
}

/** Combines probes: available only if all are. */
export function allOf(...probes: Probe[]): Probe {
  const missing = probes.filter((p) => !p.available);
  return missing.length === 0
    ? { available: true, reason: '' }
    : { available: false, reason: missing.map((p) => p.reason).join('; ') };
}
