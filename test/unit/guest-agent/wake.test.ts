import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { watchWake } from '../../../guest-agent/src/wake.js';

/** A FIFO stands in for the virtio-serial port: both block a reader until the other side writes. */
describe('watchWake', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-wake-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('calls back once per write, and stops with one log line when the host end goes away', async () => {
    const fifo = path.join(dir, 'port');
    execFileSync('mkfifo', [fifo]);
    const logs: string[] = [];
    let wakes = 0;
    let woke: () => void = () => undefined;
    const watch = watchWake(
      () => {
        wakes++;
        woke();
      },
      (line) => logs.push(line),
      fifo,
    );
    const writer = await fs.promises.open(fifo, 'w');
    const first = new Promise<void>((r) => (woke = r));
    await writer.write('w');
    await first;
    expect(wakes).toBe(1);
    const second = new Promise<void>((r) => (woke = r));
    await writer.write('w');
    await second;
    expect(wakes).toBe(2);
    await writer.close();
    const deadline = Date.now() + 5000;
    while (logs.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(logs).toEqual([
      `wake channel ${fifo}: the host end is not connected; a resume is noticed at the next heartbeat`,
    ]);
    watch.stop();
  });

  test('a guest without the port logs once and carries on', async () => {
    const logs: string[] = [];
    watchWake(
      () => undefined,
      (line) => logs.push(line),
      path.join(dir, 'absent'),
    );
    const deadline = Date.now() + 5000;
    while (logs.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(logs).toEqual([
      `no wake channel (ENOENT on ${path.join(dir, 'absent')}); a resume is noticed at the next heartbeat`,
    ]);
  });
});
