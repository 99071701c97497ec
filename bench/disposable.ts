/**
 * Disposables in a row on the real end-to-end guest image (test/e2e/guest-image) imported as a
 * template, with the real CLI, libvirtd, keyring and proxy (QEMU software emulation):
 *
 *   - N runs of `run --disposable -- xterm` (default 50), one after another; every K-th (default 5)
 *     has its CLI SIGKILLed mid-start, at a random point in its first 8 s;
 *   - for each of the others: CLI start to its xterm at the proxy; the QEMU process's RSS and the
 *     disk the disposable's files take while the xterm is up; then the xterm is closed in the guest
 *     (pkill through the QEMU guest agent) and the times until the CLI says it removed everything and
 *     until it exits (after preloading the next one) are taken;
 *   - then O runs (default 5) of `open --disposable FILE` to the image's stand-in viewer window, and
 *     C (default 2) cold boots with `disposable_clones = false`, side by side with the clones;
 *   - each run is told apart by how it started (the CLI says so on stderr): a preloaded disposable
 *     (running, claimed), a clone of the template's ready state, the first run that prepares that
 *     state and then clones, or a cold boot; the CLI runs with VMP_TRACE=1 and its phase stamps
 *     split the time;
 *   - at the end, `vm-provisioner gc` (the next run also sweeps killed ones as it starts), then every
 *     kind of leftover is counted: domains, files in the VM directory, volumes, owner records,
 *     journals, configs, keyring entries, proxy entries.
 *
 *   npm run build && env -u DISPLAY HOME=$(mktemp -d) dbus-run-session -- \
 *     bash .ci/test-session.sh node dist/bench/disposable.js [N] [K] [O] [C]
 *
 * Needs root (the image build) and libvirtd at qemu:///system; nothing else may listen on port
 * 9999. Everything it makes is removed at the end.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { AGENT_SECRET_SERVICE, PASSWORD_SERVICE } from '../src/service/ports.js';
import { poolNameFor } from '../src/storage/volumes.js';
import { parseTrace } from '../src/util/trace.js';
import { secretToolLookup } from '../test/support/keyring-control.js';
import { CLI } from '../test/support/cli.js';
import { allDomainNames, removeDomain, virsh } from '../test/support/libvirt-fixture.js';
import {
  AppVmHost,
  buildGuestImage,
  describeHostCpu,
  hostCpuSeconds,
  isXterm,
  median,
  showsWindow,
} from '../test/e2e/support/app-vm-host.js';

const N = Number(process.argv[2] ?? 50);
const KILL_EVERY = Number(process.argv[3] ?? 5);
/** After the N runs: this many `open --disposable FILE`, then this many cold boots (`disposable_clones = false`). */
const OPEN_RUNS = Number(process.argv[4] ?? 5);
const COLD_RUNS = Number(process.argv[5] ?? 2);

/** What a run starts: `run --disposable -- xterm`, or `open --disposable FILE` (the image's xdg-open shows it in an xterm titled `vmp-opened NAME`). */
type Kind = 'run' | 'open';

interface Sample {
  name: string;
  kind: Kind;
  /** How it started: a clone of the ready state, one that prepared the ready state first, or a boot. */
  how: 'preloaded' | 'clone' | 'prepared, then clone' | 'cold boot';
  toXterm: number;
  /** From closing its xterm until the CLI says it is removed, and until the CLI exits (after preloading the next). */
  untilGone: number;
  untilExit: number;
  /** How long the next one's preload waited for its guest to settle (ms), when it did. */
  settleMs: number | undefined;
  rssMiB: number | undefined;
  diskMiB: number;
  /** The CLI's phase stamps (VMP_TRACE), then the xterm at the proxy: label and ms since the CLI's start. */
  phases: Array<{ label: string; ms: number }>;
}

async function main(): Promise<void> {
  const image = await buildGuestImage(() => undefined);
  const host = new AppVmHost();
  const template = AppVmHost.vmName('bdisp');
  const names = new Set<string>();
  const samples: Sample[] = [];
  let killed = 0;
  try {
    await host.startProxy();
    const follow = host.follow();
    const imported = await host.importTemplate(template, image);
    if (imported.code !== 0) throw new Error(`template import failed: ${imported.stderr}`);
    const records = path.join(host.root, 'state', 'vm-provisioner', 'disposables');

    const letter = path.join(host.root, 'bench-letter.txt');
    fs.writeFileSync(letter, 'an untrusted letter\n');
    const defaultsFile = path.join(host.root, 'config', 'vm-provisioner', 'defaults.toml');
    const total = N + OPEN_RUNS + COLD_RUNS;
    for (let i = 0; i < total; i++) {
      const kind: Kind = i >= N && i < N + OPEN_RUNS ? 'open' : 'run';
      if (i === N + OPEN_RUNS) {
        // The cold boots, side by side with the clones: no clone, no preload.
        fs.mkdirSync(path.dirname(defaultsFile), { recursive: true });
        fs.writeFileSync(defaultsFile, 'disposable_clones = false\n');
      }
      const wanted =
        kind === 'open'
          ? (w: Parameters<typeof isXterm>[0]) => w.title === 'vmp-opened bench-letter.txt'
          : isXterm;
      const cpu0 = hostCpuSeconds();
      const since = follow.events.length;
      const t0 = Date.now();
      const common = ['--disposable', '--template', template, '--no-viewer', '--timeout', '300'];
      const child = spawn(
        process.execPath,
        [CLI, ...(kind === 'open' ? ['open', ...common, letter] : ['run', ...common, '--', 'xterm'])],
        { env: { ...host.env, VMP_TRACE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.stdout.resume();
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      const nameNow = (): string | undefined => /^(disp\d{4}): disposable on template/m.exec(stderr)?.[1];

      if (i < N && i % KILL_EVERY === KILL_EVERY - 1) {
        const delay = Math.round(Math.random() * 8000);
        await new Promise((r) => setTimeout(r, delay));
        // Its name: from its record (written first), or from its log once it has started.
        const recorded = fs.existsSync(records)
          ? fs
              .readdirSync(records)
              .filter((f) => f.endsWith('.json'))
              .map((f) => f.slice(0, -5))
          : [];
        for (const n of recorded) names.add(n);
        child.kill('SIGKILL');
        await exited;
        killed += 1;
        process.stderr.write(
          `${i + 1}/${total}: SIGKILL after ${delay} ms (${recorded.join(', ') || 'no record yet'})\n`,
        );
        continue;
      }

      const name = await host
        .until(
          () => {
            const n = nameNow();
            return n && follow.events.slice(since).some((e) => showsWindow(e, n, wanted)) ? n : undefined;
          },
          `disposable ${i + 1}'s xterm`,
          300_000,
        )
        .catch((err: Error) => {
          throw new Error(`${err.message}; its CLI said: ${stderr.slice(-2000)}`);
        });
      const xtermEvent = follow.events.slice(since).find((e) => showsWindow(e, name, wanted))!;
      names.add(name);
      const toXterm = (xtermEvent.receivedAt - t0) / 1000;
      const rssMiB = host.qemuRssMiB(name);
      const diskMiB =
        fs
          .readdirSync(host.vmDir)
          .filter((f) => f.startsWith(`${name}-`))
          .map((f) => fs.statSync(path.join(host.vmDir, f)).blocks * 512)
          .reduce((a, b) => a + b, 0) /
        1024 ** 2;
      const t1 = Date.now();
      // Not host.guestExec: it would poll pkill's status from a guest agent that is gone with the VM.
      virsh(
        'qemu-agent-command',
        name,
        JSON.stringify({
          execute: 'guest-exec',
          arguments: { path: '/usr/bin/pkill', arg: ['-x', 'xterm'] },
        }),
        '--timeout',
        '10',
      );
      const removedLine = new RegExp(`^${name}: removed$`, 'm');
      let goneAt: number | undefined;
      const watchGone = setInterval(() => {
        if (goneAt === undefined && removedLine.test(stderr)) goneAt = Date.now();
      }, 20);
      const code = await exited;
      clearInterval(watchGone);
      const untilExit = (Date.now() - t1) / 1000;
      const untilGone = ((goneAt ?? Date.now()) - t1) / 1000;
      const settled = /^vmp-trace \d+ preload settled after (\d+) ms/m.exec(stderr);
      const settleMs = settled ? Number(settled[1]) : undefined;
      // xterm answers pkill's SIGTERM with an exit status of its own (15): the CLI then says so and exits 1.
      if (!removedLine.test(stderr) || (code !== 0 && code !== 1)) {
        throw new Error(`disposable ${name} ended with ${code}: ${stderr}`);
      }
      const how: Sample['how'] =
        i >= N + OPEN_RUNS || /no clone \(/.test(stderr)
          ? 'cold boot'
          : /preparing template .* ready state/.test(stderr)
            ? 'prepared, then clone'
            : new RegExp(`^${name}: a preloaded disposable$`, 'm').test(stderr)
              ? 'preloaded'
              : 'clone';
      // The CLI's clock starts when its process does, a few ms after t0: the last phase takes that in.
      // Stamps after the xterm (the next one's preload) are not part of this start.
      const phases = [
        ...parseTrace(stderr).filter((p) => p.ms < toXterm * 1000),
        { label: 'xterm at the proxy', ms: toXterm * 1000 },
      ];
      samples.push({ name, kind, how, toXterm, untilGone, untilExit, settleMs, rssMiB, diskMiB, phases });
      process.stderr.write(
        `${i + 1}/${total}: ${name} (${kind}, ${how}) window after ${toXterm.toFixed(2)} s, gone ${untilGone.toFixed(2)} s after the close (CLI exit ${untilExit.toFixed(2)} s), ` +
          `QEMU RSS ${rssMiB ?? '?'} MiB, disk ${diskMiB.toFixed(1)} MiB; ${describeHostCpu(cpu0, hostCpuSeconds())}\n`,
      );
    }

    const gc = await host.cli(['gc'], 300_000);
    if (gc.code !== 0) throw new Error(`gc failed: ${gc.stderr}`);
    for (const line of gc.stdout.split('\n').filter(Boolean)) process.stderr.write(`gc: ${line}\n`);
    const left = await leftovers(host, template, names);
    follow.stop();

    const f = (xs: number[], digits = 2): string =>
      xs.length === 0
        ? '- | - | -'
        : `${median(xs).toFixed(digits)} | ${Math.min(...xs).toFixed(digits)} | ${Math.max(...xs).toFixed(digits)}`;
    // Every run once the ready state exists and clones are on: preloaded or, after a SIGKILL, a clone.
    const later = samples
      .filter((s) => s.kind === 'run' && (s.how === 'preloaded' || s.how === 'clone'))
      .map((s) => s.toXterm);
    const rss = samples.map((s) => s.rssMiB).filter((x): x is number => x !== undefined);
    const settles = samples
      .map((s) => s.settleMs)
      .filter((x): x is number => x !== undefined)
      .map((ms) => ms / 1000);
    process.stdout.write(
      [
        `image ${image.disk}; ${N} disposables in a row, ${killed} of them SIGKILLed mid-start; ` +
          `then ${OPEN_RUNS} open --disposable and ${COLD_RUNS} cold boots (disposable_clones = false); then gc`,
        '',
        '| measure | runs | median | min | max |',
        '| --- | ---: | ---: | ---: | ---: |',
        ...(['preloaded', 'clone', 'prepared, then clone', 'cold boot'] as const).map((how) => {
          const xs = samples.filter((s) => s.kind === 'run' && s.how === how).map((s) => s.toXterm);
          return `| run --disposable -> xterm at the proxy (${how}): s | ${xs.length} | ${f(xs)} |`;
        }),
        `| run --disposable -> xterm at the proxy (all but the first and the cold boots): s | ${later.length} | ${f(later)} |`,
        ...(['preloaded', 'clone'] as const).map((how) => {
          const xs = samples.filter((s) => s.kind === 'open' && s.how === how).map((s) => s.toXterm);
          return `| open --disposable FILE -> its window at the proxy (${how}): s | ${xs.length} | ${f(xs)} |`;
        }),
        `| xterm closed in the guest -> everything of it removed: s | ${samples.length} | ${f(samples.map((s) => s.untilGone))} |`,
        `| xterm closed in the guest -> CLI exit (after preloading the next): s | ${samples.length} | ${f(samples.map((s) => s.untilExit))} |`,
        `| the next one's preload: waiting for its guest to settle: s | ${settles.length} | ${f(settles)} |`,
        `| host RSS of the disposable's QEMU: MiB | ${rss.length} | ${f(rss, 0)} |`,
        `| disk of a running disposable (allocated): MiB | ${samples.length} | ${f(
          samples.map((s) => s.diskMiB),
          1,
        )} |`,
        '',
        ...(['preloaded', 'clone'] as const).flatMap((how) =>
          phaseTable(
            how,
            samples.filter((s) => s.kind === 'run' && s.how === how),
          ),
        ),
        `leftovers after gc: ${left.length === 0 ? 'none' : left.join('; ')}`,
        '',
      ].join('\n'),
    );
  } finally {
    for (const name of names) if (allDomainNames().includes(name)) removeDomain(name);
    await host.cli(['template', 'destroy', template], 120_000).catch(() => undefined);
    await host.close();
  }
}

/**
 * Where the time of the clone runs went: for each phase the CLI stamped (src/util/trace.ts), the
 * median of its duration since the stamp before it (the first: since the CLI's process began).
 */
function phaseTable(how: Sample['how'], clones: Sample[]): string[] {
  if (clones.length === 0) return [];
  const labels = clones[0]!.phases.map((p) => p.label);
  const rows = labels.map((label, i) => {
    const ds = clones
      .map((s) => {
        const at = s.phases.findIndex((p) => p.label === label);
        return at < 0 ? undefined : s.phases[at]!.ms - (at === 0 ? 0 : s.phases[at - 1]!.ms);
      })
      .filter((d): d is number => d !== undefined);
    return `| ${i === 0 ? 'CLI start' : labels[i - 1]} -> ${label} | ${ds.length} | ${Math.round(median(ds))} | ${Math.round(Math.min(...ds))} | ${Math.round(Math.max(...ds))} |`;
  });
  return [
    `Runs started as "${how}", phase by phase (ms):`,
    '',
    '| phase | runs | median | min | max |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
  ];
}

/** Every trace of the disposables named (or on the template), listed. */
async function leftovers(host: AppVmHost, template: string, names: Set<string>): Promise<string[]> {
  const left: string[] = [];
  for (const d of allDomainNames().filter((n) => /^disp\d{4}$/.test(n))) {
    if (virsh('dumpxml', d, '--inactive').includes(`name='${template}'`)) left.push(`domain ${d}`);
  }
  for (const f of fs.readdirSync(host.vmDir).filter((f) => f.startsWith('disp'))) left.push(`file ${f}`);
  try {
    const pool = poolNameFor(host.vmDir);
    virsh('pool-refresh', pool);
    for (const v of virsh('vol-list', pool, '--name')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.startsWith('disp')))
      left.push(`volume ${v}`);
  } catch {
    // no pool: no volumes
  }
  const state = path.join(host.root, 'state', 'vm-provisioner');
  for (const sub of ['disposables', 'journal']) {
    const dir = path.join(state, sub);
    if (fs.existsSync(dir)) for (const f of fs.readdirSync(dir)) left.push(`${sub}/${f}`);
  }
  const configs = path.join(host.root, 'config', 'vm-provisioner');
  if (fs.existsSync(configs))
    for (const f of fs.readdirSync(configs).filter((f) => f.startsWith('disp'))) left.push(`config ${f}`);
  for (const name of names) {
    if (secretToolLookup(PASSWORD_SERVICE, name) !== null) left.push(`keyring password ${name}`);
    if (secretToolLookup(AGENT_SECRET_SERVICE, name) !== null) left.push(`keyring agent secret ${name}`);
  }
  const windows = JSON.parse((await host.cli(['windows', '--json'], 20_000)).stdout) as {
    vms: Array<{ name: string }>;
  };
  for (const vm of windows.vms.filter((v) => /^disp\d{4}$/.test(v.name))) left.push(`proxy entry ${vm.name}`);
  return left;
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`disposable bench: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
