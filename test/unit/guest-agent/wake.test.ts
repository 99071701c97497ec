import { execFileSync, spawn } from 'node:child_process';
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

  test('a process watching a port the host never writes to still exits at once when told to stop', async () => {
    // The port stays open and silent (a FIFO with a writer that never writes): a guest shutdown's SIGTERM
    // must not wait on the pending read (an fs.read did, until systemd's 90 s stop timeout).
    const fifo = path.join(dir, 'port');
    execFileSync('mkfifo', [fifo]);
    const writer = spawn('/bin/sh', ['-c', `exec sleep 60 > '${fifo}'`], { stdio: 'ignore' });
    try {
      const script = [
        `import { watchWake } from ${JSON.stringify(path.resolve('guest-agent/src/wake.ts'))};`,
        `const watch = watchWake(() => {}, (l) => console.log(l), ${JSON.stringify(fifo)});`,
        `setTimeout(() => { watch.stop(); process.exit(0); }, 300);`,
      ].join('\n');
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      const code = await new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          resolve(null);
        }, 15_000);
        child.on('exit', (c) => {
          clearTimeout(timer);
          resolve(c);
        });
      });
      expect({ code, output }).toEqual({ code: 0, output: '' });
    } finally {
      writer.kill('SIGKILL');
    }
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
