import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { jest } from '@jest/globals';
import { describeDomain } from '../../../src/libvirt/inspect.js';
import { controlRequest } from '../../../src/proxy/control-client.js';
import { ControlServer } from '../../../src/proxy/control-socket.js';
import { ProxyServer, type ProxyEvent } from '../../../src/proxy/server.js';
import { parseExecLine } from '../../../src/render/desktop-entry.js';
import { renderAgentConf } from '../../../src/render/agent-config.js';
import { renderDomainXml } from '../../../src/render/domain-xml.js';
import { EXEC_ENV_ALLOWED } from '../../../guest-agent/src/exec.js';
import { syncLaunchers } from '../../../src/service/launchers.js';
import { ensureWakePipe } from '../../../src/service/state.js';
import { defaultSpec } from '../../../src/spec/defaults.js';
import { FileConfigStore } from '../../../src/spec/store.js';
import { MessageType } from '../../../src/protocol/index.js';
import { bundleAgent } from '../../support/agent-bundle.js';
import { CLI, runCli } from '../../support/cli.js';
import { EventLog } from '../../support/events.js';
import { qemuImgCreate, removeDomain, testVmName, virsh } from '../../support/libvirt-fixture.js';
import {
  describeWith,
  LIBVIRT_TEST_URI,
  probeLibvirt,
  probeSecretService,
  probeXDisplay,
} from '../../support/services.js';
import { testSpec } from '../../support/spec-fixture.js';
import { XSession } from '../../support/xsession.js';

jest.setTimeout(120_000);

/**
 * `vm-provisioner run NAME -- CMD` and a launcher's Exec, end to end on this
 * host: the built CLI, the real proxy with its control socket, and the real
 * guest agent (the shipped bundle) watching the test X server with i3, where
 * it starts a real xterm. NAME is a real libvirt domain of ours (a tiny
 * diskless-in-effect guest that only runs its firmware), so `run` checks and
 * starts it as it would a real VM; the agent standing in for its guest agent
 * is the host agent, authenticated with the VM's secret.
 */
const x = probeXDisplay();
const lv = probeLibvirt();
const probe = !x.available ? x : lv;

describeWith(probe, 'run through the proxy to a real agent')('vm-provisioner run', () => {
  const VM = testVmName('run');
  const SECRET_HEX = 'c0ffee00'.repeat(8);
  let tmp: string;
  let env: NodeJS.ProcessEnv;
  let session: XSession;
  let proxy: ProxyServer;
  let control: ControlServer;
  let agent: ChildProcess;
  let agentLog = '';
  const started: number[] = [];
  const log = new EventLog<ProxyEvent>();

  const windowTitled = (title: string, from: number) =>
    log.waitFor(
      (e) => e.type === 'window-created' && e.window.title === title,
      `window "${title}" at the proxy; agent log: ${agentLog}`,
      20_000,
      from,
    ) as Promise<Extract<ProxyEvent, { type: 'window-created' }>>;

  const pidOf = (stdout: string): number => {
    const m = /\(pid (\d+) in the VM\)/.exec(stdout);
    if (!m) throw new Error(`no pid in ${JSON.stringify(stdout)}`);
    const pid = Number(m[1]);
    started.push(pid);
    return pid;
  };

  /**
   * Runs the CLI while playing the guest's side of a VM start: a real guest's
   * agent reconnects when its VM starts or resumes (woken by the host), and
   * `run` waits for that new connection. The agent here runs on the host and
   * cannot see the VM start, so once the domain runs the test closes its old
   * connection at the proxy, as the end of the old QEMU process would; the
   * agent then reconnects by itself.
   */
  const whileVmRestarts = async (args: string[], cliEnv: NodeJS.ProcessEnv, timeoutMs?: number) => {
    const result = runCli(args, cliEnv, timeoutMs);
    await session.until(() => virsh('domstate', VM).trim() === 'running', 'the domain to run', 30_000);
    const current = (proxy as unknown as { current: Map<string, { close(reason: string): void }> }).current;
    current.get(VM)?.close('test: the VM was started again');
    return result;
  };

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-run-'));
    fs.chmodSync(tmp, 0o711);
    const home = path.join(tmp, 'home');
    fs.mkdirSync(home);
    env = {
      PATH: process.env.PATH,
      HOME: home,
      XDG_RUNTIME_DIR: tmp,
      XDG_CONFIG_HOME: path.join(tmp, 'config'),
      XDG_DATA_HOME: path.join(tmp, 'data'),
      LIBVIRT_DEFAULT_URI: LIBVIRT_TEST_URI,
      NO_COLOR: '1',
      ...(process.env.DBUS_SESSION_BUS_ADDRESS
        ? { DBUS_SESSION_BUS_ADDRESS: process.env.DBUS_SESSION_BUS_ADDRESS }
        : {}),
    };
    // The VM: a real domain of ours, running (its firmware finds nothing to boot and waits).
    const disk = path.join(tmp, `${VM}.qcow2`);
    qemuImgCreate(disk, '16M');
    const spec = testSpec({
      name: VM,
      memoryMb: 128,
      vcpus: 1,
      virtType: 'qemu',
      networkMode: 'none',
      vmDir: tmp,
    });
    const xml = renderDomainXml(spec, { diskPath: disk, version: '0.0.0-test' });
    await ensureWakePipe(describeDomain(xml));
    const xmlFile = path.join(tmp, 'domain.xml');
    fs.writeFileSync(xmlFile, xml);
    virsh('define', xmlFile);
    virsh('start', VM);
    await new FileConfigStore(path.join(tmp, 'config', 'vm-provisioner')).write(
      defaultSpec(VM, { autoLaunchApps: ['xterm -T vmp-from-launcher -name vmp-launcher'] }),
    );

    session = new XSession(x.display);
    await session.startI3();
    proxy = new ProxyServer({
      listen: [{ host: '127.0.0.1', port: 0 }],
      lookupSecret: async (name) => (name === VM ? Buffer.from(SECRET_HEX, 'hex') : null),
      heartbeatIntervalMs: 2000,
      log: () => undefined,
    });
    const port = (await proxy.start())[0]!.port;
    proxy.on('event', log.push);
    control = new ControlServer(proxy, {
      socketPath: path.join(tmp, 'vm-provisioner', 'proxy.sock'),
      log: () => undefined,
    });
    await control.start();

    const bundle = await bundleAgent(path.join(tmp, 'vm-guest-agent.cjs'));
    fs.writeFileSync(path.join(tmp, 'agent.secret'), `${SECRET_HEX}\n`, { mode: 0o600 });
    fs.writeFileSync(
      path.join(tmp, 'agent.conf'),
      renderAgentConf({
        vmName: VM,
        proxyHost: '127.0.0.1',
        proxyPort: port,
        secretFile: path.join(tmp, 'agent.secret'),
      }),
    );
    agent = spawn(process.execPath, [bundle], {
      env: {
        PATH: process.env.PATH,
        HOME: home,
        VMP_AGENT_CONFIG: path.join(tmp, 'agent.conf'),
        VMP_DISPLAY: x.display,
        // Not on the allow-list: a started command must not see it.
        VMP_TEST_CANARY: 'must-not-leak',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    agent.stderr?.on('data', (d: Buffer) => (agentLog += d.toString()));
    await log.waitFor((e) => e.type === 'agent-connected', `the agent to connect; log: ${agentLog}`, 20_000);
  });

  afterAll(async () => {
    for (const pid of started) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    if (agent && agent.exitCode === null) {
      const exited = new Promise((r) => agent.once('exit', r));
      agent.kill('SIGTERM');
      await exited;
    }
    await control?.close();
    await proxy?.close();
    await session?.stop();
    removeDomain(VM);
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('run starts an xterm in the session: one line with its pid, and its window reaches the proxy', async () => {
    const from = log.mark;
    const r = await runCli(['run', VM, '--', 'xterm', '-T', 'vmp run ✓ $HOME', '-name', 'vmp-run'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^${VM}: started xterm \\(pid \\d+ in the VM\\)\\n$`));
    const pid = pidOf(r.stdout);
    const created = await windowTitled('vmp run ✓ $HOME', from);
    expect(created.vm).toBe(VM);
    expect(created.window).toMatchObject({ wmClass: 'XTerm', wmInstance: 'vmp-run' });
    // The argv arrived word for word (no shell), in the user's home, with only the allow-listed environment.
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
    expect(cmdline).toEqual(['xterm', '-T', 'vmp run ✓ $HOME', '-name', 'vmp-run']);
    expect(fs.readlinkSync(`/proc/${pid}/cwd`)).toBe(env.HOME);
    const childEnv = fs
      .readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .filter(Boolean)
      .map((kv) => kv.slice(0, kv.indexOf('=')));
    expect(childEnv).toContain('DISPLAY');
    for (const key of childEnv) expect([...EXEC_ENV_ALLOWED, 'DISPLAY']).toContain(key);
    expect(childEnv).not.toContain('VMP_TEST_CANARY');
  });

  test("a launcher's Exec (as written by launchers sync) brings up its app", async () => {
    const report = await syncLaunchers({
      configStore: new FileConfigStore(path.join(tmp, 'config', 'vm-provisioner')),
      dataHome: path.join(tmp, 'data'),
      cli: { node: process.execPath, script: CLI },
    });
    expect(report.problems).toEqual([]);
    const entry = fs.readFileSync(
      path.join(tmp, 'data', 'applications', `vm-provisioner-${VM}_xterm.desktop`),
      'utf8',
    );
    expect(entry).toMatch(new RegExp(`^Name=${VM}: xterm$`, 'm'));
    const argv = parseExecLine(/^Exec=(.*)$/m.exec(entry)![1]!);
    expect(argv.slice(0, 5)).toEqual([process.execPath, CLI, 'run', VM, '--']);
    const from = log.mark;
    const out = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'inherit'] });
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.on('close', (code) => resolve({ code, stdout }));
    });
    expect(out.code).toBe(0);
    pidOf(out.stdout);
    const created = await windowTitled('vmp-from-launcher', from);
    expect(created.window.wmInstance).toBe('vmp-launcher');
  });

  test('EXEC_EXITED: run answers an exec id; the exit status, or the killing signal, reaches the proxy under it', async () => {
    const from = log.mark;
    const exited = await controlRequest<{ pid: number; execId: number }>(
      'run',
      { vm: VM, argv: ['sh', '-c', 'exit 7'] },
      { socketPath: control.socketPath },
    );
    expect(exited.execId).toBeGreaterThan(0);
    const end = await log.waitFor(
      (e) => e.type === 'exec-exited' && e.execId === exited.execId,
      `exec-exited of ${exited.execId}; agent log: ${agentLog}`,
      20_000,
      from,
    );
    expect(end).toMatchObject({ vm: VM, type: 'exec-exited', how: 'exited', code: 7 });
    const xterm = await controlRequest<{ pid: number; execId: number }>(
      'run',
      { vm: VM, argv: ['xterm', '-T', 'vmp-to-kill'] },
      { socketPath: control.socketPath },
    );
    expect(xterm.execId).not.toBe(exited.execId);
    await windowTitled('vmp-to-kill', from);
    process.kill(xterm.pid, 'SIGKILL');
    const killed = await log.waitFor(
      (e) => e.type === 'exec-exited' && e.execId === xterm.execId,
      `exec-exited of ${xterm.execId}`,
      20_000,
      from,
    );
    expect(killed).toMatchObject({ how: 'signalled', code: 9 });
  });

  test('forget of a VM the proxy does not know answers false; its followers still hear it is gone', async () => {
    const from = log.mark;
    await expect(
      controlRequest('forget', { vm: 'vmp-t-never-seen' }, { socketPath: control.socketPath }),
    ).resolves.toEqual({ forgotten: false });
    expect(
      log.all
        .slice(from)
        .filter((e) => e.type === 'vm-forgotten')
        .map((e) => e.vm),
    ).toEqual(['vmp-t-never-seen']);
    expect(proxy.table.has('vmp-t-never-seen')).toBe(false);
  });

  test('a program the guest does not have: one line, exit 1, and the link stays up', async () => {
    const from = log.mark;
    const r = await runCli(['run', VM, '--', 'vmp-no-such-program', '--flag'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `error: the agent in ${VM} answered FAILED: cannot start vmp-no-such-program: no such program\n`,
    );
    expect(r.stdout).toBe('');
    expect(log.all.slice(from).filter((e) => e.type === 'agent-disconnected')).toEqual([]);
    expect(proxy.status().vms.find((v) => v.name === VM)?.connected).toBe(true);
  });

  test('bad commands are refused before anything is sent: a shell string, a control character, no command', async () => {
    const before = (agentLog.match(/started /g) ?? []).length;
    const shell = await runCli(['run', VM, '--', 'sh -c reboot'], env);
    expect(shell.code).toBe(2);
    expect(shell.stderr).toMatch(
      /^error: invalid command "sh -c reboot": argv\[0\] must be a program name[^\n]*\n$/,
    );
    const newline = await runCli(['run', VM, '--', 'xterm', 'a\nb'], env);
    expect(newline.code).toBe(2);
    expect(newline.stderr).toMatch(
      /^error: invalid command "xterm a\\nb": argv\[1\] contains a control character/,
    );
    const none = await runCli(['run', VM], env);
    expect(none.code).toBe(2);
    expect(none.stderr).toBe(`error: run ${VM}: name a command after --, e.g. run ${VM} -- xterm\n`);
    // A NUL cannot travel in a process's argv; it can in a control request, which refuses it.
    await expect(
      controlRequest('run', { vm: VM, argv: ['xterm', 'a\u0000b'] }, { socketPath: control.socketPath }),
    ).rejects.toThrow(/argv\[1\] contains a control character \(NUL included\)/);
    expect((agentLog.match(/started /g) ?? []).length).toBe(before);
  });

  test('a VM that is not ours is not found (exit 2); a VM whose agent never connects fails within its wait', async () => {
    const r = await runCli(['run', `${VM}-nope`, '--', 'xterm'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^error: no VM named '${VM}-nope'`));
    await expect(
      controlRequest(
        'run',
        { vm: 'vmp-t-nobody', argv: ['xterm'], waitMs: 300 },
        { socketPath: control.socketPath },
      ),
    ).rejects.toThrow('the agent in VM "vmp-t-nobody" has not connected (waited 300 ms)');
  });

  test('a malformed EXEC reaching the agent is a protocol error: ERROR and close, then it reconnects', async () => {
    const from = log.mark;
    const conn = (
      proxy as unknown as { current: Map<string, { socket: import('node:net').Socket }> }
    ).current.get(VM)!;
    // argv ["xterm", "a<NUL>b"], which our encoder refuses to build.
    const payload = Buffer.from(
      '000000010002' + '0005' + Buffer.from('xterm').toString('hex') + '0003610062',
      'hex',
    );
    const header = Buffer.alloc(5);
    header.writeUInt32BE(payload.length, 0);
    header.writeUInt8(MessageType.EXEC, 4);
    conn.socket.write(Buffer.concat([header, payload]));
    const gone = await log.waitFor(
      (e) => e.type === 'agent-disconnected',
      'agent-disconnected',
      10_000,
      from,
    );
    expect(gone.type === 'agent-disconnected' && gone.reason).toBe(
      'agent reported error 1: malformed frame from the proxy: exec: argv[1] contains a control character (NUL included)',
    );
    await log.waitFor((e) => e.type === 'agent-connected', `reconnect; log: ${agentLog}`, 20_000, from);
  });

  test('when run starts the VM it opens the SPICE viewer, whose window title starts with [NAME]', async () => {
    virsh('destroy', VM);
    const r = await whileVmRestarts(
      ['run', VM, '--', 'xterm', '-T', 'vmp-with-viewer'],
      { ...env, DISPLAY: x.display },
      60_000,
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    pidOf(r.stdout);
    const viewer = /; viewer pid (\d+)\n$/.exec(r.stdout);
    expect(viewer).not.toBeNull();
    started.push(Number(viewer![1]));
    expect(fs.readFileSync(`/proc/${viewer![1]}/cmdline`, 'utf8').split('\0').slice(0, -1)).toEqual([
      'remote-viewer',
      '--title',
      `[${VM}]`,
      '--',
      expect.stringMatching(/^spice:\/\/127\.0\.0\.1:\d+$/),
    ]);
    // remote-viewer appends the monitor number: "[NAME] (1)".
    await session.until(
      async () => (await session.xdotool('search', '--name', `^\\[${VM}\\]`)).trim() !== '',
      'the viewer window titled [NAME]',
      20_000,
    );
  });

  test('a VM that is shut off is started by run, then the command runs', async () => {
    virsh('destroy', VM);
    const from = log.mark;
    const r = await whileVmRestarts(
      ['run', VM, '--no-viewer', '--', 'xterm', '-T', 'vmp-after-start'],
      env,
      60_000,
    );
    // run waited for a connection made after it started the VM, not the one from before.
    expect(log.all.slice(from).filter((e) => e.type === 'agent-connected')).toHaveLength(1);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/ \(pid \d+ in the VM\) after starting the VM\n$/);
    pidOf(r.stdout);
    await windowTitled('vmp-after-start', from);
    expect(virsh('domstate', VM).trim()).toBe('running');
  });

  test('with no proxy answering, run fails on one line and does not start the VM for nothing', async () => {
    virsh('destroy', VM);
    const socket = path.join(tmp, 'no-proxy.sock');
    const r = await runCli(['run', VM, '--socket', socket, '--', 'xterm'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(`^error: the window proxy is not running \\(no answer on ${socket}: [^\n]*\n$`),
    );
    expect(virsh('domstate', VM).trim()).toBe('shut off');
  });

  test("launchers sync (the CLI) writes the VM's launcher, running this install's CLI by absolute path", async () => {
    const r = await runCli(['launchers', 'sync'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^launchers: \d+ written, \d+ unchanged, 0 removed \(.*\/data\/applications\)\n$/,
    );
    const entry = fs.readFileSync(
      path.join(tmp, 'data', 'applications', `vm-provisioner-${VM}_xterm.desktop`),
      'utf8',
    );
    const argv = parseExecLine(/^Exec=(.*)$/m.exec(entry)![1]!);
    expect(argv).toEqual([
      process.execPath,
      CLI,
      'run',
      VM,
      '--',
      'xterm',
      '-T',
      'vmp-from-launcher',
      '-name',
      'vmp-launcher',
    ]);
  });

  describeWith(probeSecretService(), 'destroy needs the keyring')('destroy', () => {
    test("destroy removes the VM's launchers, and says so on one line", async () => {
      const r = await runCli(['destroy', VM, '--yes'], env, 60_000);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      expect(r.stdout).toMatch(new RegExp(`^${VM}: destroyed \\(.*\\)\nlaunchers: 0 written, 2 removed\n$`));
      expect(fs.readdirSync(path.join(tmp, 'data', 'applications'))).toEqual([]);
      expect(fs.readdirSync(path.join(tmp, 'data', 'icons', 'hicolor', 'scalable', 'apps'))).toEqual([]);
    });
  });
});
