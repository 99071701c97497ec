/**
 * `open NAME FILE` on a running guest (the real end-to-end guest image under
 * QEMU software emulation, the real proxy and guest agent): the CLI's wall
 * time from spawn to exit, which is when the file is in the guest (the agent
 * answers FILE_RESULT only after the file is written and xdg-open started).
 * Three commands alternate, N runs each (default 10): `open` of a 4 KiB file,
 * `open` of a 16 MiB file, and `run NAME -- true` as the anchor (the same CLI,
 * proxy and agent path without a file).
 *
 *   npm run build && env -u DISPLAY HOME=$(mktemp -d) dbus-run-session -- \
 *     bash .ci/test-session.sh node dist/bench/open-file.js [N]
 *
 * Needs root (the image build) and libvirtd at qemu:///system. The e2e image
 * has no xdg-utils: a recording `xdg-open` is installed in the guest first.
 * Everything it makes is destroyed at the end.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  AppVmHost,
  buildGuestImage,
  describeHostCpu,
  hostCpuSeconds,
  median,
} from '../test/e2e/support/app-vm-host.js';

const N = Number(process.argv[2] ?? 10);

async function main(): Promise<void> {
  const image = await buildGuestImage(() => undefined);
  const host = new AppVmHost();
  const name = AppVmHost.vmName('bopen');
  let created = false;
  try {
    await host.startProxy();
    const made = await host.createVm(name, image, ['xterm']);
    if (made.code !== 0) throw new Error(`create failed: ${made.stderr}`);
    created = true;
    const dir = path.join(host.root, 'bench-files');
    fs.mkdirSync(dir);
    const small = path.join(dir, 'small.txt');
    const large = path.join(dir, 'large.bin');
    fs.writeFileSync(small, randomBytes(2048).toString('hex'));
    fs.writeFileSync(large, randomBytes(16 * 1024 * 1024));
    // Boots the VM (start on first use) and waits for its agent: not measured.
    const warm = await host.cli(['copy-to-vm', name, small, '--timeout', '300'], 400_000);
    if (warm.code !== 0) throw new Error(`copy-to-vm failed: ${warm.stderr}`);
    const installed = await host.guestExec(name, '/bin/sh', [
      '-c',
      "printf '#!/bin/sh\\nexit 0\\n' > /usr/local/bin/xdg-open && chmod 755 /usr/local/bin/xdg-open",
    ]);
    if (installed.code !== 0) throw new Error(`installing xdg-open failed: ${installed.stderr}`);

    const timed = async (args: string[]): Promise<number> => {
      const t0 = performance.now();
      const r = await host.cli(args, 120_000);
      const seconds = (performance.now() - t0) / 1000;
      if (r.code !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr}`);
      return seconds;
    };
    const cases: [string, string[]][] = [
      ['open, 4 KiB file', ['open', name, small]],
      ['open, 16 MiB file', ['open', name, large]],
      ['run NAME -- true (anchor)', ['run', name, '--', 'true']],
    ];
    const results = cases.map(() => [] as number[]);
    const cpu0 = hostCpuSeconds();
    for (let i = 0; i < N; i++) {
      for (const [c, [label, args]] of cases.entries()) {
        const s = await timed(args);
        results[c]!.push(s);
        process.stderr.write(`${label} #${i + 1}: ${s.toFixed(3)} s\n`);
      }
    }
    const f = (xs: number[]): string =>
      `${median(xs).toFixed(3)} | ${Math.min(...xs).toFixed(3)} | ${Math.max(...xs).toFixed(3)}`;
    process.stdout.write(
      [
        `VM ${name}, running, agent connected; ${N} runs of each, alternating; ${describeHostCpu(cpu0, hostCpuSeconds())}`,
        '',
        '| command (CLI spawn to exit, s) | runs | median | min | max |',
        '| --- | ---: | ---: | ---: | ---: |',
        ...cases.map(([label], c) => `| ${label} | ${N} | ${f(results[c]!)} |`),
        '',
      ].join('\n'),
    );
  } finally {
    if (created) await host.cli(['destroy', name, '--yes'], 180_000).catch(() => undefined);
    await host.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`open-file bench: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
