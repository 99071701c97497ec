import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorInstall } from '../../../src/install/monitor.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// Real files written while the monitor follows them; the "domain" is a promise the test settles.
describe('install monitor', () => {
  let dir: string;
  let log: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-inst-monitor-'));
    log = path.join(dir, 'vm-install.log');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  function domain(): { stopped: Promise<void>; stop: () => void } {
    let stop = (): void => undefined;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    return { stopped, stop };
  }

  test('success: the marker, then the power-off', async () => {
    const d = domain();
    const running = monitorInstall({
      logPath: log,
      vmName: 'vm1',
      domainStopped: d.stopped,
      pollIntervalMs: 50,
    });
    fs.writeFileSync(
      log,
      'Starting installer, one moment...\nRunning post-installation scripts\nVMP-INSTALL-OK vm1\n',
    );
    await sleep(100);
    fs.appendFileSync(log, 'Installation complete\n');
    d.stop();
    const outcome = await running;
    expect(outcome).toMatchObject({ status: 'succeeded', domainStopped: true });
    expect(outcome.progress.stage).toBe('complete');
  });

  test('a power-off without the marker is a failure naming the stage and the last line', async () => {
    const d = domain();
    fs.writeFileSync(log, 'Configuring storage\nkernel panic - not syncing\n');
    setTimeout(d.stop, 100);
    const outcome = await monitorInstall({ logPath: log, vmName: 'vm1', domainStopped: d.stopped });
    expect(outcome.status).toBe('failed');
    expect(outcome.message).toBe(
      'the installer powered off without reporting success, during "storage" (last console line: "kernel panic - not syncing")',
    );
  });

  test('a prompt no one will answer ends the watch at once, as a failure', async () => {
    fs.writeFileSync(
      log,
      "Please make a selection from the above ['b' to begin installation, 'q' to quit, 'r' to refresh]: ",
    );
    const outcome = await monitorInstall({
      logPath: log,
      vmName: 'vm1',
      domainStopped: new Promise(() => undefined),
    });
    expect(outcome.status).toBe('failed');
    expect(outcome.domainStopped).toBe(false);
    expect(outcome.message).toMatch(
      /^the installer stopped at a prompt \(the kickstart is incomplete\): "Please make a selection/,
    );
  });

  test('the failure marker ends the watch at once, without waiting for the power-off', async () => {
    fs.writeFileSync(log, 'VMP-INSTALL-FAILED disk full\n');
    const outcome = await monitorInstall({
      logPath: log,
      vmName: 'vm1',
      domainStopped: new Promise(() => undefined),
    });
    expect(outcome).toMatchObject({
      status: 'failed',
      message: 'the installer reported failure: disk full',
      domainStopped: false,
    });
  });

  test('times out, and can be cancelled', async () => {
    fs.writeFileSync(log, 'Starting installer, one moment...\n');
    const never = new Promise<void>(() => undefined);
    const timedOut = await monitorInstall({
      logPath: log,
      vmName: 'vm1',
      domainStopped: never,
      timeoutMs: 200,
    });
    expect(timedOut.status).toBe('timed-out');
    expect(timedOut.message).toMatch(
      /did not finish within 0.2 s \(last console line: "Starting installer, one moment"\)/,
    );

    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const cancelled = await monitorInstall({
      logPath: log,
      vmName: 'vm1',
      domainStopped: never,
      signal: ac.signal,
    });
    expect(cancelled.status).toBe('cancelled');
  });
});
