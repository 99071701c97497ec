import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/**
 * A real host desktop for the seamless tests and bench: its own Xvfb on a free
 * display number with i3 managing it (no bar), and the X queries the tests
 * read it with (xdotool, xwininfo, xprop, ImageMagick's import).
 */
export class HostDesktop {
  private constructor(
    readonly display: string,
    private readonly xvfb: ChildProcess,
    private readonly wm: ChildProcess,
    private readonly dir: string,
  ) {}

  static async start(first = 91): Promise<HostDesktop> {
    let n = first;
    while (fs.existsSync(`/tmp/.X11-unix/X${n}`) || fs.existsSync(`/tmp/.X${n}-lock`)) n++;
    const display = `:${n}`;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-desktop-'));
    const xvfb = spawn('Xvfb', [display, '-screen', '0', '1280x800x24', '-nolisten', 'tcp'], {
      stdio: 'ignore',
    });
    await waitFor(() => fs.existsSync(`/tmp/.X11-unix/X${n}`), `Xvfb ${display}`, 20_000);
    const config = path.join(dir, 'i3.config');
    // No bar (it would take screen space and start i3status); everything else is i3's default.
    fs.writeFileSync(config, '# i3 config file (v4)\nfont pango:DejaVu Sans Mono 8\n');
    const wm = spawn('i3', ['-c', config], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, DISPLAY: display },
      stdio: 'ignore',
    });
    const desktop = new HostDesktop(display, xvfb, wm, dir);
    await waitFor(
      async () => /window id # 0x/.test(await desktop.x('xprop', ['-root', '_NET_SUPPORTING_WM_CHECK'])),
      `i3 on ${display}`,
      20_000,
    );
    return desktop;
  }

  /** Runs an X client on this display and returns its stdout. */
  async x(file: string, args: string[]): Promise<string> {
    const { stdout } = await execFileP(file, args, {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', DISPLAY: this.display },
      timeout: 20_000,
      encoding: 'utf8',
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  }

  /** Top-level windows whose name matches `pattern` (xdotool's regex), as decimal ids. */
  async windowsNamed(pattern: string): Promise<number[]> {
    try {
      return (await this.x('xdotool', ['search', '--onlyvisible', '--name', pattern]))
        .split('\n')
        .filter(Boolean)
        .map(Number);
    } catch {
      return []; // xdotool exits 1 when nothing matches
    }
  }

  /** The windows the window manager manages (EWMH _NET_CLIENT_LIST), as decimal ids. */
  async clientList(): Promise<number[]> {
    const out = await this.x('xprop', ['-root', '_NET_CLIENT_LIST']);
    return [...out.matchAll(/0x[0-9a-f]+/gi)].map((m) => Number.parseInt(m[0], 16));
  }

  async property(id: number, name: string): Promise<string> {
    return this.x('xprop', ['-id', String(id), name]);
  }

  /** Position on the root window and size, from xwininfo. */
  async geometry(id: number): Promise<{ x: number; y: number; width: number; height: number }> {
    const out = await this.x('xwininfo', ['-id', String(id)]);
    const num = (label: string): number => Number(new RegExp(`${label}:\\s+(-?\\d+)`).exec(out)?.[1]);
    return {
      x: num('Absolute upper-left X'),
      y: num('Absolute upper-left Y'),
      width: num('Width'),
      height: num('Height'),
    };
  }

  /** One screen pixel as 8-bit [r, g, b], from a screenshot of the root window. */
  async pixel(x: number, y: number): Promise<[number, number, number]> {
    const out = await this.x('import', ['-window', 'root', '-crop', `1x1+${x}+${y}`, '-depth', '8', 'txt:-']);
    const m = /\((\d+),(\d+),(\d+)/.exec(out.split('\n').find((l) => l.startsWith('0,0:')) ?? '');
    if (!m) throw new Error(`no pixel in import's output: ${out}`);
    return [Number(m[1]), Number(m[2]), Number(m[3])];
  }

  async close(): Promise<void> {
    for (const child of [this.wm, this.xvfb]) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const closed = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await closed;
      clearTimeout(timer);
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

async function waitFor(check: () => boolean | Promise<boolean>, what: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    await sleep(100);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/** Whether a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
