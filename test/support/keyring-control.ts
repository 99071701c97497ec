import { execFileSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { probeSecretService, type Probe } from './services.js';

/**
 * Drives the test session's real gnome-keyring-daemon from tests: lock the
 * login collection over D-Bus, unlock it again through the daemon's control
 * socket (the way pam_gnome_keyring does at login, since the D-Bus Unlock
 * method needs a prompt and tests run without a display), and find the
 * daemon's PID to freeze it.
 */

/**
 * A Secret Service that tests may lock and freeze: the one .ci/test-session.sh
 * starts on a private bus (it sets VMP_TEST_KEYRING_DISPOSABLE=1). Never a
 * developer's own desktop keyring.
 */
export function probeDisposableSecretService(): Probe {
  const probe = probeSecretService();
  if (!probe.available) return probe;
  if (process.env.VMP_TEST_KEYRING_DISPOSABLE !== '1') {
    return {
      available: false,
      reason:
        'the Secret Service is not the disposable one of .ci/test-session.sh (VMP_TEST_KEYRING_DISPOSABLE unset)',
    };
  }
  if (!process.env.GNOME_KEYRING_CONTROL) {
    return {
      available: false,
      reason: 'GNOME_KEYRING_CONTROL unset: cannot unlock the keyring after locking it',
    };
  }
  return probe;
}

/** The password .ci/test-session.sh creates the login keyring with. */
export const CI_KEYRING_PASSWORD = 'vmp-ci-keyring';
export const LOGIN_COLLECTION = '/org/freedesktop/secrets/collection/login';

function gdbus(args: string[]): string {
  return execFileSync('gdbus', ['call', '--session', ...args], {
    encoding: 'utf8',
    timeout: 10_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export function lockLoginCollection(): void {
  gdbus([
    '--dest',
    'org.freedesktop.secrets',
    '--object-path',
    '/org/freedesktop/secrets',
    '--method',
    'org.freedesktop.Secret.Service.Lock',
    `['${LOGIN_COLLECTION}']`,
  ]);
}

export function isLoginCollectionLocked(): boolean {
  const out = gdbus([
    '--dest',
    'org.freedesktop.secrets',
    '--object-path',
    LOGIN_COLLECTION,
    '--method',
    'org.freedesktop.DBus.Properties.Get',
    'org.freedesktop.Secret.Collection',
    'Locked',
  ]);
  if (/true/.test(out)) return true;
  if (/false/.test(out)) return false;
  throw new Error(`unexpected Locked property reply: ${out.trim()}`);
}

/** PID of the process owning org.freedesktop.secrets on the session bus. */
export function secretServicePid(): number {
  const out = gdbus([
    '--dest',
    'org.freedesktop.DBus',
    '--object-path',
    '/org/freedesktop/DBus',
    '--method',
    'org.freedesktop.DBus.GetConnectionUnixProcessID',
    'org.freedesktop.secrets',
  ]);
  const m = /uint32 (\d+)/.exec(out);
  if (!m) throw new Error(`unexpected GetConnectionUnixProcessID reply: ${out.trim()}`);
  return Number(m[1]);
}

// gnome-keyring's daemon/control/gkd-control-codes.h
const OP_UNLOCK = 1;
const RESULT_NAMES = ['OK', 'DENIED', 'FAILED', 'NO_DAEMON'];

/**
 * Unlocks the login keyring with its password through $GNOME_KEYRING_CONTROL/control:
 * one credentials byte, then a big-endian packet [length][op][len][password].
 */
export function unlockLoginKeyring(password = CI_KEYRING_PASSWORD): Promise<void> {
  const controlDir = process.env.GNOME_KEYRING_CONTROL;
  if (!controlDir)
    return Promise.reject(new Error('GNOME_KEYRING_CONTROL is unset; run under .ci/test-session.sh'));
  const pw = Buffer.from(password, 'utf8');
  const packet = Buffer.alloc(1 + 12 + pw.length);
  packet.writeUInt8(0, 0);
  packet.writeUInt32BE(12 + pw.length, 1);
  packet.writeUInt32BE(OP_UNLOCK, 5);
  packet.writeUInt32BE(pw.length, 9);
  pw.copy(packet, 13);
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(path.join(controlDir, 'control'));
    const chunks: Buffer[] = [];
    sock.setTimeout(10_000, () =>
      sock.destroy(new Error('gnome-keyring control socket did not answer in 10 s')),
    );
    sock.on('connect', () => sock.write(packet));
    sock.on('data', (c: Buffer) => {
      chunks.push(c);
      const reply = Buffer.concat(chunks);
      if (reply.length < 8) return;
      sock.destroy();
      const result = reply.readUInt32BE(4);
      if (reply.readUInt32BE(0) === 8 && result === 0) resolve();
      else reject(new Error(`gnome-keyring unlock failed: ${RESULT_NAMES[result] ?? `code ${result}`}`));
    });
    sock.on('error', reject);
    sock.on('close', () => reject(new Error('gnome-keyring control socket closed without a reply')));
  });
}

/** secret-tool talks D-Bus itself: proves the secret sits in the Secret Service, not a fallback store. */
export function secretToolLookup(service: string, account: string): string | null {
  try {
    return execFileSync('secret-tool', ['lookup', 'service', service, 'username', account], {
      encoding: 'utf8',
      timeout: 10_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  } catch {
    return null;
  }
}
