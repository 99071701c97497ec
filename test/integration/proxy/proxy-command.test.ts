import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { AgentClient, ErrorCode, parseAgentSecret } from '../../../src/protocol/index.js';
import { KeyringSecretStore } from '../../../src/secrets/keyring.js';
import { generateAgentSecret } from '../../../src/secrets/password.js';
import { AGENT_SECRET_SERVICE } from '../../../src/service/ports.js';
import { runCli, spawnCli } from '../../support/cli.js';
import { testWindow, waitFor } from '../../support/fake-agent.js';
import { describeWith, probeSecretService } from '../../support/services.js';

/**
 * `vm-provisioner proxy` as a process: agent secrets come from the real
 * Secret Service (service vm-provisioner-agent), agents connect over TCP,
 * `windows` reads its control socket, SIGTERM stops it cleanly.
 */

const PREFIX = 'vmp-t-proto-';

describeWith(probeSecretService(), 'proxy command with the keyring')('vm-provisioner proxy', () => {
  const vm = `${PREFIX}e2e-${randomBytes(3).toString('hex')}`;
  const store = new KeyringSecretStore(AGENT_SECRET_SERVICE);
  let secretText: string;
  let tmp: string;
  let env: NodeJS.ProcessEnv;
  let child: ChildProcess;
  let stderr = '';
  let port: number;
  let agentSocket: string;

  beforeAll(async () => {
    secretText = generateAgentSecret();
    await store.set(vm, secretText);
    tmp = mkdtempSync(path.join(os.tmpdir(), `${PREFIX}cmd-`));
    env = { ...process.env, XDG_RUNTIME_DIR: tmp, XDG_CONFIG_HOME: path.join(tmp, 'config'), NO_COLOR: '1' };
    agentSocket = path.join(tmp, 'agents', 'agent.sock');
    child = spawnCli(
      ['proxy', '--listen', '127.0.0.1:0', '--agent-socket', agentSocket, '--heartbeat-interval', '200'],
      env,
    );
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const m = await waitFor(
      () => /listening on 127\.0\.0\.1:(\d+), unix:(\S+);/.exec(stderr),
      15_000,
      'the proxy to listen',
    );
    port = Number(m[1]);
    expect(m[2]).toBe(agentSocket);
  });

  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await store.delete(vm);
    rmSync(tmp, { recursive: true, force: true });
  });

  test('an agent with the keyring secret is accepted and its windows are listed by `windows --json`', async () => {
    const agent = await AgentClient.connect({
      host: '127.0.0.1',
      port,
      vmName: vm,
      secret: parseAgentSecret(`${secretText}\n`)!,
    });
    try {
      expect(agent.heartbeatIntervalMs).toBe(200);
      agent.send({ type: 'window-list', focused: 7, windows: [testWindow(7, 'Firefox')] });
      const listed = await waitFor(async () => {
        const r = await runCli(['windows', vm, '--json'], env);
        const parsed = JSON.parse(r.stdout) as { vms: Array<{ windows: Array<{ title: string }> }> };
        return parsed.vms[0]!.windows.length === 1 ? parsed : undefined;
      }, 15_000);
      expect(listed.vms[0]).toMatchObject({
        name: vm,
        connected: true,
        focused: 7,
        windows: [{ id: 7, title: 'Firefox' }],
      });
    } finally {
      agent.close();
    }
  });

  test("an agent on the virtio-serial socket (QEMU's end played by a Unix client) is accepted as well", async () => {
    const link = net.connect(agentSocket);
    await new Promise<void>((resolve, reject) => {
      link.once('connect', resolve);
      link.once('error', reject);
    });
    const agent = await AgentClient.connect({
      host: 'serial',
      port: 0,
      open: () => link,
      vmName: vm,
      secret: parseAgentSecret(`${secretText}\n`)!,
    });
    try {
      expect(agent.heartbeatIntervalMs).toBe(200);
      await waitFor(() => /agent \S+ connected from virtio-serial/.test(stderr) || undefined, 15_000);
    } finally {
      agent.close();
    }
  });

  test('a wrong secret and an unknown VM are refused and logged', async () => {
    await expect(
      AgentClient.connect({ host: '127.0.0.1', port, vmName: vm, secret: randomBytes(32) }),
    ).rejects.toMatchObject({ code: ErrorCode.AUTH_FAILED });
    await expect(
      AgentClient.connect({ host: '127.0.0.1', port, vmName: `${PREFIX}nosuch`, secret: randomBytes(32) }),
    ).rejects.toMatchObject({ code: ErrorCode.AUTH_FAILED });
    await waitFor(
      () => stderr.includes(`agent ${PREFIX}nosuch`) && /no agent secret for this VM/.test(stderr),
    );
    expect(stderr).toMatch(
      new RegExp(`agent ${vm} \\(127\\.0\\.0\\.1:\\d+\\) closed: authentication failed`),
    );
  });

  test('SIGTERM stops it with exit 0 and removes the control socket', async () => {
    const socket = path.join(tmp, 'vm-provisioner', 'proxy.sock');
    expect(existsSync(socket)).toBe(true);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(existsSync(socket)).toBe(false);
    expect(existsSync(agentSocket)).toBe(false);
    expect(stderr).toMatch(/received SIGTERM; stopping/);
  });
});
