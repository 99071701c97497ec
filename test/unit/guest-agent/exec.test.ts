import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execEnvironment, SessionExec } from '../../../guest-agent/src/exec.js';
import { toWire } from '../../../guest-agent/src/proxy-link.js';
import { decodeFrame, encodeMessage, ExecStatus } from '../../../src/protocol/index.js';

describe("a started command's environment", () => {
  test('only the allow-listed variables the agent has, and the watched display', () => {
    expect(
      execEnvironment(
        {
          HOME: '/home/u',
          USER: 'u',
          PATH: '/usr/bin',
          LANG: 'C.UTF-8',
          DBUS_SESSION_BUS_ADDRESS: 'unix:path=/run/user/1000/bus',
          DISPLAY: ':5',
          LD_PRELOAD: '/evil.so',
          VMP_PROXY_HOST: '10.0.2.2',
          SSH_AUTH_SOCK: '/tmp/agent',
        },
        ':0',
      ),
    ).toEqual({
      HOME: '/home/u',
      USER: 'u',
      PATH: '/usr/bin',
      LANG: 'C.UTF-8',
      DBUS_SESSION_BUS_ADDRESS: 'unix:path=/run/user/1000/bus',
      DISPLAY: ':0',
    });
  });

  test('a default PATH when the agent has none', () => {
    expect(execEnvironment({}, ':0')).toEqual({ PATH: '/usr/local/bin:/usr/bin:/bin', DISPLAY: ':0' });
  });
});

describe('SessionExec (real processes)', () => {
  let home: string;
  beforeAll(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-exec-'));
  });
  afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

  test('runs the argv without a shell, in the home directory, and resolves with its pid', async () => {
    const out = path.join(home, 'out');
    const exec = new SessionExec(':0', { PATH: process.env.PATH, HOME: home, SECRET: 'x' }, home);
    // `sh` is the program here, given its script as an argument: the agent itself never adds a shell.
    const pid = await exec.start(['sh', '-c', 'pwd > out; env | sort >> out', 'vmp-test-$0']);
    expect(pid).toBeGreaterThan(0);
    const deadline = Date.now() + 5000;
    while (!(fs.existsSync(out) && fs.readFileSync(out, 'utf8').includes('PATH=')) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const lines = fs.readFileSync(out, 'utf8').split('\n');
    expect(lines[0]).toBe(home);
    expect(lines.filter((l) => l.startsWith('SECRET='))).toEqual([]);
    expect(lines).toContain('DISPLAY=:0');
  });

  test('reports how the command ended: its exit status, or the signal that killed it', async () => {
    const exec = new SessionExec(':0', { PATH: process.env.PATH }, home);
    const exited = new Promise((resolve) => void exec.start(['sh', '-c', 'exit 3'], resolve));
    expect(await exited).toEqual({ how: 'exited', code: 3 });
    let pid = 0;
    const killed = new Promise((resolve) => {
      void exec.start(['sleep', '30'], resolve).then((p) => {
        pid = p;
        process.kill(p, 'SIGTERM');
      });
    });
    expect(await killed).toEqual({ how: 'signalled', signal: 15 });
    expect(pid).toBeGreaterThan(0);
  });

  test('a missing program rejects with ENOENT', async () => {
    const exec = new SessionExec(':0', { PATH: '/usr/bin:/bin' }, home);
    await expect(exec.start(['vmp-no-such-program'])).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('EXEC_RESULT from the agent', () => {
  test.each([
    ['started', ExecStatus.STARTED],
    ['refused', ExecStatus.REFUSED],
    ['failed', ExecStatus.FAILED],
  ] as const)('%s is status %d and round-trips through the codec', (status, code) => {
    const [m] = toWire({ type: 'exec-result', requestId: 3, status, pid: 12, message: 'why' });
    expect(m).toEqual({ type: 'exec-result', requestId: 3, status: code, pid: 12, message: 'why' });
    expect(decodeFrame(encodeMessage(m!))).toEqual({ ok: true, message: m });
  });
});

describe('EXEC_EXITED from the agent', () => {
  test('an exit and a signal map to the wire and round-trip through the codec', () => {
    const [exited] = toWire({ type: 'exec-exited', requestId: 4, end: { how: 'exited', code: 0 } });
    expect(exited).toEqual({ type: 'exec-exited', requestId: 4, how: 0, code: 0 });
    const [killed] = toWire({ type: 'exec-exited', requestId: 5, end: { how: 'signalled', signal: 9 } });
    expect(killed).toEqual({ type: 'exec-exited', requestId: 5, how: 1, code: 9 });
    for (const m of [exited!, killed!])
      expect(decodeFrame(encodeMessage(m))).toEqual({ ok: true, message: m });
  });
});
