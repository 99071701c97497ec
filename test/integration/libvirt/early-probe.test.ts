import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { probeEarly, startProbe, takeEarlyProbe } from '../../../src/libvirt/early-open.js';
import { openHypervisor } from '../../../src/libvirt/index.js';
import { VirshHypervisor } from '../../../src/libvirt/virsh.js';

/**
 * The daemon's probe `start` and `list --json` run before loading their modules
 * (src/libvirt/early-open.ts): adopted once by openHypervisor against the real
 * libvirtd, and judged exactly as the probe openHypervisor runs itself: the same
 * error class and message for a dead socket, a hung daemon and a refusing URI.
 */
const SYSTEM = 'qemu:///system';
let dir: string;
let server: net.Server;
const held: net.Socket[] = [];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-probe-'));
  server = net.createServer((c) => {
    held.push(c);
    c.on('data', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(path.join(dir, 'hung.sock'), resolve));
});
afterAll(async () => {
  for (const c of held) c.destroy();
  await new Promise((resolve) => server.close(resolve));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('openHypervisor adopts the early probe for its URI, once, and the connection works', async () => {
  probeEarly(SYSTEM, {});
  const hv = await openHypervisor({ uri: SYSTEM });
  try {
    expect(takeEarlyProbe(SYSTEM)).toBeUndefined();
    expect(Array.isArray(await hv.listDomains())).toBe(true);
  } finally {
    await hv.close();
  }
});

/** What the probe throws, as `Class: message`, run by VirshHypervisor itself or adopted from startProbe. */
async function probeOutcome(uri: string, early: boolean, connect = 1500): Promise<string> {
  const virsh = new VirshHypervisor(uri, { call: 300_000, save: 300_000, connect });
  return virsh.probe(early ? startProbe(uri) : undefined).then(
    () => 'ok',
    (err: Error) => `${err.constructor.name}: ${err.message}`,
  );
}

test.each([
  ['a dead socket', () => `qemu+unix:///system?socket=${path.join(dir, 'dead.sock')}`],
  ['a hung daemon', () => `qemu+unix:///system?socket=${path.join(dir, 'hung.sock')}`],
  ['a URI libvirt refuses', () => 'qemu:///nonexistent'],
  ['the real daemon', () => SYSTEM],
])('%s: the same outcome adopted as run in place', async (_what, uriOf) => {
  const uri = uriOf();
  const inPlace = await probeOutcome(uri, false);
  const adopted = await probeOutcome(uri, true);
  expect(adopted).toBe(inPlace);
  if (uri === SYSTEM) expect(adopted).toBe('ok');
  else
    expect(adopted).toMatch(
      new RegExp(`^\\w+Error: connect to ${uri.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: `),
    );
});

test('a hung probe is killed at the connect deadline', async () => {
  const uri = `qemu+unix:///system?socket=${path.join(dir, 'hung.sock')}`;
  const probe = startProbe(uri);
  const started = Date.now();
  const outcome = await new VirshHypervisor(uri, { call: 300_000, save: 300_000, connect: 800 })
    .probe(probe)
    .then(
      () => 'ok',
      (err: Error) => err.constructor.name,
    );
  expect(outcome).toBe('TimeoutError');
  expect(Date.now() - started).toBeLessThan(3000);
  // Killed: the process ends without the daemon ever answering.
  expect((await probe.done).code).toBeNull();
});
