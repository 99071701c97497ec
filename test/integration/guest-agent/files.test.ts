import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { jest } from '@jest/globals';
import { ControlServer } from '../../../src/proxy/control-socket.js';
import { ProxyServer, type ProxyEvent, type WritebackEvent } from '../../../src/proxy/server.js';
import { renderAgentConf } from '../../../src/render/agent-config.js';
import { copyToVm, openInVm } from '../../../src/service/files.js';
import { bundleAgent } from '../../support/agent-bundle.js';
import { EventLog } from '../../support/events.js';
import { describeWith, probeXDisplay } from '../../support/services.js';
import { XSession } from '../../support/xsession.js';

jest.setTimeout(60_000);

/**
 * `open` and `copy-to-vm` through the real proxy (agent link and control
 * socket) to the real guest agent (the shipped bundle, its own process) on the
 * test X server. The agent's HOME and XDG_RUNTIME_DIR are directories of the
 * test; its PATH starts with a directory holding an `xdg-open` that records
 * what it was asked to open, and what it could read there, as a guest's
 * default handler would be started.
 */
const x = probeXDisplay();
const VM = 'vmp-test-files';
const SECRET_HEX = '5eed'.repeat(16);

describeWith(x, 'files through the proxy to a real agent')('open and copy-to-vm', () => {
  let dir: string;
  let home: string;
  let runtime: string;
  let hostDir: string;
  let session: XSession;
  let proxy: ProxyServer;
  let control: ControlServer;
  let agent: ChildProcess;
  let agentLog = '';
  const log = new EventLog<ProxyEvent>();
  const socket = (): { socketPath: string; waitMs: number } => ({
    socketPath: control.socketPath,
    waitMs: 20_000,
  });
  const opened = (): string => fs.readFileSync(path.join(dir, 'xdg-open.log'), 'utf8');

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-files-'));
    home = path.join(dir, 'home');
    runtime = path.join(dir, 'run');
    hostDir = path.join(dir, 'host');
    const bin = path.join(dir, 'bin');
    for (const d of [home, runtime, hostDir, bin]) fs.mkdirSync(d, { mode: 0o700 });
    fs.writeFileSync(
      path.join(bin, 'xdg-open'),
      `#!/bin/sh\nprintf '%s\\n' "$1" >> '${dir}/xdg-open.log'\ncat "$1" >> '${dir}/xdg-open.log'\nprintf '\\n' >> '${dir}/xdg-open.log'\n`,
      { mode: 0o755 },
    );
    fs.writeFileSync(path.join(dir, 'xdg-open.log'), '');
    const bundle = path.join(dir, 'vm-guest-agent.cjs');
    await bundleAgent(bundle);
    fs.writeFileSync(path.join(dir, 'agent.secret'), `${SECRET_HEX}\n`, { mode: 0o600 });
    session = new XSession(x.display);
    await session.startI3();
    proxy = new ProxyServer({
      listen: [{ host: '127.0.0.1', port: 0 }],
      lookupSecret: async (name) => (name === VM ? Buffer.from(SECRET_HEX, 'hex') : null),
      log: () => undefined,
    });
    const [bound] = await proxy.start();
    proxy.on('event', log.push);
    control = new ControlServer(proxy, {
      socketPath: path.join(dir, 'ctl', 'proxy.sock'),
      log: () => undefined,
    });
    await control.start();
    fs.writeFileSync(
      path.join(dir, 'agent.conf'),
      renderAgentConf({
        vmName: VM,
        proxyHost: '127.0.0.1',
        proxyPort: bound!.port,
        secretFile: path.join(dir, 'agent.secret'),
      }),
    );
    agent = spawn(process.execPath, [bundle], {
      env: {
        PATH: `${bin}:${process.env.PATH}`,
        HOME: home,
        XDG_RUNTIME_DIR: runtime,
        VMP_AGENT_CONFIG: path.join(dir, 'agent.conf'),
        VMP_DISPLAY: x.display,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    agent.stderr?.on('data', (d: Buffer) => (agentLog += d.toString()));
    await log.waitFor((e) => e.type === 'agent-connected', `agent-connected; agent log: ${agentLog}`, 20_000);
  });

  afterAll(async () => {
    if (agent && agent.exitCode === null) {
      const exited = new Promise((r) => agent.once('exit', r));
      agent.kill('SIGTERM');
      await exited;
    }
    await control?.close();
    await proxy?.close();
    await session?.stop();
    if (dir) {
      // Read-only directories the agent made: writable again so they can be removed.
      fs.chmodSync(dir, 0o700);
      for (const d of fs.existsSync(path.join(runtime, 'vm-provisioner', 'open'))
        ? fs.readdirSync(path.join(runtime, 'vm-provisioner', 'open'))
        : [])
        fs.chmodSync(path.join(runtime, 'vm-provisioner', 'open', d), 0o700);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  const hostFile = (name: string, content: Buffer | string): string => {
    const file = path.join(hostDir, name);
    fs.writeFileSync(file, content);
    return file;
  };

  test('copy-to-vm lands the exact bytes in ~/Incoming/host (0700), and a clash gets a numbered name', async () => {
    const big = randomBytes(3 * 1024 * 1024 + 17); // several 256 KiB chunks and more than the send window
    const file = hostFile('report.bin', big);
    const first = await copyToVm(VM, file, socket());
    expect(first).toBe(path.join(home, 'Incoming', 'host', 'report.bin'));
    expect(fs.readFileSync(first).equals(big)).toBe(true);
    expect(fs.statSync(path.join(home, 'Incoming', 'host')).mode & 0o777).toBe(0o700);
    expect(fs.statSync(first).mode & 0o777).toBe(0o600);

    fs.writeFileSync(file, 'second');
    const second = await copyToVm(VM, file, socket());
    expect(second).toBe(path.join(home, 'Incoming', 'host', 'report (1).bin'));
    expect(fs.readFileSync(second, 'utf8')).toBe('second');
    // Never overwritten.
    expect(fs.readFileSync(first).equals(big)).toBe(true);
    expect(fs.readdirSync(path.join(home, 'Incoming', 'host')).sort()).toEqual([
      'report (1).bin',
      'report.bin',
    ]);
  });

  test('open puts exactly one read-only file in a fresh directory only the user can read, and runs xdg-open on it', async () => {
    const file = hostFile('letter.txt', 'dear guest');
    const result = await openInVm(VM, file, socket());
    const shareDir = path.dirname(result.guestPath);
    expect(path.dirname(shareDir)).toBe(path.join(runtime, 'vm-provisioner', 'open'));
    expect(path.basename(result.guestPath)).toBe('letter.txt');
    expect(fs.readdirSync(shareDir)).toEqual(['letter.txt']);
    expect(fs.statSync(result.guestPath).mode & 0o777).toBe(0o444);
    expect(fs.statSync(shareDir).mode & 0o777).toBe(0o500);
    expect(fs.readFileSync(result.guestPath, 'utf8')).toBe('dear guest');
    expect(result.pid).toBeGreaterThan(0);
    // The handler was started on that path and could read it.
    await waitUntil(
      () => opened().includes(`${result.guestPath}\ndear guest\n`),
      `xdg-open log: ${opened()}`,
    );
    // A second open gets its own directory.
    const again = await openInVm(VM, file, socket());
    expect(path.dirname(again.guestPath)).not.toBe(shareDir);
  });

  test('--writeback replaces exactly that host file with each saved version, and nothing else', async () => {
    const file = hostFile('notes.txt', 'v1');
    const bystander = hostFile('other.txt', 'untouched');
    const before = fs.readdirSync(hostDir).sort();
    const controller = new AbortController();
    const events: WritebackEvent[] = [];
    let guestPath = '';
    const done = openInVm(VM, file, {
      ...socket(),
      writeback: true,
      signal: controller.signal,
      onOpened: (o) => (guestPath = o.guestPath),
      onWriteback: (e) => events.push(e),
    });
    await waitUntil(() => guestPath !== '', 'opened');
    expect(fs.statSync(guestPath).mode & 0o777).toBe(0o644);
    // An editor saving by writing a new file and renaming it over the old one.
    fs.writeFileSync(`${guestPath}.tmp`, 'v2 from the guest');
    fs.renameSync(`${guestPath}.tmp`, guestPath);
    await waitUntil(() => events.some((e) => e.type === 'written'), `a writeback; agent log: ${agentLog}`);
    expect(fs.readFileSync(file, 'utf8')).toBe('v2 from the guest');
    // A save in place.
    fs.writeFileSync(guestPath, 'v3');
    await waitUntil(() => events.filter((e) => e.type === 'written').length === 2, 'a second writeback');
    expect(fs.readFileSync(file, 'utf8')).toBe('v3');
    expect(fs.readFileSync(bystander, 'utf8')).toBe('untouched');
    // No temporary file left next to it.
    expect(fs.readdirSync(hostDir).sort()).toEqual(before);
    controller.abort();
    await expect(done).resolves.toMatchObject({ guestPath, end: { type: 'detached' } });
    // Detached: the guest copy is read-only again and later saves do not come back.
    await waitUntil(() => (fs.statSync(guestPath).mode & 0o777) === 0o444, 'the copy made read-only');
  });

  test('--writeback refuses (and ends) when the host file changed meanwhile, and keeps the host version', async () => {
    const file = hostFile('draft.txt', 'v1');
    const events: WritebackEvent[] = [];
    let guestPath = '';
    const done = openInVm(VM, file, {
      ...socket(),
      writeback: true,
      onOpened: (o) => (guestPath = o.guestPath),
      onWriteback: (e) => events.push(e),
    });
    await waitUntil(() => guestPath !== '', 'opened');
    fs.writeFileSync(file, 'changed on the host');
    fs.writeFileSync(guestPath, 'changed in the guest');
    const result = await done;
    expect(result.end).toMatchObject({
      type: 'refused',
      message: expect.stringMatching(/changed on the host/),
    });
    expect(fs.readFileSync(file, 'utf8')).toBe('changed on the host');
    expect(fs.readdirSync(hostDir).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  test('the proxy checks the file itself: a symlink or a FIFO sent to the control socket is refused', async () => {
    const target = hostFile('target.txt', 'x');
    const link = path.join(hostDir, 'link.txt');
    fs.symlinkSync(target, link);
    await expect(copyToVm(VM, link, socket())).rejects.toThrow(/symbolic link/);
    const fifo = path.join(hostDir, 'pipe');
    await new Promise<void>((resolve, reject) =>
      spawn('mkfifo', [fifo]).once('exit', (c) => (c === 0 ? resolve() : reject(new Error('mkfifo')))),
    );
    await expect(copyToVm(VM, fifo, socket())).rejects.toThrow(/FIFO/);
    expect(fs.readdirSync(path.join(home, 'Incoming', 'host'))).not.toContain('link.txt');
  });

  test('a VM whose agent is not connected: a clear error once the wait runs out', async () => {
    const file = hostFile('any.txt', 'x');
    await expect(
      copyToVm('vmp-test-files-absent', file, { socketPath: control.socketPath, waitMs: 1000 }),
    ).rejects.toThrow(/the agent in VM "vmp-test-files-absent" has not connected \(waited 1000 ms\)/);
  });
});

async function waitUntil(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
