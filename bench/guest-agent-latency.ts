/**
 * Window-event latency of the guest agent, side by side with the
 * predecessor's approach (an `xwininfo -root -tree` poll every 500 ms), in one
 * run on one X server with i3.
 *
 *   npm run build && VMP_BENCH_DISPLAY=:83 node dist/bench/guest-agent-latency.js [windows]
 *
 * A separate X client creates and maps `windows` windows (default 200), one
 * every 100 ms, each living 1.5 s. t0 is taken just before MapWindow is sent;
 * the agent's time is when the window's `created` event arrives over the
 * agent path under test (see `agentPath` below); the baseline's is when a poll
 * first lists the window's title. Both observers run in this process, so one
 * clock measures everything.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { Atom, XConn } from '../guest-agent/src/xconn.js';
import { XSession } from '../test/support/xsession.js';
import { startAgentPath, type AgentPath } from './agent-path.js';

const execFileP = promisify(execFile);

const COUNT = Number(process.argv[2] ?? 200);
const INTERVAL_MS = 100;
const LIFETIME_MS = 1500;
const POLL_MS = 500;
const PREFIX = 'vmp-bench-';
const IDLE_MS = Number(process.env.VMP_BENCH_IDLE_MS ?? 30_000);

/** CPU time in ms from /proc/<pid>/stat: own (utime+stime) and reaped children's (cutime+cstime). */
function cpuMs(pid: number | 'self'): { own: number; children: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces.
  const f = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  const tick = 1000 / 100; // USER_HZ is 100 on Linux
  return { own: ((f[11] ?? 0) + (f[12] ?? 0)) * tick, children: ((f[13] ?? 0) + (f[14] ?? 0)) * tick };
}

interface Stats {
  n: number;
  missed: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

function stats(samples: number[], expected: number): Stats {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] ?? NaN;
  return {
    n: s.length,
    missed: expected - s.length,
    p50: q(0.5),
    p99: q(0.99),
    max: s[s.length - 1] ?? NaN,
    mean: s.reduce((a, b) => a + b, 0) / (s.length || 1),
  };
}

/** The predecessor's method: list the whole tree every POLL_MS and diff titles. */
function startPoller(display: string, seen: (title: string, t: number) => void): () => Promise<void> {
  let stopped = false;
  const known = new Set<string>();
  const loop = (async () => {
    while (!stopped) {
      const started = performance.now();
      try {
        const { stdout } = await execFileP('xwininfo', ['-root', '-tree'], {
          env: { ...process.env, DISPLAY: display },
          maxBuffer: 16 * 1024 * 1024,
        });
        const now = performance.now();
        for (const m of stdout.matchAll(/"(vmp-bench-\d+)"/g)) {
          const title = m[1] as string;
          if (!known.has(title)) {
            known.add(title);
            seen(title, now);
          }
        }
      } catch {
        // a window vanishing mid-listing makes xwininfo fail now and then; the next poll retries
      }
      const wait = POLL_MS - (performance.now() - started);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  })();
  return async () => {
    stopped = true;
    await loop;
  };
}

async function main(): Promise<void> {
  const display = process.env.VMP_BENCH_DISPLAY ?? process.env.VMP_TEST_DISPLAY;
  if (!display)
    throw new Error('set VMP_BENCH_DISPLAY (or VMP_TEST_DISPLAY) to an X display with no window manager');
  const session = new XSession(display);
  await session.startI3(['for_window [class="VmpBench"] floating enable']);
  const t0 = new Map<string, number>();
  const agentLat: number[] = [];
  const pollLat: number[] = [];
  let path: AgentPath | undefined;
  let stopPoller: (() => Promise<void>) | undefined;
  let idle: { agent: number; poll: number } | undefined;
  const app = await XConn.connect(display);
  try {
    path = await startAgentPath(display, (title, t) => {
      const start = t0.get(title);
      if (start !== undefined) agentLat.push(t - start);
    });
    stopPoller = startPoller(display, (title, t) => {
      const start = t0.get(title);
      if (start !== undefined) pollLat.push(t - start);
    });
    // Idle: nothing changes on screen. The agent should use no CPU; the poller keeps spawning xwininfo.
    await new Promise((r) => setTimeout(r, Number(process.env.VMP_BENCH_SETTLE_MS ?? 15_000))); // let start-up (JIT, GC) settle first
    const agentBefore = cpuMs(path.pid).own;
    const pollBefore = cpuMs('self').children;
    await new Promise((r) => setTimeout(r, IDLE_MS));
    idle = { agent: cpuMs(path.pid).own - agentBefore, poll: cpuMs('self').children - pollBefore };
    const [netName, utf8] = await Promise.all([
      app.internAtom('_NET_WM_NAME'),
      app.internAtom('UTF8_STRING'),
    ]);
    const alive: number[] = [];
    for (let i = 0; i < COUNT; i++) {
      const title = `${PREFIX}${i}`;
      const wid = app.client.AllocID();
      app.client.CreateWindow(
        wid,
        app.root,
        20 + (i % 20) * 10,
        40 + (i % 20) * 10,
        200,
        120,
        0,
        0,
        1,
        0,
        {},
      );
      await app.changeProperty(
        0,
        wid,
        Atom.WM_CLASS,
        Atom.STRING,
        8,
        Buffer.from('vmpbench\0VmpBench\0', 'latin1'),
      );
      await app.changeProperty(0, wid, netName, utf8, 8, Buffer.from(title, 'utf8'));
      t0.set(title, performance.now());
      app.client.MapWindow(wid);
      alive.push(wid);
      if (alive.length * INTERVAL_MS > LIFETIME_MS) await app.destroyWindow(alive.shift() as number);
      await new Promise((r) => setTimeout(r, INTERVAL_MS));
    }
    await new Promise((r) => setTimeout(r, LIFETIME_MS + POLL_MS * 2));
    for (const wid of alive) await app.destroyWindow(wid);
  } finally {
    await stopPoller?.();
    await path?.stop();
    app.close();
    await session.stop();
  }
  const a = stats(agentLat, COUNT);
  const p = stats(pollLat, COUNT);
  const fmt = (x: number): string => x.toFixed(2);
  const row = (name: string, s: Stats): string =>
    `| ${name} | ${s.n} | ${s.missed} | ${fmt(s.p50)} | ${fmt(s.p99)} | ${fmt(s.max)} | ${fmt(s.mean)} |`;
  console.log(
    `windows: ${COUNT}, one every ${INTERVAL_MS} ms, each alive ${LIFETIME_MS} ms; agent path: ${path?.name}`,
  );
  console.log('| observer | seen | missed | p50 ms | p99 ms | max ms | mean ms |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  console.log(row(`guest agent (${path?.name})`, a));
  console.log(row(`xwininfo poll every ${POLL_MS} ms`, p));
  console.log('');
  console.log(`CPU while the screen was idle for ${IDLE_MS / 1000} s (/proc, 10 ms ticks):`);
  console.log(`- guest agent process: ${idle?.agent} ms`);
  console.log(`- xwininfo polling (the spawned xwininfo processes): ${idle?.poll} ms`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
