import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { renderI3Config } from '../../../src/render/i3config.js';
import { describeWith, probeXDisplay } from '../../support/services.js';
import { allOf, probeCommand } from '../../support/tools.js';
import { GOLDEN_SPECS } from '../../support/render-fixtures.js';

/**
 * The generated i3 config driven by a real i3 on the test X server: the
 * session bootstrap `exec` lines run, Mod+Return and Mod+d launch kitty and
 * dmenu, and windows get no border. kitty, dmenu_run and systemctl are
 * logging stubs on PATH (i3 runs `exec` through /bin/sh with its own PATH).
 */

const x = probeXDisplay();
const probe = allOf(
  x,
  probeCommand('i3', ['-v']),
  probeCommand('xdotool', ['--version']),
  probeCommand('xterm', ['-v']),
);

async function waitFor<T>(what: string, fn: () => T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Con {
  border?: string;
  current_border_width?: number;
  window_properties?: { class?: string };
  nodes?: Con[];
  floating_nodes?: Con[];
}

function findByClass(node: Con, cls: string): Con | undefined {
  if (node.window_properties?.class === cls) return node;
  for (const child of [...(node.nodes ?? []), ...(node.floating_nodes ?? [])]) {
    const hit = findByClass(child, cls);
    if (hit) return hit;
  }
  return undefined;
}

describeWith(probe, 'i3 session with the generated config')('i3 session', () => {
  let tmp: string;
  let log: string;
  let i3: ChildProcess | undefined;
  let xterm: ChildProcess | undefined;
  let socket = '';
  let env: NodeJS.ProcessEnv;

  const readLog = (): string[] =>
    fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trimEnd().split('\n') : [];
  const i3msg = (...args: string[]) =>
    spawnSync('i3-msg', ['-s', socket, ...args], { encoding: 'utf8', timeout: 10_000, env });

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-ks-i3-'));
    log = path.join(tmp, 'exec.log');
    const stubs = path.join(tmp, 'stubs');
    fs.mkdirSync(stubs);
    for (const cmd of ['systemctl', 'kitty', 'dmenu_run']) {
      fs.writeFileSync(
        path.join(stubs, cmd),
        '#!/bin/sh\nprintf "%s %s\\n" "$(basename "$0")" "$*" >> "$VMP_I3_LOG"\n',
        {
          mode: 0o755,
        },
      );
    }
    const config = path.join(tmp, 'config');
    fs.writeFileSync(config, renderI3Config(GOLDEN_SPECS['firefox-vm']!));
    env = {
      ...process.env,
      DISPLAY: x.display,
      HOME: tmp,
      XDG_RUNTIME_DIR: tmp,
      PATH: `${stubs}:${process.env.PATH ?? ''}`,
      VMP_I3_LOG: log,
    };
    i3 = spawn('i3', ['-c', config], { env, stdio: 'ignore' });
    // i3 publishes its IPC socket on the root window once it manages the screen.
    socket = await waitFor('the i3 IPC socket', () => {
      const s = spawnSync('i3', ['--get-socketpath'], { encoding: 'utf8', env }).stdout.trim();
      return s.startsWith(tmp) && fs.existsSync(s) ? s : undefined;
    });
  });

  afterAll(async () => {
    xterm?.kill('SIGTERM');
    if (i3 && i3.exitCode === null) {
      i3msg('exit');
      const exited = new Promise((r) => i3!.once('exit', r));
      const timer = setTimeout(() => i3?.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('the bootstrap exec lines hand DISPLAY to systemd and start vm-session.target', async () => {
    const lines = await waitFor('the session bootstrap', () => {
      const l = readLog();
      return l.includes('systemctl --user start --no-block vm-session.target') ? l : undefined;
    });
    expect(lines.indexOf('systemctl --user import-environment DISPLAY XAUTHORITY')).toBeGreaterThanOrEqual(0);
    expect(lines.indexOf('systemctl --user import-environment DISPLAY XAUTHORITY')).toBeLessThan(
      lines.indexOf('systemctl --user start --no-block vm-session.target'),
    );
  });

  test('Mod+Return starts kitty and Mod+d starts dmenu', async () => {
    spawnSync('xdotool', ['key', 'super+Return'], { env });
    await waitFor('kitty', () => (readLog().some((l) => l.trim() === 'kitty') ? true : undefined));
    spawnSync('xdotool', ['key', 'super+d'], { env });
    await waitFor('dmenu_run', () => (readLog().some((l) => l.trim() === 'dmenu_run') ? true : undefined));
  });

  test('windows have no border and no title bar', async () => {
    xterm = spawn('xterm', ['-class', 'VmpTksXterm'], { env, stdio: 'ignore' });
    const con = await waitFor('the xterm window in the i3 tree', () => {
      const r = i3msg('-t', 'get_tree');
      return r.status === 0 ? findByClass(JSON.parse(r.stdout) as Con, 'VmpTksXterm') : undefined;
    });
    expect(con.border).toBe('none');
    expect(con.current_border_width).toBe(0);
  });
});
