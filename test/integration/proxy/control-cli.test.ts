import { randomBytes } from 'node:crypto';
import { mkdtempSync, promises as fs, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { AgentClient, MAX_CLIPBOARD_BYTES } from '../../../src/protocol/index.js';
import { ControlServer } from '../../../src/proxy/control-socket.js';
import { controlRequest } from '../../../src/proxy/control-client.js';
import { ProxyServer } from '../../../src/proxy/server.js';
import { runCli, spawnCli } from '../../support/cli.js';
import { testWindow, waitFor } from '../../support/fake-agent.js';

/**
 * The control socket with a proxy and real TCP agents, driven through the
 * real CLI binary the way a user runs `vm-provisioner windows`.
 */

const PREFIX = 'vmp-t-proto-';
const VM_A = `${PREFIX}ctl-a`;
const VM_B = `${PREFIX}ctl-b`;
const secrets = new Map([
  [VM_A, randomBytes(32)],
  [VM_B, randomBytes(32)],
]);

let runtime: string;
let socketPath: string;
let env: NodeJS.ProcessEnv;
let proxy: ProxyServer;
let control: ControlServer;
let port: number;
const agents: AgentClient[] = [];

async function agent(name: string): Promise<AgentClient> {
  const a = await AgentClient.connect({
    host: '127.0.0.1',
    port,
    vmName: name,
    secret: secrets.get(name)!,
    timeoutMs: 5000,
  });
  agents.push(a);
  return a;
}

/** Raw NDJSON exchange with the control socket. */
function rawExchange(lines: string, expected: number): Promise<Array<Record<string, unknown>>> {
  return new Promise((resolve, reject) => {
    const out: Array<Record<string, unknown>> = [];
    let buf = '';
    const s = net.connect(socketPath, () => s.write(lines));
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`got ${out.length} of ${expected} answers: ${JSON.stringify(out)}`));
    }, 3000);
    s.setEncoding('utf8');
    s.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        out.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
        buf = buf.slice(nl + 1);
      }
      if (out.length >= expected) {
        clearTimeout(timer);
        s.destroy();
        resolve(out);
      }
    });
    s.on('error', reject);
  });
}

beforeAll(async () => {
  runtime = mkdtempSync(path.join(os.tmpdir(), `${PREFIX}run-`));
  socketPath = path.join(runtime, 'vm-provisioner', 'proxy.sock');
  env = {
    ...process.env,
    XDG_RUNTIME_DIR: runtime,
    XDG_CONFIG_HOME: path.join(runtime, 'config'),
    NO_COLOR: '1',
  };
  proxy = new ProxyServer({
    listen: [{ host: '127.0.0.1', port: 0 }],
    lookupSecret: async (n) => secrets.get(n) ?? null,
    heartbeatIntervalMs: 1000,
    log: () => undefined,
  });
  port = (await proxy.start())[0]!.port;
  control = new ControlServer(proxy, { socketPath, log: () => undefined });
  await control.start();
  const a = await agent(VM_A);
  a.send({
    type: 'window-list',
    focused: 0x100,
    windows: [
      testWindow(0x100, 'Mozilla Firefox'),
      { ...testWindow(0x200, 'evil\x1b[2Jtitle'), mapped: false },
    ],
  });
  const b = await agent(VM_B);
  b.send({ type: 'window-created', window: testWindow(0x300, 'Terminal') });
  await waitFor(
    () =>
      proxy.table.windowsOf(VM_A)?.windows.length === 2 && proxy.table.windowsOf(VM_B)?.windows.length === 1,
  );
});

afterAll(async () => {
  for (const a of agents) a.close();
  await control.close();
  await proxy.close();
  rmSync(runtime, { recursive: true, force: true });
});

describe('control socket', () => {
  test('lives under $XDG_RUNTIME_DIR/vm-provisioner with mode 0600 in a 0700 directory', () => {
    expect(statSync(socketPath).isSocket()).toBe(true);
    expect(statSync(socketPath).mode & 0o777).toBe(0o600);
    expect(statSync(path.dirname(socketPath)).mode & 0o777).toBe(0o700);
  });

  test('answers status, windows and errors as newline-delimited JSON, matched by id', async () => {
    const answers = await rawExchange(
      [
        JSON.stringify({ id: 'a', op: 'status' }),
        JSON.stringify({ id: 2, op: 'windows', vm: VM_B }),
        JSON.stringify({ id: 3, op: 'windows', vm: `${PREFIX}nosuch` }),
        JSON.stringify({ id: 4, op: 'explode' }),
        '{not json',
        JSON.stringify({ id: 6, op: 'windows', vm: '../etc' }),
      ].join('\n') + '\n',
      6,
    );
    const byId = new Map(answers.map((a) => [JSON.stringify(a.id), a]));
    const status = byId.get('"a"')!.result as {
      listening: string[];
      vms: Array<{ name: string; connected: boolean; windows: number }>;
    };
    expect(status.listening).toEqual([`127.0.0.1:${port}`]);
    expect(status.vms.map((v) => [v.name, v.connected, v.windows])).toEqual([
      [VM_A, true, 2],
      [VM_B, true, 1],
    ]);
    expect(byId.get('2')).toMatchObject({
      ok: true,
      result: { vms: [{ name: VM_B, windows: [{ id: 0x300, title: 'Terminal' }] }] },
    });
    expect(byId.get('3')).toMatchObject({ ok: false, error: { code: 'not_found' } });
    expect(byId.get('4')).toMatchObject({
      ok: false,
      error: { code: 'bad_request', message: 'unknown op "explode"' },
    });
    expect(byId.get('null')).toMatchObject({
      ok: false,
      error: { code: 'bad_request', message: 'request is not valid JSON' },
    });
    expect(byId.get('6')).toMatchObject({ ok: false, error: { code: 'bad_request' } });
  });

  test('an over-long request line is refused and the connection closed', async () => {
    const [answer] = await rawExchange('x'.repeat(1024 * 1024 + 10), 1);
    expect(answer).toMatchObject({ ok: false, error: { code: 'bad_request' } });
  });

  test('an oversize paste is refused by the control socket before reaching the proxy', async () => {
    const data = Buffer.alloc(MAX_CLIPBOARD_BYTES + 1).toString('base64');
    await expect(
      controlRequest('clipboard-paste', { vm: VM_A, mimeType: 'text/plain', data }, { socketPath }),
    ).rejects.toThrow(/262145 bytes; the limit is 262144/);
  });

  test('a second proxy on the same socket is refused; a stale socket file is replaced', async () => {
    const second = new ControlServer(proxy, { socketPath, log: () => undefined });
    await expect(second.start()).rejects.toThrow(/another proxy is already serving/);
    const stalePath = path.join(runtime, 'stale', 'proxy.sock');
    await fs.mkdir(path.dirname(stalePath), { mode: 0o700 });
    await fs.writeFile(stalePath, '');
    const third = new ControlServer(proxy, { socketPath: stalePath, log: () => undefined });
    await third.start();
    expect(statSync(stalePath).isSocket()).toBe(true);
    await third.close();
  });
});

describe('vm-provisioner windows (the real CLI)', () => {
  test('--json prints every VM with its windows', async () => {
    const r = await runCli(['windows', '--json'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const parsed = JSON.parse(r.stdout) as {
      vms: Array<{
        name: string;
        focused: number;
        windows: Array<{ id: number; title: string; mapped: boolean }>;
      }>;
    };
    expect(parsed.vms.map((v) => v.name)).toEqual([VM_A, VM_B]);
    expect(parsed.vms[0]!.focused).toBe(0x100);
    expect(parsed.vms[0]!.windows).toEqual([
      { ...testWindow(0x100, 'Mozilla Firefox') },
      { ...testWindow(0x200, 'evil\x1b[2Jtitle'), mapped: false },
    ]);
  });

  test('NAME limits the table to one VM; guest control characters are escaped', async () => {
    const r = await runCli(['windows', VM_A], env);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^VM\s+WINDOW\s+GEOMETRY\s+FLAGS\s+CLASS\s+TITLE$/);
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(
      new RegExp(`^${VM_A}\\s+0x00000100\\s+640x480\\+56\\+10\\s+focused\\s+XTerm\\s+Mozilla Firefox$`),
    );
    expect(lines[2]).toContain('unmapped');
    expect(lines[2]).toContain('evil\\u001b[2Jtitle');
    expect(r.stdout).not.toContain('\x1b');
  });

  test('an unknown VM exits 2 with a one-line error; a bad name too', async () => {
    const r = await runCli(['windows', `${PREFIX}nosuch`], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`error: no agent has connected for VM "${PREFIX}nosuch"\n`);
    const bad = await runCli(['windows', 'Bad_Name'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
  });

  test('without a running proxy it says so and how to start it', async () => {
    const r = await runCli(['windows'], { ...env, XDG_RUNTIME_DIR: path.join(runtime, 'empty') });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: the window proxy is not running .*vm-provisioner proxy/);
  });

  test('--follow --json streams events for one VM until interrupted', async () => {
    const child = spawnCli(['windows', VM_B, '--follow', '--json'], env);
    let stdout = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitFor(() => proxy.listenerCount('event') > 0, 10_000, 'the follower to subscribe');
      const [a, b] = [agents[0]!, agents[1]!];
      a.send({ type: 'window-moved', id: 0x100, x: 1, y: 1 }); // other VM: filtered out
      // Ids the proxy does not know: ignored, so a follower never hears of them.
      b.send({ type: 'window-moved', id: 0x999, x: 7, y: 7 });
      b.send({ type: 'focus-changed', id: 0x999 });
      b.send({ type: 'window-moved', id: 0x300, x: 5, y: 6 });
      b.send({ type: 'title-changed', id: 0x300, title: 'vim' });
      b.send({ type: 'window-destroyed', id: 0x300 });
      await waitFor(() => stdout.trim().split('\n').length >= 3, 5000, 'three events');
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
    const events = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.map((e) => [e.vm, e.type])).toEqual([
      [VM_B, 'window-moved'],
      [VM_B, 'title-changed'],
      [VM_B, 'window-destroyed'],
    ]);
    expect(events[0]).toMatchObject({ id: 0x300, x: 5, y: 6 });
    expect(typeof events[0]!.time).toBe('string');
  });
});
