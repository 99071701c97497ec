import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentClient, ClipboardStatus, type Message } from '../../../src/protocol/index.js';
import { ControlServer } from '../../../src/proxy/control-socket.js';
import { ProxyServer } from '../../../src/proxy/server.js';
import { clipboardPolicy } from '../../../src/service/proxy.js';
import { defaultSpec } from '../../../src/spec/defaults.js';
import { FileConfigStore } from '../../../src/spec/store.js';
import { runCli } from '../../support/cli.js';
import { describeWith, probeXDisplay } from '../../support/services.js';

/**
 * `vm-provisioner clipboard copy|paste` end to end: the real CLI, the host's
 * X clipboard (xclip on the test X server), the control socket, the proxy and
 * an agent over TCP. Each VM's enable_clipboard comes from its real config file.
 */

const PREFIX = 'vmp-t-proto-';
const VM_ON = `${PREFIX}clip-on`;
const VM_OFF = `${PREFIX}clip-off`;
const x = probeXDisplay();

describeWith(x, 'clipboard through the proxy')('vm-provisioner clipboard', () => {
  let tmp: string;
  let env: NodeJS.ProcessEnv;
  let proxy: ProxyServer;
  let control: ControlServer;
  const agents: AgentClient[] = [];
  const pasted: Message[] = [];
  const requests: string[] = [];
  let guestClipboard = { mimeType: 'text/plain;charset=utf-8', data: Buffer.from('') };

  const xclip = (args: string[], input?: string): string =>
    execFileSync('xclip', ['-selection', 'clipboard', ...args], {
      env: { ...process.env, DISPLAY: x.display },
      input,
      encoding: 'utf8',
      timeout: 5000,
      // xclip -i forks a child that serves the selection; it must not hold our stdout pipe.
      stdio: input === undefined ? ['ignore', 'pipe', 'ignore'] : ['pipe', 'ignore', 'ignore'],
    }) ?? '';

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), `${PREFIX}clip-`));
    const configHome = path.join(tmp, 'config');
    env = {
      ...process.env,
      XDG_RUNTIME_DIR: tmp,
      XDG_CONFIG_HOME: configHome,
      DISPLAY: x.display,
      NO_COLOR: '1',
    };
    delete env.WAYLAND_DISPLAY;
    const store = new FileConfigStore(path.join(configHome, 'vm-provisioner'));
    await store.write(defaultSpec(VM_ON, { enableClipboard: true }));
    await store.write(defaultSpec(VM_OFF, { enableClipboard: false }));
    const secrets = new Map([
      [VM_ON, randomBytes(32)],
      [VM_OFF, randomBytes(32)],
    ]);
    proxy = new ProxyServer({
      listen: [{ host: '127.0.0.1', port: 0 }],
      lookupSecret: async (n) => secrets.get(n) ?? null,
      clipboardAllowed: clipboardPolicy(store),
      log: () => undefined,
    });
    const port = (await proxy.start())[0]!.port;
    control = new ControlServer(proxy, {
      socketPath: path.join(tmp, 'vm-provisioner', 'proxy.sock'),
      log: () => undefined,
    });
    await control.start();
    for (const name of [VM_ON, VM_OFF]) {
      const a = await AgentClient.connect({
        host: '127.0.0.1',
        port,
        vmName: name,
        secret: secrets.get(name)!,
      });
      a.on('message', (m) => {
        if (m.type === 'clipboard-request') {
          requests.push(name);
          a.send({ type: 'clipboard-data', requestId: m.requestId, ...guestClipboard });
        } else if (m.type === 'clipboard-data') {
          pasted.push(m);
          a.send({
            type: 'clipboard-result',
            requestId: m.requestId,
            status: ClipboardStatus.OK,
            message: '',
          });
        }
      });
      agents.push(a);
    }
  });

  afterAll(async () => {
    for (const a of agents) a.close();
    await control?.close();
    await proxy?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  test('copy puts the guest clipboard into the host clipboard', async () => {
    guestClipboard = {
      mimeType: 'text/plain;charset=utf-8',
      data: Buffer.from(`from the guest ✓ ${randomBytes(4).toString('hex')}`),
    };
    const r = await runCli(['clipboard', 'copy', VM_ON], env);
    expect(r.stderr).toMatch(/^copied \d+ bytes from/);
    expect(r.code).toBe(0);
    expect(xclip(['-o', '-t', 'UTF8_STRING'])).toBe(guestClipboard.data.toString());
  });

  test('paste sends the host clipboard to the guest', async () => {
    const text = `from the host ${randomBytes(4).toString('hex')}`;
    xclip(['-i'], text);
    const r = await runCli(['clipboard', 'paste', VM_ON], env);
    expect(r.code).toBe(0);
    const last = pasted.at(-1);
    expect(last?.type === 'clipboard-data' && last.data.toString()).toBe(text);
    expect(last?.type === 'clipboard-data' && last.mimeType).toBe('text/plain;charset=utf-8');
  });

  test('both are refused when the VM has enable_clipboard = false, and the agent is never asked', async () => {
    const before = { requests: requests.length, pasted: pasted.length };
    for (const action of ['copy', 'paste']) {
      const r = await runCli(['clipboard', action, VM_OFF], env);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(
        `error: clipboard is disabled for VM "${VM_OFF}": set enable_clipboard = true in ${path.join(tmp, 'config', 'vm-provisioner', `${VM_OFF}.toml`)}\n`,
      );
    }
    expect(requests.length).toBe(before.requests);
    expect(pasted.length).toBe(before.pasted);
  });

  test('a VM without a config is not found', async () => {
    const r = await runCli(['clipboard', 'copy', `${PREFIX}nosuch`], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: no VM named "vmp-t-proto-nosuch"/);
  });

  test('a MIME type from the guest that is not a MIME type never reaches the xclip command line', async () => {
    xclip(['-i'], 'unchanged');
    guestClipboard = { mimeType: 'text/plain; -display :0', data: Buffer.from('x') };
    const r = await runCli(['clipboard', 'copy', VM_ON], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: clipboard type "text\/plain; -display :0" is invalid/);
    expect(xclip(['-o'])).toBe('unchanged');
  });
});
