/**
 * Time from `vm-provisioner start` to the app's window event at the host
 * proxy, for a cold boot and for a start from saved state (`stop --save`),
 * and from `snapshot revert` of a snapshot with memory, on the real
 * end-to-end guest (test/e2e/guest-image) under QEMU software emulation.
 *
 *   npm run build && env -u DISPLAY HOME=$(mktemp -d) dbus-run-session -- \
 *     bash .ci/test-session.sh node dist/bench/app-vm-boot.js [runs]
 *
 * Needs root (the image build) and libvirtd at qemu:///system. One VM is made
 * with `create --import`; each cold run starts it and stops it again with an
 * ACPI shutdown; each saved-state run saves the running VM with `stop --save`
 * (timed, with the size of the image) and starts it again; each revert run
 * reverts to one snapshot with memory (`snapshot revert --force`). t0 is
 * taken just before the CLI is spawned, t1 when `windows --follow` prints the
 * first event carrying the xterm (window-created, or the window-list an agent
 * sends when it connects); the time the CLI took is printed beside it. Then
 * the agent alone: the VM is restored through the libvirt adapter with the
 * wake byte put into the FIFO first, as `start` does, and timed from the
 * restore call's return (the guest runs again a little before it) to the
 * window list; then the same after a pause and `resume`. The QEMU process's
 * RSS is read from /proc once the window is there. Beside each figure from a
 * resume, the time from QEMU's own RESUME event (the guest running again, by
 * its QMP timestamp) to the window at the proxy. VMP_BENCH_COLD_RUNS sets
 * the number of cold boots apart from the other runs.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import readline from 'node:readline';
import { describeDomain, openHypervisor } from '../src/libvirt/index.js';
import { managedSavePath, primeWake, wakeAgent } from '../src/service/state.js';
import {
  AppVmHost,
  buildGuestImage,
  isXterm,
  showsWindow,
  describeHostCpu,
  hostCpuSeconds,
  E2E_URI,
  median,
} from '../test/e2e/support/app-vm-host.js';

const RUNS = Number(process.argv[2] ?? 3);
const COLD_RUNS = Number(process.env.VMP_BENCH_COLD_RUNS ?? RUNS);
/**
 * The proxy's heartbeat interval. Long, so that an agent reconnecting soon after a resume can only have
 * been told by the wake channel: one that noticed at a heartbeat would take 15-30 s.
 */
const HEARTBEAT_MS = Number(process.env.VMP_BENCH_HEARTBEAT_MS ?? 60_000);

interface Sample {
  seconds: number;
  rssMiB: number | undefined;
  /** How long the CLI command itself ran. */
  cliSeconds?: number;
  /** From QEMU's RESUME event (the guest running again) to the xterm at the proxy, in ms. */
  afterResumeMs?: number;
}

/**
 * QEMU's RESUME events for one domain, stamped by QEMU itself (`virsh qemu-monitor-event --timestamp`
 * prints the QMP event's own time): the moment the guest's CPUs run again, on the host's clock.
 */
function watchResumes(name: string): { times: number[]; stop(): void } {
  const child = spawn(
    'virsh',
    ['-c', E2E_URI, 'qemu-monitor-event', '--domain', name, '--event', 'RESUME', '--timestamp', '--loop'],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const times: number[] = [];
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d{3})\+0000: event RESUME\b/.exec(line);
    if (m) times.push(Date.parse(`${m[1]}T${m[2]}Z`));
  });
  return { times, stop: () => child.kill() };
}

/** The guest's first RESUME at or after `t0`, waited for a moment (virsh prints it a little late). */
async function resumedAfter(resumes: { times: number[] }, t0: number): Promise<number | undefined> {
  for (let i = 0; i < 40; i++) {
    const found = resumes.times.find((t) => t >= t0);
    if (found !== undefined) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
}

async function main(): Promise<void> {
  const image = await buildGuestImage(() => undefined);
  const host = new AppVmHost();
  const name = AppVmHost.vmName('bench');
  const hypervisor = await openHypervisor({ uri: E2E_URI });
  let stopWatching = (): void => undefined;
  try {
    await host.startProxy(['--heartbeat-interval', String(HEARTBEAT_MS)]);
    const follow = host.follow();
    const created = await host.createVm(name, image, ['xterm']);
    if (created.code !== 0) throw new Error(`create failed: ${created.stderr}`);
    const resumes = watchResumes(name);
    stopWatching = resumes.stop;

    /** Runs one CLI command at t0 and waits for the xterm at the proxy after t0. */
    const timed = async (what: string, args: string[]): Promise<Sample> => {
      const cpu0 = hostCpuSeconds();
      const t0 = Date.now();
      const ran = await host.cli(args, 300_000);
      const cliSeconds = (Date.now() - t0) / 1000;
      if (ran.code !== 0) throw new Error(`${args.join(' ')} failed: ${ran.stderr}`);
      const event = await host
        .until(
          () => follow.events.find((e) => e.receivedAt >= t0 && showsWindow(e, name, isXterm)),
          `${what}: the xterm window event`,
          300_000,
        )
        .catch((err: unknown) => {
          // What the proxy saw is the first thing to know about a VM that never showed its window.
          throw new Error(
            `${(err as Error).message}; the proxy's log ends:\n${host.proxyOutput.slice(-3000)}`,
          );
        });
      const resumedAt = await resumedAfter(resumes, t0);
      const sample: Sample = {
        seconds: (event.receivedAt - t0) / 1000,
        rssMiB: host.qemuRssMiB(name),
        cliSeconds,
        ...(resumedAt !== undefined ? { afterResumeMs: event.receivedAt - resumedAt } : {}),
      };
      process.stderr.write(
        `${what}: ${sample.seconds.toFixed(2)} s (the command ${cliSeconds.toFixed(2)} s${sample.afterResumeMs !== undefined ? `; the guest resumed -> the xterm ${sample.afterResumeMs} ms` : ''}), qemu RSS ${sample.rssMiB ?? '?'} MiB; ${describeHostCpu(cpu0, hostCpuSeconds())}\n`,
      );
      return sample;
    };
    const startAndWait = (what: string): Promise<Sample> => timed(what, ['start', name, '--no-viewer']);
    const saveFile = managedSavePath(E2E_URI, name)!;
    const saveOnce = async (): Promise<{ seconds: number; mib: number }> => {
      const t0 = Date.now();
      const saved = await host.cli(['stop', name, '--save'], 300_000);
      if (saved.code !== 0) throw new Error(`stop --save failed: ${saved.stderr}`);
      const seconds = (Date.now() - t0) / 1000;
      const mib = fs.statSync(saveFile).size / 1024 / 1024;
      process.stderr.write(`stop --save: ${seconds.toFixed(2)} s, ${mib.toFixed(0)} MiB\n`);
      return { seconds, mib };
    };

    const cold: Sample[] = [];
    for (let i = 1; i <= COLD_RUNS; i++) {
      cold.push(await startAndWait(`cold boot ${i}`));
      const stopped = await host.cli(['stop', name, '--no-save', '--timeout', '120', '--force'], 200_000);
      if (stopped.code !== 0) throw new Error(`stop failed: ${stopped.stderr}`);
    }

    const restored: Sample[] = [];
    const saves: Array<{ seconds: number; mib: number }> = [];
    await startAndWait('boot before the first save');
    // Settled: the first save of a freshly booted guest is not what a user's saves look like.
    await new Promise((r) => setTimeout(r, 10_000));
    for (let i = 1; i <= RUNS; i++) {
      saves.push(await saveOnce());
      restored.push(await startAndWait(`start from saved state ${i}`));
    }

    const made = await host.cli(['snapshot', 'create', name, 'bench', '--memory'], 300_000);
    if (made.code !== 0) throw new Error(`snapshot create failed: ${made.stderr}`);
    const reverts: Sample[] = [];
    for (let i = 1; i <= RUNS; i++) {
      reverts.push(
        await timed(`snapshot revert with memory ${i}`, ['snapshot', 'revert', name, 'bench', '--force']),
      );
    }

    // The agent alone: from the restore's return (the guest runs again) to its window list at the proxy,
    // the wake byte waiting in the FIFO as `start` leaves it.
    const vm = describeDomain(await hypervisor.xml(name, { inactive: true }));
    const agentOnly: number[] = [];
    const agentAfterResume: number[] = [];
    const restoreCalls: number[] = [];
    for (let i = 1; i <= RUNS; i++) {
      // The window list comes with the RESUME, before the agent has read the proxy's WELCOME: saved at
      // once, the VM would come back in the middle of that handshake, which a user's save never is.
      await new Promise((r) => setTimeout(r, 1000));
      await hypervisor.managedSave(name);
      const primed = await primeWake(vm);
      if (!primed) throw new Error('the wake byte could not be written');
      const called = Date.now();
      try {
        await hypervisor.start(name);
      } finally {
        await primed.close();
      }
      const t0 = Date.now();
      const event = await host.until(
        () => follow.events.find((e) => e.receivedAt >= called && showsWindow(e, name, isXterm)),
        'the xterm after a wake',
        60_000,
      );
      agentOnly.push(event.receivedAt - t0);
      restoreCalls.push(t0 - called);
      const resumedAt = await resumedAfter(resumes, called);
      if (resumedAt !== undefined) agentAfterResume.push(event.receivedAt - resumedAt);
      process.stderr.write(
        `restore call ${t0 - called} ms, its return -> window list ${i}: ${event.receivedAt - t0} ms; the guest resumed -> window list ${resumedAt !== undefined ? event.receivedAt - resumedAt : '?'} ms\n`,
      );
    }

    // The same after a pause: the QEMU process (and its translation cache) stays, only the guest was frozen.
    const afterPause: number[] = [];
    const pauseAfterResume: number[] = [];
    for (let i = 1; i <= RUNS; i++) {
      await hypervisor.suspend(name);
      const resumeCalled = Date.now();
      await hypervisor.resume(name);
      const t0 = Date.now();
      if (!(await wakeAgent(vm))) throw new Error('the wake byte could not be written');
      const event = await host.until(
        () => follow.events.find((e) => e.receivedAt >= t0 && showsWindow(e, name, isXterm)),
        'the xterm after a wake',
        60_000,
      );
      afterPause.push(event.receivedAt - t0);
      const resumedAt = await resumedAfter(resumes, resumeCalled);
      if (resumedAt !== undefined) pauseAfterResume.push(event.receivedAt - resumedAt);
      process.stderr.write(
        `resume, wake -> window list ${i}: ${event.receivedAt - t0} ms; the guest resumed -> window list ${resumedAt !== undefined ? event.receivedAt - resumedAt : '?'} ms\n`,
      );
    }

    const stopped = await host.cli(['stop', name, '--no-save', '--timeout', '120', '--force'], 200_000);
    if (stopped.code !== 0) throw new Error(`stop failed: ${stopped.stderr}`);
    const destroyed = await host.cli(['destroy', name, '--yes'], 120_000);
    if (destroyed.code !== 0) throw new Error(`destroy failed: ${destroyed.stderr}`);

    const row = (label: string, samples: Sample[]): string => {
      const secs = samples.map((s) => s.seconds);
      const rss = samples.map((s) => s.rssMiB ?? Number.NaN);
      const cli = samples.map((s) => s.cliSeconds ?? Number.NaN);
      const resumed = samples.flatMap((s) => (s.afterResumeMs !== undefined ? [s.afterResumeMs] : []));
      const fromResume = resumed.length > 0 ? `${median(resumed).toFixed(0)} (${resumed.join(', ')})` : '-';
      return `| ${label} | ${samples.length} | ${median(secs).toFixed(2)} | ${Math.min(...secs).toFixed(2)} | ${Math.max(...secs).toFixed(2)} | ${median(cli).toFixed(2)} | ${fromResume} | ${median(rss).toFixed(0)} |`;
    };
    process.stdout.write(
      [
        `app VM ${name}: ${image.disk}; proxy heartbeat ${HEARTBEAT_MS} ms`,
        '',
        '| start | runs | median s | min s | max s | the command, median s | the guest resumed -> the xterm, median ms (each) | qemu RSS MiB (median) |',
        '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
        row('cold boot -> the xterm at the proxy', cold),
        row('start from saved state -> the xterm at the proxy', restored),
        row('snapshot revert (with memory) -> the xterm at the proxy', reverts),
        '',
        `stop --save: median ${median(saves.map((s) => s.seconds)).toFixed(2)} s, saved state ${median(saves.map((s) => s.mib)).toFixed(0)} MiB (median of ${saves.length})`,
        `agent alone after a restore, the restore call's return -> window list at the proxy: median ${median(agentOnly).toFixed(0)} ms (${agentOnly.join(', ')} ms; the restore calls ${restoreCalls.join(', ')} ms)`,
        `agent alone after a restore, the guest resumed (QEMU's RESUME) -> window list at the proxy: median ${median(agentAfterResume).toFixed(0)} ms (${agentAfterResume.join(', ')} ms)`,
        `agent alone after a pause, wake byte -> window list at the proxy: median ${median(afterPause).toFixed(0)} ms (${afterPause.join(', ')} ms)`,
        `agent alone after a pause, the guest resumed (QEMU's RESUME) -> window list at the proxy: median ${median(pauseAfterResume).toFixed(0)} ms (${pauseAfterResume.join(', ')} ms)`,
        '',
      ].join('\n'),
    );
    follow.stop();
  } finally {
    stopWatching();
    await host.cli(['destroy', name, '--yes'], 120_000).catch(() => undefined);
    await hypervisor.close();
    await host.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`app-vm-boot: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
