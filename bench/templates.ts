/**
 * Templates against imports, side by side in one run, on the real end-to-end
 * guest image (test/e2e/guest-image) and the real libvirtd:
 *
 *   1. making an app VM: `create --template T` against `create --import` of
 *      the same image, alternating A B A B ..., N of each (default 20): the
 *      CLI's wall time, and the new disk bytes each app VM takes before its
 *      first start (allocated blocks of every file it owns);
 *   2. start to the app window at the proxy (QEMU software emulation): one
 *      app VM of each kind, cold, alternating, M boots each (default 3).
 *
 *   npm run build && env -u DISPLAY HOME=$(mktemp -d) dbus-run-session -- \
 *     bash .ci/test-session.sh node dist/bench/templates.js [N] [M]
 *
 * Needs root (the image build) and libvirtd at qemu:///system. Everything it
 * makes is destroyed at the end.
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  AppVmHost,
  buildGuestImage,
  describeHostCpu,
  hostCpuSeconds,
  isXterm,
  showsWindow,
  median,
} from '../test/e2e/support/app-vm-host.js';

const N = Number(process.argv[2] ?? 20);
const BOOTS = Number(process.argv[3] ?? 3);

interface Made {
  seconds: number;
  bytes: number;
}

async function main(): Promise<void> {
  const image = await buildGuestImage(() => undefined);
  const host = new AppVmHost();
  const template = AppVmHost.vmName('btmpl');
  const made: string[] = [];
  try {
    await host.startProxy();
    const follow = host.follow();
    const imported = await host.importTemplate(template, image);
    if (imported.code !== 0) throw new Error(`template import failed: ${imported.stderr}`);

    /** Allocated bytes of every file in the VM directory that belongs to `name`. */
    const bytesOf = (name: string): number =>
      fs
        .readdirSync(host.vmDir)
        .filter((f) => f.startsWith(`${name}-`) || f === `${name}.qcow2`)
        .map((f) => fs.statSync(path.join(host.vmDir, f)).blocks * 512)
        .reduce((a, b) => a + b, 0);

    const timed = async (name: string, make: () => ReturnType<AppVmHost['cli']>): Promise<Made> => {
      const t0 = performance.now();
      const result = await make();
      const seconds = (performance.now() - t0) / 1000;
      if (result.code !== 0) throw new Error(`creating ${name} failed: ${result.stderr}`);
      made.push(name);
      return { seconds, bytes: bytesOf(name) };
    };

    const onTemplate: Made[] = [];
    const importedCopies: Made[] = [];
    for (let i = 0; i < N; i++) {
      const t = `${template}-t${i}`;
      onTemplate.push(await timed(t, () => host.createOnTemplate(t, template, ['xterm'])));
      const c = `${template}-i${i}`;
      importedCopies.push(await timed(c, () => host.createVm(c, image, ['xterm'])));
      process.stderr.write(
        `pair ${i + 1}: create --template ${onTemplate[i]!.seconds.toFixed(2)} s, ` +
          `create --import ${importedCopies[i]!.seconds.toFixed(2)} s\n`,
      );
    }

    const bootOne = async (name: string): Promise<number> => {
      const cpu0 = hostCpuSeconds();
      const t0 = Date.now();
      const started = await host.cli(['start', name, '--no-viewer'], 120_000);
      if (started.code !== 0) throw new Error(`start ${name} failed: ${started.stderr}`);
      const event = await host.until(
        () => follow.events.find((e) => e.receivedAt >= t0 && showsWindow(e, name, isXterm)),
        `the xterm of ${name}`,
        300_000,
      );
      const seconds = (event.receivedAt - t0) / 1000;
      process.stderr.write(`${name}: ${seconds.toFixed(2)} s; ${describeHostCpu(cpu0, hostCpuSeconds())}\n`);
      const stopped = await host.cli(['stop', name, '--timeout', '120', '--force'], 200_000);
      if (stopped.code !== 0) throw new Error(`stop ${name} failed: ${stopped.stderr}`);
      return seconds;
    };
    const bootTemplate: number[] = [];
    const bootImport: number[] = [];
    for (let i = 0; i < BOOTS; i++) {
      bootTemplate.push(await bootOne(`${template}-t0`));
      bootImport.push(await bootOne(`${template}-i0`));
    }

    const secs = (xs: Made[]): number[] => xs.map((x) => x.seconds);
    const mib = (xs: Made[]): number[] => xs.map((x) => x.bytes / 1024 ** 2);
    const ratios = onTemplate.map((t, i) => t.seconds / importedCopies[i]!.seconds);
    const f = (xs: number[], digits = 2): string =>
      `${median(xs).toFixed(digits)} | ${Math.min(...xs).toFixed(digits)} | ${Math.max(...xs).toFixed(digits)}`;
    process.stdout.write(
      [
        `image ${image.disk}; ${N} app VMs of each kind, made alternately; ${BOOTS} cold boots of one of each`,
        '',
        '| measure | runs | median | min | max |',
        '| --- | ---: | ---: | ---: | ---: |',
        `| create --template: wall s | ${N} | ${f(secs(onTemplate))} |`,
        `| create --import: wall s | ${N} | ${f(secs(importedCopies))} |`,
        `| ratio template/import (pair by pair) | ${N} | ${f(ratios, 3)} |`,
        `| create --template: new disk MiB per VM | ${N} | ${f(mib(onTemplate), 1)} |`,
        `| create --import: new disk MiB per VM | ${N} | ${f(mib(importedCopies), 1)} |`,
        `| start -> xterm at the proxy, on the template: s | ${BOOTS} | ${f(bootTemplate)} |`,
        `| start -> xterm at the proxy, imported copy: s | ${BOOTS} | ${f(bootImport)} |`,
        '',
      ].join('\n'),
    );
    follow.stop();
  } finally {
    for (const name of made) await host.cli(['destroy', name, '--yes'], 120_000).catch(() => undefined);
    await host.cli(['template', 'destroy', template], 120_000).catch(() => undefined);
    await host.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`templates bench: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
