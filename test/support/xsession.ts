import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/**
 * A real X session for guest-agent tests: i3 (with a bar, so tests prove bars
 * and frames are not reported) on the test display, plus helpers that drive
 * real X clients with xterm, xdotool and i3-msg. Every process started here is
 * stopped by its PID in `stop()`.
 */
export class XSession {
  private readonly children: ChildProcess[] = [];
  private readonly dir = mkdtempSync(join(tmpdir(), 'vmp-agent-i3-'));

  constructor(readonly display: string) {}

  get env(): NodeJS.ProcessEnv {
    return { ...process.env, DISPLAY: this.display };
  }

  /** i3's own IPC socket in the session's directory, so nothing depends on a stale root-window property. */
  get i3Socket(): string {
    return join(this.dir, 'i3-ipc.sock');
  }

  async startI3(extraConfig: string[] = []): Promise<void> {
    const config = join(this.dir, 'config');
    writeFileSync(
      config,
      [
        'font pango:monospace 8',
        'floating_modifier Mod1',
        'focus_on_window_activation focus',
        `ipc-socket ${this.i3Socket}`,
        'bar {',
        '  status_command true',
        '}',
        ...extraConfig,
        '',
      ].join('\n'),
    );
    // An i3 left behind by an earlier suite would make this one refuse to start
    // ("another window manager is running"): wait until the display has no WM.
    await this.until(async () => !(await this.hasWindowManager()), 'the display to have no window manager');
    const log = join(this.dir, 'i3.log');
    const out = openSync(log, 'w');
    const i3 = spawn('i3', ['-c', config], { env: this.env, stdio: ['ignore', out, out] });
    closeSync(out);
    i3.on('error', () => undefined);
    this.children.push(i3);
    const why = () => {
      const status =
        i3.exitCode !== null || i3.signalCode !== null ? `i3 exited (${i3.exitCode ?? i3.signalCode}); ` : '';
      return `${status}i3 log: ${readFileSync(log, 'utf8').trim().split('\n').slice(-5).join(' | ')}`;
    };
    try {
      await this.until(async () => {
        await this.i3msg('-t', 'get_version');
        return true;
      }, 'i3 to answer on its IPC socket');
    } catch (err) {
      throw new Error(`${(err as Error).message}; ${why()}`, { cause: err });
    }
    // The bar maps a moment after i3 starts and shrinks the workspace; wait so geometry is stable.
    await this.until(
      async () => (await this.xdotool('search', '--class', 'i3bar')).trim() !== '',
      'i3bar to map',
    );
  }

  /** True while some client holds SubstructureRedirect on the root, as a running WM does. */
  private async hasWindowManager(): Promise<boolean> {
    const { stdout } = await execFileP('xprop', ['-root', '_NET_SUPPORTING_WM_CHECK', 'I3_SOCKET_PATH'], {
      env: this.env,
      timeout: 10_000,
    });
    const check = /_NET_SUPPORTING_WM_CHECK\(WINDOW\): window id # (0x[0-9a-f]+)/.exec(stdout);
    if (!check) return false;
    // The property outlives a WM killed hard; only a live check window counts.
    try {
      await execFileP('xprop', ['-id', check[1] as string, '_NET_WM_NAME'], {
        env: this.env,
        timeout: 10_000,
      });
      return true;
    } catch {
      return false;
    }
  }

  /** Starts a child on the display and remembers it for cleanup. */
  spawn(cmd: string, args: string[], stdin: 'ignore' | 'pipe' = 'ignore'): ChildProcess {
    const child = spawn(cmd, args, { env: this.env, stdio: [stdin, 'ignore', 'ignore'] });
    child.on('error', () => undefined);
    this.children.push(child);
    return child;
  }

  /** Opens an xterm titled `title` with WM_CLASS instance `name`; resolves with its pid. */
  xterm(title: string, name = 'vmp-test'): ChildProcess {
    return this.spawn('xterm', ['-T', title, '-name', name, '-e', 'sleep 600']);
  }

  async i3msg(...args: string[]): Promise<string> {
    const { stdout } = await execFileP('i3-msg', ['-s', this.i3Socket, ...args], {
      env: this.env,
      timeout: 10_000,
    });
    return stdout;
  }

  /** The client area of `wid` in root coordinates, as xwininfo computes it (outer corner + border). */
  async xwininfo(wid: number): Promise<{ x: number; y: number; width: number; height: number }> {
    const { stdout } = await execFileP('xwininfo', ['-id', String(wid)], { env: this.env, timeout: 10_000 });
    const num = (label: string): number => {
      const m = new RegExp(`${label}:\\s+(-?\\d+)`).exec(stdout);
      if (!m) throw new Error(`xwininfo printed no "${label}": ${stdout}`);
      return Number(m[1]);
    };
    const border = num('Border width');
    return {
      x: num('Absolute upper-left X') + border,
      y: num('Absolute upper-left Y') + border,
      width: num('Width'),
      height: num('Height'),
    };
  }

  async xdotool(...args: string[]): Promise<string> {
    const { stdout } = await execFileP('xdotool', args, { env: this.env, timeout: 10_000 });
    return stdout;
  }

  /** Polls `check` (test-side only) until it returns true; the agent itself never polls. */
  async until(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      try {
        if (await check()) return;
      } catch (err) {
        last = err;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
  }

  async stop(): Promise<void> {
    for (const child of this.children.reverse()) {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) continue;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      // A child that ignores SIGTERM (or an i3 busy tearing down) must not outlive the suite.
      await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 3000)))]);
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 3000)))]);
        clearTimeout(timer);
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
