import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { WindowInfo } from '../../../src/protocol/messages.js';
import { CLI, runCli, type CliResult } from '../../support/cli.js';
import { probeLibvirt, probeSecretService, type Probe } from '../../support/services.js';

const execFileP = promisify(execFile);

/**
 * The host side of the end-to-end proof, shared by test/e2e and bench/: a real
 * guest image, the real CLI (`create --import`, `start`, `stop`, `destroy`,
 * `windows`), the real host proxy on 127.0.0.1:9999 (where QEMU's user-mode
 * network sends the guest's 10.0.2.2:9999), a private XDG tree so nothing of
 * the developer's is touched, and the real libvirtd at qemu:///system.
 */

/**
 * Whether this host can run the end-to-end suites: root (the guest image build runs debootstrap and
 * mkfs.ext4 -d), each of `tools` on the PATH, libvirtd at qemu:///system and a Secret Service.
 */
export function probeE2e(tools: readonly string[] = []): Probe {
  if (process.getuid?.() !== 0) {
    return { available: false, reason: 'the guest image build (debootstrap, mkfs.ext4 -d) needs root' };
  }
  for (const tool of tools) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return { available: false, reason: `${tool} is not installed (.ci/apt-packages.txt)` };
    }
  }
  const libvirt = probeLibvirt('qemu:///system');
  if (!libvirt.available) return libvirt;
  return probeSecretService();
}
export const E2E_URI = 'qemu:///system';
export const PROXY_PORT = 9999;

export interface GuestImage {
  dir: string;
  disk: string;
  kernel: string;
  initrd: string;
  kernelArgs: string;
}

/** Builds (or finds cached) the Debian guest image; its progress goes to stderr. */
export async function buildGuestImage(
  log: (line: string) => void = (l) => process.stderr.write(l),
): Promise<GuestImage> {
  const script = path.resolve('test/e2e/guest-image/build.sh');
  const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    log(chunk);
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => log(chunk));
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)));
  if (code !== 0) throw new Error(`test/e2e/guest-image/build.sh failed with exit code ${code}`);
  const dir = stdout.trim().split('\n').pop()?.trim() ?? '';
  const image: GuestImage = {
    dir,
    disk: path.join(dir, 'disk.qcow2'),
    kernel: path.join(dir, 'vmlinux'),
    initrd: path.join(dir, 'initrd.img'),
    kernelArgs: fs.readFileSync(path.join(dir, 'kernel-args'), 'utf8').trim(),
  };
  for (const file of [image.disk, image.kernel, image.initrd]) {
    if (!fs.statSync(file).isFile()) throw new Error(`guest image output ${file} is missing`);
  }
  return image;
}

/** A window as `windows --json` prints it: the protocol's own WindowInfo. */
export type WindowView = WindowInfo;

export interface ProxyEventLine {
  time: string;
  vm: string;
  type: string;
  /** When this process read the event (Date.now()); benchmarks time against it. */
  receivedAt: number;
  [key: string]: unknown;
}

/** The app the end-to-end VM launches. */
export const isXterm = (w: WindowView): boolean => w.wmClass === 'XTerm';

/**
 * Whether `event` shows `vm` having a window that `match`es: a window-created,
 * or the window-list an agent sends when it connects (an app that mapped
 * before the agent connected arrives only there).
 */
export function showsWindow(event: ProxyEventLine, vm: string, match: (w: WindowView) => boolean): boolean {
  if (event.vm !== vm) return false;
  if (event.type === 'window-created') return match(event.window as WindowView);
  if (event.type === 'window-list') return (event.windows as WindowView[]).some(match);
  return false;
}

/** One private host: XDG directories, a VM directory libvirt-qemu can reach, and the proxy. */
export class AppVmHost {
  readonly root = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-e2e-'));
  readonly vmDir = path.join(this.root, 'vms');
  readonly env: NodeJS.ProcessEnv;
  private proxy: ChildProcess | undefined;
  private proxyLog = '';
  private followers: ChildProcess[] = [];

  constructor() {
    // QEMU runs as libvirt-qemu: it must be able to traverse down to the disks.
    fs.chmodSync(this.root, 0o711);
    fs.mkdirSync(this.vmDir, { mode: 0o711 });
    fs.chmodSync(this.vmDir, 0o711);
    const runtime = path.join(this.root, 'run');
    fs.mkdirSync(runtime, { mode: 0o700 });
    this.env = {
      ...process.env,
      XDG_CONFIG_HOME: path.join(this.root, 'config'),
      XDG_STATE_HOME: path.join(this.root, 'state'),
      XDG_CACHE_HOME: path.join(this.root, 'cache'),
      XDG_RUNTIME_DIR: runtime,
      LIBVIRT_DEFAULT_URI: E2E_URI,
      NO_COLOR: '1',
    };
    delete this.env.DISPLAY;
    delete this.env.WAYLAND_DISPLAY;
  }

  static vmName(tag: string): string {
    return `vmp-e2e-${tag}-${randomBytes(3).toString('hex')}`;
  }

  cli(args: string[], timeoutMs = 120_000): Promise<CliResult> {
    return runCli(args, this.env, timeoutMs);
  }

  /** Starts `vm-provisioner proxy` on loopback only and waits until it listens. */
  async startProxy(extraArgs: string[] = []): Promise<void> {
    const child = spawn(
      process.execPath,
      [CLI, 'proxy', '--listen', `127.0.0.1:${PROXY_PORT}`, ...extraArgs],
      {
        env: this.env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.proxy = child;
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (this.proxyLog += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.proxyLog += chunk));
    await this.until(
      () => /window proxy listening/.test(this.proxyLog),
      'the proxy to listen',
      30_000,
      () => {
        if (child.exitCode !== null) throw new Error(`proxy exited (${child.exitCode}): ${this.proxyLog}`);
      },
    );
  }

  get proxyOutput(): string {
    return this.proxyLog;
  }

  /** `windows --follow --json` as its own process: every proxy event from now on, parsed. */
  follow(): { events: ProxyEventLine[]; stop: () => void } {
    const child = spawn(process.execPath, [CLI, 'windows', '--follow', '--json'], {
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.followers.push(child);
    const events: ProxyEventLine[] = [];
    let buffer = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (line) events.push({ ...(JSON.parse(line) as ProxyEventLine), receivedAt: Date.now() });
      }
    });
    return { events, stop: () => child.kill('SIGTERM') };
  }

  /** `create --import` of the guest image as an app VM running `apps`, on QEMU user networking. */
  createVm(
    name: string,
    image: GuestImage,
    apps: string[],
    // Knobs for bench/app-vm-boot-trace.ts experiments; the test and the bench take the defaults.
    // `network: 'none'` for the seamless display, which needs no NIC.
    tuning: {
      vcpus?: number;
      extraKernelArgs?: string;
      extraArgs?: string[];
      network?: 'user' | 'none';
    } = {},
  ): Promise<CliResult> {
    const kernelArgs = tuning.extraKernelArgs
      ? `${image.kernelArgs} ${tuning.extraKernelArgs}`
      : image.kernelArgs;
    return this.cli(
      [
        'create',
        '--import',
        image.disk,
        '--kernel',
        image.kernel,
        '--initrd',
        image.initrd,
        '--kernel-args',
        kernelArgs,
        '--virt-type',
        'qemu',
        '--network',
        tuning.network ?? 'user',
        '--memory',
        '2048',
        '--vcpus',
        String(tuning.vcpus ?? 2),
        '--name',
        name,
        '--vm-dir',
        this.vmDir,
        ...apps.flatMap((app) => ['--autostart-app', app]),
        ...(tuning.extraArgs ?? []),
        '--yes',
      ],
      300_000,
    );
  }

  /** `template import` of the guest image, as a template its app VMs boot from (direct kernel boot, user networking). */
  importTemplate(name: string, image: GuestImage, memoryMb = 2048): Promise<CliResult> {
    return this.cli(
      [
        'template',
        'import',
        name,
        image.disk,
        '--kernel',
        image.kernel,
        '--initrd',
        image.initrd,
        '--kernel-args',
        image.kernelArgs,
        '--virt-type',
        'qemu',
        '--network',
        'user',
        '--memory',
        String(memoryMb),
        '--vm-dir',
        this.vmDir,
      ],
      600_000,
    );
  }

  /** `create --template`: an app VM on `template` running `apps`. */
  createOnTemplate(name: string, template: string, apps: string[], extra: string[] = []): Promise<CliResult> {
    return this.cli(
      [
        'create',
        '--template',
        template,
        '--name',
        name,
        ...apps.flatMap((app) => ['--autostart-app', app]),
        ...extra,
        '--yes',
      ],
      120_000,
    );
  }

  /** The VM's windows as the proxy knows them (`windows NAME --json`); empty if no agent yet. */
  async windowsOf(name: string): Promise<WindowView[]> {
    const result = await this.cli(['windows', name, '--json'], 20_000);
    if (result.code !== 0) return [];
    const parsed = JSON.parse(result.stdout) as { vms?: Array<{ name: string; windows: WindowView[] }> };
    return parsed.vms?.find((vm) => vm.name === name)?.windows ?? [];
  }

  /** Runs a program in the guest through the QEMU guest agent (guest-exec) and returns its output. */
  async guestExec(
    name: string,
    file: string,
    args: string[],
    env: string[] = [],
    timeoutMs = 30_000,
  ): Promise<GuestExecResult> {
    const request = {
      execute: 'guest-exec',
      arguments: { path: file, arg: args, env, 'capture-output': true },
    };
    const started = await qemuAgent(name, request);
    const pid = (started as { pid: number }).pid;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const status = (await qemuAgent(name, { execute: 'guest-exec-status', arguments: { pid } })) as {
        exited: boolean;
        exitcode?: number;
        'out-data'?: string;
        'err-data'?: string;
      };
      if (status.exited) {
        return {
          code: status.exitcode ?? -1,
          stdout: Buffer.from(status['out-data'] ?? '', 'base64').toString('utf8'),
          stderr: Buffer.from(status['err-data'] ?? '', 'base64').toString('utf8'),
        };
      }
      await sleep(200);
    }
    throw new Error(`guest-exec ${file} in ${name} did not finish within ${timeoutMs / 1000} s`);
  }

  /**
   * What the guest says about its terminals, for a failure message: its host name as the kernel has
   * it, the session user's processes, and each bash's TERM. Never throws: a failing report must not
   * hide the failure it explains.
   */
  async guestTerminalReport(name: string): Promise<string> {
    const script = [
      'echo "hostname: $(cat /proc/sys/kernel/hostname) (/etc/hostname: $(cat /etc/hostname))"',
      'ps -o pid,etimes,stat,wchan:20,args -u user',
      'for p in $(pgrep -u user -x bash); do echo "bash $p: $(tr "\\0" "\\n" </proc/$p/environ | grep -E "^(TERM|HOME|SHELL)=" | tr "\\n" " ")"; done',
      'ls -la /home/user',
    ].join('\n');
    try {
      const r = await this.guestExec(name, '/bin/sh', ['-c', script]);
      return `${r.stdout}${r.stderr}`;
    } catch (err) {
      return `(the QEMU guest agent did not answer: ${(err as Error).message})`;
    }
  }

  /** Polls `check` until it returns a value (test side only; the product never polls). */
  async until<T>(
    check: () => T | undefined | false | Promise<T | undefined | false>,
    what: string,
    timeoutMs: number,
    onTick?: () => void,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      onTick?.();
      try {
        const value = await check();
        if (value !== undefined && value !== false) return value;
      } catch (err) {
        last = err;
      }
      await sleep(250);
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
  }

  /** The RSS of the QEMU process running `name`, in MiB (from /proc). */
  qemuRssMiB(name: string): number | undefined {
    for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      let cmdline: string;
      try {
        cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      if (!cmdline.includes(`guest=${name},`)) continue;
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
      return m ? Math.round(Number(m[1]) / 1024) : undefined;
    }
    return undefined;
  }

  /** Stops everything this host started; the VM itself is the test's to destroy (that is under test). */
  async close(): Promise<void> {
    await Promise.all([...this.followers, ...(this.proxy ? [this.proxy] : [])].map(stopChild));
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

/** SIGTERM, then SIGKILL after 5 s; resolves once the child has exited and its pipes are closed. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const closed = new Promise((r) => child.once('close', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await closed;
  clearTimeout(timer);
}

export interface GuestExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function qemuAgent(name: string, request: object): Promise<unknown> {
  const { stdout } = await execFileP(
    'virsh',
    ['-c', E2E_URI, 'qemu-agent-command', name, JSON.stringify(request), '--timeout', '10'],
    { timeout: 30_000, encoding: 'utf8' },
  );
  return (JSON.parse(stdout) as { return: unknown }).return;
}

/** The guest's X display as root sees it: LightDM's server and its authority file. */
/**
 * The host's CPU time so far, in seconds (/proc/stat, all CPUs): busy, idle, and stolen by the
 * hypervisor this machine runs on. Under software emulation the guest is only as fast as the host's
 * free CPU, so a slow boot is read against what the host had to give while it ran.
 */
export function hostCpuSeconds(): { busy: number; idle: number; steal: number } {
  const fields = fs
    .readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]!
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
  const hz = 100; // USER_HZ: /proc/stat counts in 1/100 s on every Linux architecture we run on
  return { busy: (user + nice + system + irq + softirq) / hz, idle: (idle + iowait) / hz, steal: steal / hz };
}

/** One line on what the host's CPUs did between two `hostCpuSeconds()` readings. */
export function describeHostCpu(
  before: ReturnType<typeof hostCpuSeconds>,
  after: ReturnType<typeof hostCpuSeconds>,
): string {
  const d = (k: 'busy' | 'idle' | 'steal'): string => (after[k] - before[k]).toFixed(1);
  return `host CPU meanwhile: ${d('busy')} s busy, ${d('idle')} s idle, ${d('steal')} s stolen by the hypervisor`;
}

export const GUEST_X_ENV = ['DISPLAY=:0', 'XAUTHORITY=/var/run/lightdm/root/:0', 'PATH=/usr/bin:/bin'];

/** The median of the benches' samples (the mean of the middle two for an even count). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
