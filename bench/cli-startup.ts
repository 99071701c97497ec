/**
 * CLI start-up, side by side in one run (issue 19, docs/benchmarks.md):
 *
 *   - `vm-provisioner --help` against `node -e 0` (goal: at most 2x);
 *   - `vm-provisioner list --json` of 200 VMs against `virsh list --all` on the
 *     same libvirt test-driver file (goal: at most 2x). The file (200 domains
 *     carrying our metadata, every third shut off) and a config file for each
 *     VM are made here, in a temporary directory. Once the config files are
 *     older than the cache's racy window (src/spec/list-settings.ts), the
 *     warm-up run fills the cache, and the timed runs read it as every `list`
 *     after the first does (and the domains' descriptions, src/libvirt/listing-cache.ts);
 *     a second pair times `list --json` without a usable cache (XDG_CACHE_HOME under a
 *     file), parsing all 200 configs and describing all 200 definitions;
 *   - the floor of any Node.js `list` (bench/list-floor.ts: Node, the libvirt
 *     binding, opening the same file and listing its domains) and `node -e 0`,
 *     each against `virsh list --all`: what of the ratio is not vm-provisioner's.
 *
 * Each pair runs in turn (A B A B ...), N times after one warm-up each, as
 * whole processes: wall time, and CPU time from this process's reaped-children
 * counters (/proc/self/stat, 10 ms ticks). The ratio is taken pair by pair, so
 * the machine's speed drifting affects both sides alike.
 *
 * With VMP_BENCH_BASELINE_CLI=path/to/another/build/dist/src/cli/main.js it
 * also times `start NAME --no-viewer` of a shut-off VM on a small test-driver
 * file against that build (the CLI part of a start: Node, loading, libvirt).
 *
 *   npm run build && node dist/bench/cli-startup.js [N]
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defaultSpec } from '../src/spec/defaults.js';
import { RACY_MS } from '../src/spec/list-settings.js';
import { specToToml } from '../src/spec/toml.js';
import { fixtureDomainName, testDriverXml } from '../test/support/test-driver-file.js';

const N = Number(process.argv[2] ?? 20);
const VMS = 200;
const CLI = path.resolve('dist/src/cli/main.js');
const LABELS = ['red', 'orange', 'yellow', 'green', 'blue', 'purple', 'gray', 'black'] as const;

interface Sample {
  wallMs: number;
  cpuMs: number;
}

/** User + system CPU of this process's reaped children so far, in ms (fields 16 and 17 of /proc/self/stat). */
function childrenCpuMs(): number {
  const fields = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / 100;
}

function run(argv: string[], env: NodeJS.ProcessEnv, expectOut?: (out: string) => void): Sample {
  const cpu0 = childrenCpuMs();
  const t0 = performance.now();
  const result = spawnSync(argv[0]!, argv.slice(1), { env, encoding: 'utf8', maxBuffer: 64 << 20 });
  const wallMs = performance.now() - t0;
  const cpuMs = childrenCpuMs() - cpu0;
  if (result.status !== 0) throw new Error(`${argv.join(' ')} exited ${result.status}: ${result.stderr}`);
  expectOut?.(result.stdout);
  return { wallMs, cpuMs };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function pair(
  title: string,
  a: { label: string; argv: string[]; check?: (out: string) => void },
  b: { label: string; argv: string[] },
  env: NodeJS.ProcessEnv,
): void {
  run(a.argv, env, a.check);
  run(b.argv, env);
  const as: Sample[] = [];
  const bs: Sample[] = [];
  for (let i = 0; i < N; i++) {
    as.push(run(a.argv, env, a.check));
    bs.push(run(b.argv, env));
  }
  const row = (label: string, s: Sample[]): string =>
    `| ${label} | ${N} | ${median(s.map((x) => x.wallMs)).toFixed(0)} | ${Math.min(...s.map((x) => x.wallMs)).toFixed(0)} | ${Math.max(...s.map((x) => x.wallMs)).toFixed(0)} | ${median(s.map((x) => x.cpuMs)).toFixed(0)} |`;
  const ratios = as.map((x, i) => x.wallMs / bs[i]!.wallMs);
  const cpuRatio = median(as.map((x) => x.cpuMs)) / median(bs.map((x) => x.cpuMs));
  console.log(`\n${title}\n`);
  console.log('| command | runs | wall median ms | min | max | CPU median ms |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  console.log(row(a.label, as));
  console.log(row(b.label, bs));
  console.log(
    `\nratio, wall, pair by pair: median ${median(ratios).toFixed(2)} (min ${Math.min(...ratios).toFixed(2)}, max ${Math.max(...ratios).toFixed(2)}); CPU, of the medians: ${cpuRatio.toFixed(2)}`,
  );
}

function checkList(out: string): void {
  const listed = JSON.parse(out) as Array<{ label: string }>;
  if (listed.length !== VMS || listed[1]!.label !== LABELS[1]) {
    throw new Error(`list --json listed ${listed.length} VMs, the second labelled ${listed[1]?.label}`);
  }
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-bench-startup-'));
try {
  const file = path.join(dir, `domains-${VMS}.xml`);
  fs.writeFileSync(file, testDriverXml(VMS));
  const configs = path.join(dir, 'config', 'vm-provisioner');
  fs.mkdirSync(configs, { recursive: true });
  for (let i = 0; i < VMS; i++) {
    const name = fixtureDomainName('vmp-bench', i);
    const spec = defaultSpec(name, {
      label: LABELS[i % LABELS.length]!,
      onStop: i % 2 ? 'save' : 'shutdown',
    });
    fs.writeFileSync(path.join(configs, `${name}.toml`), specToToml(spec));
  }
  const written = Date.now();
  const uri = `test://${file}`;
  const env = {
    PATH: process.env.PATH,
    HOME: dir,
    XDG_CONFIG_HOME: path.join(dir, 'config'),
    LANG: 'C.UTF-8',
  };
  console.log(
    `node ${process.version}, ${os.cpus().length} CPUs, load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );

  pair(
    '`vm-provisioner --help` against `node -e 0`',
    { label: 'vm-provisioner --help', argv: [process.execPath, CLI, '--help'] },
    { label: 'node -e 0', argv: [process.execPath, '-e', '0'] },
    env,
  );
  // Files stamped within the cache's racy window are read every time: let them age first.
  const wait = written + RACY_MS + 100 - Date.now();
  if (wait > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, wait);
  pair(
    `\`vm-provisioner list --json\` of ${VMS} VMs against \`virsh list --all\`, same test-driver file`,
    {
      label: 'vm-provisioner list --json --connect test:///…',
      argv: [process.execPath, CLI, 'list', '--json', '--connect', uri],
      check: checkList,
    },
    { label: 'virsh list --all', argv: ['virsh', '-c', uri, 'list', '--all'] },
    env,
  );
  const cacheFile = path.join(dir, '.cache', 'vm-provisioner', 'list-settings.json');
  const cached = Object.keys((JSON.parse(fs.readFileSync(cacheFile, 'utf8')) as { entries: object }).entries);
  // Otherwise the pair above did not time what it says.
  if (cached.length !== VMS) throw new Error(`the list cache holds ${cached.length} of ${VMS} configs`);
  const listingFile = path.join(dir, '.cache', 'vm-provisioner', 'listing.json');
  const described = Object.keys(
    (JSON.parse(fs.readFileSync(listingFile, 'utf8')) as { entries: object }).entries,
  );
  if (described.length !== VMS)
    throw new Error(`the listing cache holds ${described.length} of ${VMS} domains`);
  // A file where the cache directory would be: no cache is read or written, every config is parsed.
  const noCache = path.join(dir, 'no-cache');
  fs.writeFileSync(noCache, '');
  pair(
    `\`vm-provisioner list --json\` without a usable cache (all ${VMS} configs parsed) against \`virsh list --all\``,
    {
      label: 'vm-provisioner list --json, no cache',
      argv: [process.execPath, CLI, 'list', '--json', '--connect', uri],
      check: checkList,
    },
    { label: 'virsh list --all', argv: ['virsh', '-c', uri, 'list', '--all'] },
    { ...env, XDG_CACHE_HOME: noCache },
  );
  pair(
    `the floor: Node, the libvirt binding, opening the same file and listing its ${VMS} domains, against \`virsh list --all\``,
    {
      label: 'node list-floor.js test:///…',
      argv: [process.execPath, path.resolve('dist/bench/list-floor.js'), uri],
      check: (out) => {
        if (out !== `${VMS} domains\n`) throw new Error(`list-floor printed ${out}`);
      },
    },
    { label: 'virsh list --all', argv: ['virsh', '-c', uri, 'list', '--all'] },
    env,
  );
  pair(
    '`node -e 0` against `virsh list --all` of the same file',
    { label: 'node -e 0', argv: [process.execPath, '-e', '0'] },
    { label: 'virsh list --all', argv: ['virsh', '-c', uri, 'list', '--all'] },
    env,
  );
  const baseline = process.env.VMP_BENCH_BASELINE_CLI;
  if (baseline) {
    const small = path.join(dir, 'domains-3.xml');
    fs.writeFileSync(small, testDriverXml(3));
    // vmp-bench-002 is shut off: each run starts it (the test driver forgets when the process ends).
    const start = (cli: string): string[] => [
      process.execPath,
      cli,
      'start',
      fixtureDomainName('vmp-bench', 2),
      '--no-viewer',
      '--connect',
      `test://${small}`,
    ];
    pair(
      '`vm-provisioner start NAME --no-viewer`, this build against the baseline build',
      { label: 'start, this build', argv: start(CLI) },
      { label: 'start, baseline build', argv: start(path.resolve(baseline)) },
      env,
    );
  }
  console.log(
    `\nload average after: ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
