/**
 * Where the time of one cold boot of the end-to-end app VM goes, seen from
 * inside the guest: one `create --import` + `start`, then, once the xterm has
 * reached the host proxy, the guest's systemd-analyze (kernel / userspace,
 * critical chain of graphical.target, blame), the user manager's blame, the
 * boot's journal with monotonic time stamps, the loaded kernel modules and
 * how long node takes to start. The numbers in docs/benchmarks.md come from
 * bench/app-vm-boot.ts; this is the tool for finding what to shorten.
 * VMP_TRACE_SH='…' runs one more shell command in the booted guest (as root);
 * VMP_TRACE_VCPUS=N and VMP_TRACE_KERNEL_ARGS='…' boot it with other vCPUs
 * or more kernel arguments, to try a change before building it into the image.
 *
 *   npm run build && env -u DISPLAY HOME=$(mktemp -d) dbus-run-session -- \
 *     bash .ci/test-session.sh node dist/bench/app-vm-boot-trace.js > trace.txt
 *
 * Guest time 0 is the kernel's start; the host's t0 is taken just before
 * `start` is spawned, so the difference of the two clocks at the agent's
 * "connected" line is what QEMU and the firmware took before the kernel.
 */
import { AppVmHost, buildGuestImage, isXterm, showsWindow } from '../test/e2e/support/app-vm-host.js';

// CPU seconds per live process: its own, and that of the children it has reaped (so PID 1's line holds
// every finished service, udevd's its workers' module loading), busiest first; then the whole machine.
const CPU_BY_PROCESS = `
head -1 /proc/stat; cat /proc/uptime
echo "  own children  pid comm"
for f in /proc/[0-9]*/stat; do
  read -r line <"$f" 2>/dev/null || continue
  comm=\${line#*(}; comm=\${comm%)*}; set -- \${line##*) }
  own=$(( \${12} + \${13} )); kids=$(( \${14} + \${15} ))
  (( own + kids >= 10 )) && printf '%d %3d.%02d %5d.%02d  %s %s\\n' $((own + kids)) \\
    $((own / 100)) $((own % 100)) $((kids / 100)) $((kids % 100)) "\${line%% *}" "$comm"
done | sort -rn | cut -d' ' -f2- | head -30`;

const GUEST_COMMANDS: Array<[string, string[]]> = [
  // First, before the commands below add their own CPU time: who used the CPUs during the boot.
  ['/usr/bin/bash', ['-c', CPU_BY_PROCESS]],
  ['/usr/bin/systemd-analyze', []],
  ['/usr/bin/systemd-analyze', ['critical-chain', 'graphical.target', '--no-pager']],
  ['/usr/bin/systemd-analyze', ['blame', '--no-pager']],
  [
    '/usr/sbin/runuser',
    [
      '-u',
      'user',
      '--',
      'env',
      'XDG_RUNTIME_DIR=/run/user/1000',
      'systemd-analyze',
      '--user',
      'blame',
      '--no-pager',
    ],
  ],
  ['/usr/bin/journalctl', ['-b', '-o', 'short-monotonic', '--no-pager', '-q']],
  [
    '/usr/bin/bash',
    ['-c', 'lsmod | sort; time node -e 0; grep -E "GLX|glx|swrast|LoadModule" /var/log/Xorg.0.log'],
  ],
];

async function main(): Promise<void> {
  const image = await buildGuestImage(() => undefined);
  const host = new AppVmHost();
  const name = AppVmHost.vmName('trace');
  const out = (s: string): boolean => process.stdout.write(s);
  try {
    await host.startProxy();
    const follow = host.follow();
    const created = await host.createVm(name, image, ['xterm'], {
      vcpus: process.env.VMP_TRACE_VCPUS ? Number(process.env.VMP_TRACE_VCPUS) : undefined,
      extraKernelArgs: process.env.VMP_TRACE_KERNEL_ARGS,
    });
    if (created.code !== 0) throw new Error(`create failed: ${created.stderr}`);
    const t0 = Date.now();
    const started = await host.cli(['start', name, '--no-viewer'], 120_000);
    if (started.code !== 0) throw new Error(`start failed: ${started.stderr}`);
    const startedAt = Date.now();
    // A boot that never shows the xterm is the one most worth tracing: report it and look inside anyway.
    const event = await host
      .until(
        () => follow.events.find((e) => showsWindow(e, name, isXterm)),
        'the xterm window event',
        300_000,
      )
      .catch((err: unknown) => {
        out(`${err instanceof Error ? err.message : String(err)}\nproxy log:\n${host.proxyOutput}\n`);
        return undefined;
      });
    out(`start returned after ${((startedAt - t0) / 1000).toFixed(2)} s\n`);
    if (event) {
      out(`the xterm at the proxy after ${((event.receivedAt - t0) / 1000).toFixed(2)} s (${event.type})\n`);
    }
    for (const e of follow.events) out(`  +${((e.receivedAt - t0) / 1000).toFixed(2)} s ${e.type}\n`);
    // VMP_TRACE_SH: one more shell command to run in the booted guest (as root), for experiments.
    const extra: Array<[string, string[]]> = process.env.VMP_TRACE_SH
      ? [['/usr/bin/bash', ['-c', process.env.VMP_TRACE_SH]]]
      : [];
    for (const [file, args] of [...GUEST_COMMANDS, ...extra]) {
      // Slow under emulation (the journal alone takes seconds): a generous bound.
      const r = await host.guestExec(name, file, args, [], 180_000);
      out(`\n$ ${file} ${args.join(' ')}\n${r.stdout}${r.stderr}`);
    }
    follow.stop();
  } finally {
    await host.cli(['destroy', name, '--yes'], 120_000).catch(() => undefined);
    await host.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`app-vm-boot-trace: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
