/**
 * Load test of the window proxy: N agents each stream R window events per
 * second for D seconds over real TCP on loopback, while the real
 * `vm-provisioner windows --follow --json` reads the live event stream from
 * the control socket into a file.
 *
 *   npm run build && node dist/bench/proxy-load.js [--agents 50] [--rate 1000] [--duration 30] [--max-rss-mb 256]
 *
 * Checks: every event sent is counted by the proxy (per VM, from its status)
 * and delivered to the follower; the proxy's peak RSS stays under --max-rss-mb. Prints a
 * JSON summary; exits 1 if any event is missing.
 */
import { fork, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentClient, type Message, type WindowInfo } from '../src/protocol/index.js';
import { controlRequest, type StatusResult } from '../src/proxy/control-client.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  return v;
}

const AGENTS = arg('agents', 50);
const RATE = arg('rate', 1000);
const DURATION_S = arg('duration', 30);
const TICK_MS = 10;
const WINDOWS = 10;
/** The proxy's resident memory must stay under this for the run to pass. */
const MAX_RSS_MB = arg('max-rss-mb', 256);

const win = (id: number, title: string): WindowInfo => ({
  id,
  x: 0,
  y: 0,
  width: 800,
  height: 600,
  overrideRedirect: false,
  mapped: true,
  parent: 0,
  transientFor: 0,
  title,
  wmInstance: 'bench',
  wmClass: 'Bench',
});

/** Event k of the stream: a cycle through all eight window event types; the table stays bounded. */
function event(k: number): Message {
  const id = 1 + (k % WINDOWS);
  switch (k % 8) {
    case 0:
      return { type: 'window-moved', id, x: k % 1000, y: k % 700 };
    case 1:
      return { type: 'window-resized', id, width: 100 + (k % 900), height: 100 + (k % 500) };
    case 2:
      return { type: 'title-changed', id, title: `title ${k}` };
    case 3:
      return { type: 'focus-changed', id };
    case 4:
      return { type: 'window-created', window: win(1000, `transient ${k}`) };
    case 5:
      return { type: 'window-unmapped', id: 1000 };
    case 6:
      return { type: 'window-mapped', id: 1000 };
    default:
      return { type: 'window-destroyed', id: 1000 };
  }
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'vmp-bench-'));
  const socketPath = path.join(tmp, 'vm-provisioner', 'proxy.sock');
  const names = Array.from({ length: AGENTS }, (_, i) => `bench-vm-${i}`);
  const secrets = Object.fromEntries(names.map((n) => [n, randomBytes(32).toString('hex')]));
  const here = path.dirname(fileURLToPath(import.meta.url));
  const server = fork(path.join(here, 'proxy-load-server.js'), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const rssSamples: number[] = [];
  let report: Record<string, unknown> | undefined;
  const port = await new Promise<number>((resolve) => {
    server.on('message', (raw: unknown) => {
      const m = raw as { kind: string; port?: number; rss?: number };
      if (m.kind === 'ready') resolve(m.port!);
      if (m.kind === 'memory') rssSamples.push(m.rss!);
      if (m.kind === 'report') report = m as Record<string, unknown>;
    });
    server.send({ kind: 'start', secrets, socketPath });
  });

  // The follower is the real `vm-provisioner windows --follow --json`, in its own process, writing to a file.
  const followFile = path.join(tmp, 'follow.ndjson');
  const followFd = openSync(followFile, 'w');
  const cli = path.join(here, '..', 'src', 'cli', 'main.js');
  const follower = spawn(process.execPath, [cli, 'windows', '--follow', '--json'], {
    env: { ...process.env, XDG_RUNTIME_DIR: tmp },
    stdio: ['ignore', followFd, 'inherit'],
  });
  const followerExit = new Promise<number | null>((r) => follower.on('exit', (code) => r(code)));
  // Subscribed once the proxy counts a control connection that has sent `follow`.
  for (let i = 0; ; i++) {
    const s = await controlRequest<StatusResult>('status', {}, { socketPath });
    if (s.followers > 0) break;
    if (i > 500) throw new Error('the follower did not subscribe');
    await new Promise((r) => setTimeout(r, 20));
  }
  const countFollowed = (): { windowEvents: number; agentEvents: number } => {
    const text = readFileSync(followFile, 'utf8');
    let windowEvents = 0;
    let agentEvents = 0;
    for (const line of text.split('\n')) {
      if (line === '') continue;
      if (line.includes('"type":"agent-')) agentEvents++;
      else windowEvents++;
    }
    return { windowEvents, agentEvents };
  };
  let followed: number;

  const t0 = Date.now();
  const agents = await Promise.all(
    names.map((n) =>
      AgentClient.connect({ host: '127.0.0.1', port, vmName: n, secret: Buffer.from(secrets[n]!, 'hex') }),
    ),
  );
  const connectMs = Date.now() - t0;
  const sent = new Array<number>(AGENTS).fill(0);
  let backpressured = 0;
  agents.forEach((a, i) => {
    a.send({
      type: 'window-list',
      focused: 1,
      windows: Array.from({ length: WINDOWS }, (_, w) => win(w + 1, `w${w}`)),
    });
    sent[i]!++;
  });

  const start = Date.now();
  const end = start + DURATION_S * 1000;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = Math.min(Date.now(), end);
      const due = Math.floor(((now - start) / 1000) * RATE);
      agents.forEach((a, i) => {
        // sent includes the initial snapshot
        while (sent[i]! - 1 < due) {
          if (!a.send(event(sent[i]! - 1))) backpressured++;
          sent[i]!++;
        }
      });
      if (now >= end) {
        clearInterval(timer);
        resolve();
      }
    }, TICK_MS);
  });
  const sendMs = Date.now() - start;
  const totalSent = sent.reduce((a, b) => a + b, 0);

  // Wait until the proxy has counted everything (or give up after 60 s).
  const drainStart = Date.now();
  let status: StatusResult | undefined;
  for (;;) {
    status = await controlRequest<StatusResult>('status', {}, { socketPath });
    const counted = status.vms.reduce((a, v) => a + v.events, 0);
    followed = countFollowed().windowEvents;
    if ((counted >= totalSent && followed >= totalSent) || Date.now() - drainStart > 60_000) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const drainMs = Date.now() - drainStart;
  const perVm = new Map(status.vms.map((v) => [v.name, v]));
  const missing = names.filter((n, i) => perVm.get(n)?.events !== sent[i]);
  const countedTotal = status.vms.reduce((a, v) => a + v.events, 0);
  const connected = status.vms.filter((v) => v.connected).length;
  const windowsAtEnd = status.vms.reduce((a, v) => a + v.windows, 0);

  server.send({ kind: 'report' });
  while (!report) await new Promise((r) => setTimeout(r, 10));
  follower.kill('SIGINT');
  const followerCode = await followerExit;
  closeSync(followFd);
  const agentLines = countFollowed().agentEvents;
  for (const a of agents) a.close();
  server.send({ kind: 'stop' });
  rmSync(tmp, { recursive: true, force: true });

  const mb = (b: number): number => Math.round((b / 1024 / 1024) * 10) / 10;
  const steady = rssSamples.slice(Math.min(5, rssSamples.length - 1));
  const summary = {
    agents: AGENTS,
    ratePerAgent: RATE,
    durationS: DURATION_S,
    connectAllMs: connectMs,
    sendPhaseMs: sendMs,
    eventsSent: totalSent,
    eventsCountedByProxy: countedTotal,
    eventsDeliveredToFollower: followed,
    agentEventsToFollower: agentLines,
    followerExitCode: followerCode,
    vmsWithMismatch: missing.length,
    agentsStillConnected: connected,
    windowsInTableAtEnd: windowsAtEnd,
    drainAfterSendMs: drainMs,
    throughputEventsPerS: Math.round(totalSent / (sendMs / 1000)),
    clientWritesBackpressured: backpressured,
    proxyRssMb: {
      first: mb(rssSamples[0] ?? 0),
      afterWarmup: mb(steady[0] ?? 0),
      max: mb(report.maxRss as number),
      last: mb(rssSamples.at(-1) ?? 0),
    },
    proxyRssMbEvery5s: rssSamples.filter((_, i) => i % 5 === 4).map(mb),
    proxyHeapMaxMb: mb(report.maxHeap as number),
    proxyCpuS: {
      user: Math.round(report.cpuUserMs as number) / 1000,
      system: Math.round(report.cpuSystemMs as number) / 1000,
    },
    proxyLogLines: (report.logs as string[]).length,
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
  };
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  const rssOk = (report.maxRss as number) / 1024 / 1024 <= MAX_RSS_MB;
  const ok =
    missing.length === 0 &&
    countedTotal === totalSent &&
    followed === totalSent &&
    connected === AGENTS &&
    rssOk;
  if (!ok) {
    process.stderr.write(
      `FAIL: events missing, agents dropped, or proxy RSS over ${MAX_RSS_MB} MB\n${(report.logs as string[]).slice(0, 20).join('\n')}\n`,
    );
    process.exitCode = 1;
  }
}

await main();
