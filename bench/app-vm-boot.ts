/**
 * Time from `vm-provisioner start` to the app's window event at the host
 * proxy, for a cold boot and for a start from a managed save, on the real
 * end-to-end guest (test/e2e/guest-image) under QEMU software emulation.
 *
 *   npm run build && env -u DISPLAY HOME=$(mktemp -d) dbus-run-session -- \
 *     bash .ci/test-session.sh node dist/bench/app-vm-boot.js [runs]
 *
 * Needs root (the image build) and libvirtd at qemu:///system. One VM is made
 * with `create --import`; each cold run starts it and stops it again with an
 * ACPI shutdown; each managed-save run saves the running VM (libvirt managed
 * save, through the project's libvirt adapter) and starts it again. t0 is
 * taken just before `start` is spawned, t1 when `windows --follow` prints the
 * first event carrying the xterm (window-created, or the window-list an agent
 * sends when it connects). The QEMU process's RSS is read from /proc once
 * the window is there.
 */
import { openHypervisor } from '../src/libvirt/index.js';
import {
  AppVmHost,
  buildGuestImage,
  isXterm,
  showsWindow,
  describeHostCpu,
  hostCpuSeconds,
  E2E_URI,
} from '../test/e2e/support/app-vm-host.js';

const RUNS = Number(process.argv[2] ?? 3);
/** The proxy's heartbeat interval: after a restore the agent notices its dead connection at its next heartbeat. */
const HEARTBEAT_MS = Number(process.env.VMP_BENCH_HEARTBEAT_MS ?? 1000);

interface Sample {
  seconds: number;
  rssMiB: number | undefined;
}

async function main(): Promise<void> {
  const image = await buildGuestImage(() => undefined);
  const host = new AppVmHost();
  const name = AppVmHost.vmName('bench');
  const hypervisor = await openHypervisor({ uri: E2E_URI });
  try {
    await host.startProxy(['--heartbeat-interval', String(HEARTBEAT_MS)]);
    const follow = host.follow();
    const created = await host.createVm(name, image, ['xterm']);
    if (created.code !== 0) throw new Error(`create failed: ${created.stderr}`);

    const startAndWait = async (what: string): Promise<Sample> => {
      const cpu0 = hostCpuSeconds();
      const t0 = Date.now();
      const started = await host.cli(['start', name, '--no-viewer'], 120_000);
      if (started.code !== 0) throw new Error(`start failed: ${started.stderr}`);
      const event = await host.until(
        () => follow.events.find((e) => e.receivedAt >= t0 && showsWindow(e, name, isXterm)),
        `${what}: the xterm window event`,
        300_000,
      );
      const sample = { seconds: (event.receivedAt - t0) / 1000, rssMiB: host.qemuRssMiB(name) };
      process.stderr.write(
        `${what}: ${sample.seconds.toFixed(2)} s, qemu RSS ${sample.rssMiB ?? '?'} MiB; ${describeHostCpu(cpu0, hostCpuSeconds())}\n`,
      );
      return sample;
    };

    const cold: Sample[] = [];
    for (let i = 1; i <= RUNS; i++) {
      cold.push(await startAndWait(`cold boot ${i}`));
      const stopped = await host.cli(['stop', name, '--timeout', '120', '--force'], 200_000);
      if (stopped.code !== 0) throw new Error(`stop failed: ${stopped.stderr}`);
    }

    const restored: Sample[] = [];
    await startAndWait('boot before the first managed save');
    for (let i = 1; i <= RUNS; i++) {
      await hypervisor.managedSave(name);
      restored.push(await startAndWait(`start from managed save ${i}`));
    }
    const stopped = await host.cli(['stop', name, '--timeout', '120', '--force'], 200_000);
    if (stopped.code !== 0) throw new Error(`stop failed: ${stopped.stderr}`);
    const destroyed = await host.cli(['destroy', name, '--yes'], 120_000);
    if (destroyed.code !== 0) throw new Error(`destroy failed: ${destroyed.stderr}`);

    const row = (label: string, samples: Sample[]): string => {
      const secs = samples.map((s) => s.seconds);
      const rss = samples.map((s) => s.rssMiB ?? Number.NaN);
      return `| ${label} | ${samples.length} | ${median(secs).toFixed(2)} | ${Math.min(...secs).toFixed(2)} | ${Math.max(...secs).toFixed(2)} | ${median(rss).toFixed(0)} |`;
    };
    process.stdout.write(
      [
        `app VM ${name}: ${image.disk}; proxy heartbeat ${HEARTBEAT_MS} ms`,
        '',
        '| start | runs | median s | min s | max s | qemu RSS MiB (median) |',
        '| --- | ---: | ---: | ---: | ---: | ---: |',
        row('cold boot -> the xterm at the proxy', cold),
        row('start from managed save -> the xterm at the proxy', restored),
        '',
      ].join('\n'),
    );
    follow.stop();
  } finally {
    await host.cli(['destroy', name, '--yes'], 120_000).catch(() => undefined);
    await hypervisor.close();
    await host.close();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`app-vm-boot: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
