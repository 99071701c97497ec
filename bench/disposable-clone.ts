/**
 * A disposable's start as a clone of its template's ready saved state, to its
 * xterm at the proxy, side by side with a cold boot of an app VM on the same
 * template; host RSS and disk per clone; time until a clone is gone.
 *
 *   npm run build && env -u DISPLAY HOME=$(mktemp -d) dbus-run-session -- \
 *     bash .ci/test-session.sh npx tsx bench/disposable-clone.ts [clone runs] [cold runs]
 *
 * Needs root (the image build) and libvirtd at qemu:///system. The e2e guest
 * image is imported as a template (1024 MiB), its ready state prepared once
 * (booted to its xterm, saved). Each clone run: t0 before startClone, t1 when
 * `windows --follow` prints the first event of the clone carrying the xterm;
 * the clone's QEMU RSS and the bytes its two overlays take are read then,
 * and removeClone is timed. Each cold run: an app VM on the template started
 * with `start --no-viewer`, t0 before the CLI is spawned, t1 at its xterm;
 * stopped again between runs (every start is a cold one: its root is reset).
 */
import fs from 'node:fs';
import path from 'node:path';
import { removeClone, startClone } from '../src/disposable/clone.js';
import { prepareReadyState, removeReadyState, type CloneDeps } from '../src/disposable/ready-state.js';
import { openHypervisor } from '../src/libvirt/index.js';
import { VirshHypervisor } from '../src/libvirt/virsh.js';
import { keyringCredentialStores } from '../src/secrets/credentials.js';
import { FileConfigStore } from '../src/spec/store.js';
import { LibvirtVolumeStore } from '../src/storage/volumes.js';
import { packageVersion } from '../src/util/package-info.js';
import { APP_DIR_NAME } from '../src/util/paths.js';
import {
  AppVmHost,
  buildGuestImage,
  E2E_URI,
  isXterm,
  median,
  showsWindow,
  type ProxyEventLine,
} from '../test/e2e/support/app-vm-host.js';

const CLONE_RUNS = Number(process.argv[2] ?? 7);
const COLD_RUNS = Number(process.argv[3] ?? 2);

async function main(): Promise<void> {
  const image = await buildGuestImage(() => undefined);
  const host = new AppVmHost();
  const template = AppVmHost.vmName('bclone');
  const hypervisor = await openHypervisor({ uri: E2E_URI });
  const virsh = new VirshHypervisor(E2E_URI);
  const deps: CloneDeps = {
    hypervisor,
    volumes: new LibvirtVolumeStore(E2E_URI),
    configStore: new FileConfigStore(path.join(host.env.XDG_CONFIG_HOME!, APP_DIR_NAME)),
    credentials: keyringCredentialStores(),
    virsh: (operation, args, options) => virsh.virsh(operation, args, options ?? {}),
  };
  const cold = `${template}-cold`;
  try {
    await host.startProxy();
    const follow = host.follow();
    const xtermOf = (vm: string, since: number): Promise<ProxyEventLine> =>
      host.until(
        () => follow.events.slice(since).find((e) => showsWindow(e, vm, isXterm)),
        `the xterm of ${vm}`,
        300_000,
      );
    const imported = await host.importTemplate(template, image, 1024);
    if (imported.code !== 0) throw new Error(`template import failed: ${imported.stderr}`);
    const prepStart = Date.now();
    const state = await prepareReadyState(deps, template, {
      version: packageVersion(),
      apps: ['xterm'],
      beforeSave: async (source) => {
        await host.until(
          async () => (await host.guestExec(source, '/usr/bin/pgrep', ['-x', 'xterm'])).code === 0,
          'the clone source xterm',
          300_000,
        );
      },
    });
    const saveBytes = fs.statSync(state.saveImage).size;
    console.log(
      `ready state prepared in ${((Date.now() - prepStart) / 1000).toFixed(1)} s; save image ${(saveBytes / 2 ** 20).toFixed(0)} MiB`,
    );

    const clone: Array<{
      s: number;
      restore: number;
      start: number;
      rss?: number;
      disk: number;
      gone: number;
    }> = [];
    for (let i = 0; i < CLONE_RUNS; i++) {
      const name = `${template}-c${i}`;
      const since = follow.events.length;
      const t0 = Date.now();
      const result = await startClone(deps, template, name);
      const event = await xtermOf(name, since);
      const s = (event.receivedAt - t0) / 1000;
      const rss = host.qemuRssMiB(name);
      const disk = [`${name}-root.qcow2`, `${name}-private.qcow2`]
        .map((f) => fs.statSync(path.join(host.vmDir, f)).blocks * 512)
        .reduce((a, b) => a + b, 0);
      const g0 = Date.now();
      await removeClone(deps, host.vmDir, name);
      const gone = (Date.now() - g0) / 1000;
      clone.push({
        s,
        restore: result.timings.restoreMs / 1000,
        start: result.timings.totalMs / 1000,
        rss,
        disk,
        gone,
      });
      console.log(
        `clone ${i + 1}: xterm at the proxy ${s.toFixed(2)} s (checks ${(result.timings.checkMs / 1000).toFixed(2)} s, restore ${(result.timings.restoreMs / 1000).toFixed(2)} s, NIC ${(result.timings.nicMs / 1000).toFixed(2)} s, startClone ${(result.timings.totalMs / 1000).toFixed(2)} s), QEMU RSS ${rss ?? '?'} MiB, overlays ${(disk / 2 ** 20).toFixed(1)} MiB, removed in ${gone.toFixed(2)} s`,
      );
    }

    const coldRuns: number[] = [];
    const created = await host.createOnTemplate(cold, template, ['xterm']);
    if (created.code !== 0) throw new Error(`create --template failed: ${created.stderr}`);
    for (let i = 0; i < COLD_RUNS; i++) {
      const since = follow.events.length;
      const t0 = Date.now();
      const started = await host.cli(['start', cold, '--no-viewer'], 300_000);
      if (started.code !== 0) throw new Error(`start failed: ${started.stderr}`);
      const event = await xtermOf(cold, since);
      const s = (event.receivedAt - t0) / 1000;
      coldRuns.push(s);
      console.log(
        `cold boot ${i + 1}: xterm at the proxy ${s.toFixed(1)} s, QEMU RSS ${host.qemuRssMiB(cold) ?? '?'} MiB`,
      );
      const stopped = await host.cli(['stop', cold, '--force', '--timeout', '60'], 300_000);
      if (stopped.code !== 0) throw new Error(`stop failed: ${stopped.stderr}`);
    }

    const med = (k: 's' | 'restore' | 'start' | 'gone'): string => median(clone.map((c) => c[k])).toFixed(2);
    console.log('');
    console.log(`| start | runs | median to the xterm at the proxy |`);
    console.log(`| --- | --- | --- |`);
    console.log(
      `| clone of the ready state | ${clone.length} | ${med('s')} s (restore ${med('restore')} s, startClone ${med('start')} s) |`,
    );
    console.log(`| cold boot on the template | ${coldRuns.length} | ${median(coldRuns).toFixed(1)} s |`);
    console.log(
      `per clone: QEMU RSS median ${median(clone.map((c) => c.rss ?? 0)).toFixed(0)} MiB, overlays median ${(median(clone.map((c) => c.disk)) / 2 ** 20).toFixed(1)} MiB; shared save image ${(saveBytes / 2 ** 20).toFixed(0)} MiB; removeClone median ${med('gone')} s`,
    );
    follow.stop();
  } finally {
    await host.cli(['destroy', cold, '--yes'], 120_000).catch(() => undefined);
    await removeReadyState(deps, { name: template, vmDir: host.vmDir }).catch(() => undefined);
    await host.cli(['template', 'destroy', template], 120_000).catch(() => undefined);
    await hypervisor.close();
    await host.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
