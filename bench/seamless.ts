/**
 * Seamless windows on the real end-to-end guest (docs/seamless.md), under QEMU
 * software emulation, shown on a real host X server (Xvfb) with i3:
 *
 *   npm run build && env -u DISPLAY HOME=$(mktemp -d) dbus-run-session -- \
 *     bash .ci/test-session.sh node dist/bench/seamless.js [latency-samples]
 *
 * Needs root (the image build), libvirtd at qemu:///system, xpra, Xvfb, i3,
 * xdotool and xprop. One VM (`--network none`, `--display seamless`):
 *
 * - cold: `start` of the shut-off VM until the xterm's window is mapped on the
 *   host display (a cold boot, the guest's xpra server started at the first
 *   attach, the app moved onto it);
 * - saved: `stop --save`, then `start` of the saved VM until the window is mapped;
 * - attach: the client ended, `start --seamless` of the running VM until the
 *   window is mapped (the xpra server already runs);
 * - input: a key press on the host (`xdotool key Return`, t0 just before it is
 *   spawned) until the guest's reaction is back on the host: the Return runs
 *   `printf` in the guest's bash, which sets the xterm's title, which the
 *   client sets on the host window (seen by `xprop -spy`). A round trip, so an
 *   upper bound of the input latency alone; p50/p99 over the samples;
 * - idle: the client's CPU (utime+stime from /proc over 30 s with the xterm
 *   idle) and RSS.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppVmHost, buildGuestImage, median } from '../test/e2e/support/app-vm-host.js';
import { HostDesktop } from '../test/e2e/support/host-desktop.js';

const SAMPLES = Number(process.argv[2] ?? 30);

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

function clientPid(stdout: string): number {
  const pid = Number(/xpra client (?:already )?attached \(pid (\d+)\)/.exec(stdout)?.[1]);
  if (!(pid > 0)) throw new Error(`no client pid in: ${stdout}`);
  return pid;
}

function cpuTicks(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
}

function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1]) / 1024;
}

async function main(): Promise<void> {
  const image = await buildGuestImage(() => undefined);
  const host = new AppVmHost();
  const desktop = await HostDesktop.start();
  host.env.DISPLAY = desktop.display;
  const name = AppVmHost.vmName('seambench');
  const windowPattern = `^\\[${name}\\] `;
  const pids: number[] = [];
  try {
    const created = await host.createVm(name, image, ['xterm'], {
      network: 'none',
      extraArgs: ['--label', 'red', '--display', 'seamless'],
    });
    if (created.code !== 0) throw new Error(`create failed: ${created.stderr}`);

    /** Runs `start` at t0 and returns the seconds until the VM's window is mapped on the host. */
    const timedStart = async (what: string, args: string[]): Promise<number> => {
      const t0 = Date.now();
      const ran = await host.cli(args, 600_000);
      const cli = (Date.now() - t0) / 1000;
      if (ran.code !== 0) throw new Error(`${args.join(' ')} failed: ${ran.stderr}`);
      pids.push(clientPid(ran.stdout));
      await host.until(
        async () => (await desktop.windowsNamed(windowPattern)).length > 0,
        `${what}: the window`,
        300_000,
      );
      const seconds = (Date.now() - t0) / 1000;
      process.stderr.write(
        `${what}: window mapped ${seconds.toFixed(2)} s after start (the command ${cli.toFixed(2)} s)\n`,
      );
      return seconds;
    };
    const endClient = async (): Promise<void> => {
      const pid = pids.at(-1)!;
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone (a save ends it with the QEMU process)
      }
      await host.until(
        async () => (await desktop.windowsNamed(windowPattern)).length === 0,
        'the window to go',
        30_000,
      );
    };

    const cold = await timedStart('cold', ['start', name]);
    const attaches: number[] = [];
    for (let i = 1; i <= 3; i++) {
      await endClient();
      attaches.push(await timedStart(`attach ${i}`, ['start', name, '--seamless']));
    }

    // Input round trip through the title.
    const [window] = await desktop.windowsNamed(windowPattern);
    const spy = spawn('xprop', ['-spy', '-id', String(window), '_NET_WM_NAME'], {
      env: { PATH: '/usr/bin:/bin', DISPLAY: desktop.display },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const seen: Array<{ at: number; line: string }> = [];
    spy.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      for (const line of chunk.split('\n')) if (line) seen.push({ at: Date.now(), line });
    });
    const latencies: number[] = [];
    try {
      await desktop.x('xdotool', ['windowactivate', '--sync', String(window)]);
      for (let i = 0; i < SAMPLES; i++) {
        const mark = `lat-${i}-${Date.now()}`;
        await desktop.x('xdotool', ['type', '--delay', '40', `printf '\\033]0;${mark}\\007'; sleep 1`]);
        await sleep(1500); // the typed line echoed and settled
        const t0 = Date.now();
        await desktop.x('xdotool', ['key', 'Return']);
        const hit = await host.until(
          () => seen.find((s) => s.at >= t0 && s.line.includes(mark)),
          `title ${mark}`,
          30_000,
        );
        latencies.push(hit.at - t0);
        await sleep(1500); // sleep 1 and the prompt back
      }
    } finally {
      spy.kill('SIGTERM');
    }
    process.stderr.write(`input round trip: ${latencies.join(' ')} ms\n`);

    // Idle client.
    const pid = pids.at(-1)!;
    await sleep(5000);
    const ticks0 = cpuTicks(pid);
    const tIdle = Date.now();
    await sleep(30_000);
    const idleCpu = (cpuTicks(pid) - ticks0) / 100 / ((Date.now() - tIdle) / 1000);
    const idleRss = rssMiB(pid);

    // Saved state.
    const saved = await host.cli(['stop', name, '--save'], 300_000);
    let fromSaved: number | undefined;
    if (saved.code === 0) {
      await host.until(
        async () => (await desktop.windowsNamed(windowPattern)).length === 0,
        'the window to go at the save',
        60_000,
      );
      fromSaved = await timedStart('saved', ['start', name]);
    } else {
      process.stderr.write(`stop --save failed (${saved.stderr.trim()}); no saved-state figure\n`);
    }

    const lines = [
      `cold start (boot + guest xpra server + app moved) to window mapped: ${cold.toFixed(1)} s`,
      `start of a saved VM to window mapped: ${fromSaved === undefined ? 'n/a' : `${fromSaved.toFixed(1)} s`}`,
      `start --seamless of the running VM (client re-attach) to window mapped: median ${median(attaches).toFixed(2)} s (${attaches.map((a) => a.toFixed(2)).join(', ')})`,
      `key on the host to the guest's title change back on the host (${latencies.length} samples): p50 ${percentile(latencies, 50)} ms, p99 ${percentile(latencies, 99)} ms, max ${Math.max(...latencies)} ms`,
      `idle client: CPU ${(idleCpu * 100).toFixed(2)} % of one core over 30 s, RSS ${idleRss.toFixed(0)} MiB`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // gone
      }
    }
    await host.cli(['destroy', name, '--yes'], 180_000);
    await desktop.close();
    await host.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
