import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  connectTimeoutFromEnv,
  DEFAULT_CONNECT_TIMEOUT_MS,
  openHypervisor,
} from '../../../src/libvirt/index.js';
import { InputError, ServiceUnavailableError, TimeoutError } from '../../../src/util/errors.js';

/**
 * Issue 20 item 10: a libvirtd that accepts the connection and never answers
 * (a real unix socket), and a dead one (a path nothing listens on), reported
 * within the connect deadline whatever the call deadline is.
 */

let dir: string;
let server: net.Server;
let hungUri: string;
let deadUri: string;
const sockets: net.Socket[] = [];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-virt-hung-'));
  const sock = path.join(dir, 'hung.sock');
  server = net.createServer((c) => {
    sockets.push(c);
    c.on('data', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(sock, resolve));
  hungUri = `qemu+unix:///system?socket=${sock}`;
  deadUri = `qemu+unix:///system?socket=${path.join(dir, 'dead.sock')}`;
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((resolve) => server.close(resolve));
  fs.rmSync(dir, { recursive: true, force: true });
});

describe.each(['virsh', 'auto'] as const)('backend %s', (backend) => {
  test('a hung daemon is a TimeoutError at the connect deadline, even with 300 s call deadlines', async () => {
    const started = Date.now();
    const err = await openHypervisor({
      uri: hungUri,
      backend,
      timeouts: { call: 300_000, save: 300_000, connect: 1500 },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    const took = Date.now() - started;
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as Error).message).toBe(
      `connect to ${hungUri}: libvirtd did not answer within 1500 ms; it is hung or overloaded: restart it (systemctl restart libvirtd or virtqemud), or raise VMP_LIBVIRT_CONNECT_TIMEOUT_MS`,
    );
    expect(took).toBeGreaterThanOrEqual(1400);
    expect(took).toBeLessThan(4500);
  });

  test('a dead daemon is a ServiceUnavailableError at once', async () => {
    const started = Date.now();
    await expect(
      openHypervisor({ uri: deadUri, backend, timeouts: { call: 300_000, save: 300_000 } }),
    ).rejects.toThrow(ServiceUnavailableError);
    expect(Date.now() - started).toBeLessThan(3000);
  });
});

test('VMP_LIBVIRT_CONNECT_TIMEOUT_MS: default 5 s, a whole number of ms, else a one-line InputError', () => {
  expect(DEFAULT_CONNECT_TIMEOUT_MS).toBe(5000);
  expect(connectTimeoutFromEnv({})).toBe(5000);
  expect(connectTimeoutFromEnv({ VMP_LIBVIRT_CONNECT_TIMEOUT_MS: '' })).toBe(5000);
  expect(connectTimeoutFromEnv({ VMP_LIBVIRT_CONNECT_TIMEOUT_MS: '250' })).toBe(250);
  for (const bad of ['0', '-1', '1.5', '5s', '10000000', ' 5']) {
    expect(() => connectTimeoutFromEnv({ VMP_LIBVIRT_CONNECT_TIMEOUT_MS: bad })).toThrow(InputError);
  }
  expect(() => connectTimeoutFromEnv({ VMP_LIBVIRT_CONNECT_TIMEOUT_MS: '5s' })).toThrow(
    'VMP_LIBVIRT_CONNECT_TIMEOUT_MS="5s" is invalid: it must be a whole number of milliseconds from 1 to 9999999',
  );
});
