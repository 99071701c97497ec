import { execFileSync } from 'node:child_process';

/**
 * Integration tests run against real services (libvirtd, a Secret Service, an
 * X server). Where one is truly absent a test suite is skipped with a printed
 * reason; under CI=true an absent service is a failure, never a silent skip.
 */

export interface Probe {
  available: boolean;
  reason: string;
}

const isCi = (): boolean => process.env.CI === 'true' || process.env.CI === '1';

function run(cmd: string, args: string[], env?: NodeJS.ProcessEnv): string {
  return execFileSync(cmd, args, {
    encoding: 'utf8',
    timeout: 60_000,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: env ?? process.env,
  });
}

export const LIBVIRT_TEST_URI = process.env.VMP_TEST_LIBVIRT_URI ?? 'qemu:///system';

export function probeLibvirt(uri = LIBVIRT_TEST_URI): Probe {
  try {
    run('virsh', ['-c', uri, 'version', '--daemon']);
    return { available: true, reason: '' };
  } catch (err) {
    return { available: false, reason: `libvirtd at ${uri} not reachable: ${firstLine(err)}` };
  }
}

export function probeSecretService(): Probe {
  if (!process.env.DBUS_SESSION_BUS_ADDRESS) {
    return { available: false, reason: 'no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS unset)' };
  }
  try {
    const out = run('dbus-send', [
      '--session',
      '--print-reply',
      '--dest=org.freedesktop.DBus',
      '/org/freedesktop/DBus',
      'org.freedesktop.DBus.NameHasOwner',
      'string:org.freedesktop.secrets',
    ]);
    if (/boolean true/.test(out)) return { available: true, reason: '' };
    return { available: false, reason: 'nothing owns org.freedesktop.secrets on the session bus' };
  } catch (err) {
    return { available: false, reason: `session bus not answering: ${firstLine(err)}` };
  }
}

/** The X display .ci/run starts for tests (Xvfb); tests never use the user's own DISPLAY. */
export function probeXDisplay(): Probe & { display: string } {
  const display = process.env.VMP_TEST_DISPLAY ?? '';
  if (!display) return { available: false, reason: 'VMP_TEST_DISPLAY unset (no test X server)', display };
  try {
    run('xdpyinfo', [], { ...process.env, DISPLAY: display });
    return { available: true, reason: '', display };
  } catch (err) {
    return { available: false, reason: `X server ${display} not answering: ${firstLine(err)}`, display };
  }
}

/**
 * Returns `describe` when the service is there, otherwise `describe.skip` after
 * printing why; under CI it throws so the run fails. A skipped describe body
 * still runs, so touch services only inside hooks and tests.
 */
export function describeWith(probe: Probe, what: string): jest.Describe {
  if (probe.available) return describe;
  const message = `${what}: ${probe.reason}`;
  if (isCi()) throw new Error(`required service missing under CI: ${message}`);
  process.stderr.write(`SKIPPED ${message}\n`);
  return describe.skip;
}

function firstLine(err: unknown): string {
  const e = err as { stderr?: string; message?: string };
  const text = (e.stderr && e.stderr.trim()) || e.message || String(err);
  return text.split('\n')[0] ?? text;
}
