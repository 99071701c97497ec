import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { secretToolLookup } from '../support/keyring-control.js';
import { allDomainNames, removeDomain, virsh } from '../support/libvirt-fixture.js';
import { describeWith } from '../support/services.js';
import {
  AppVmHost,
  buildGuestImage,
  isXterm,
  showsWindow,
  describeHostCpu,
  hostCpuSeconds,
  GUEST_X_ENV,
  type GuestImage,
  type ProxyEventLine,
  type WindowView,
  probeE2e,
} from './support/app-vm-host.js';

/**
 * The proof on a real VM: a Debian guest image (built offline with debootstrap,
 * cached) becomes an app VM through `vm-provisioner create --import`, boots
 * under QEMU emulation from its own kernel, reads its identity from the per-VM
 * config disk, logs in by itself, launches its app (xterm), and its guest agent
 * reaches the real host proxy at 10.0.2.2:9999 over QEMU user networking.
 */

const probe = probeE2e();
/** The bound: `windows NAME --json` lists the xterm within 60 s of `start`. */
const WINDOW_WITHIN_MS = 60_000;
/**
 * How long the test waits before giving up. Longer than the bound, so a slow
 * boot fails with its time and the guest's journal rather than a bare timeout.
 */
const WINDOW_DEADLINE_MS = 180_000;

describeWith(probe, 'end-to-end app VM')('app VM from create --import, on a real guest', () => {
  const name = AppVmHost.vmName('xterm');
  let image: GuestImage;
  let host: AppVmHost;
  let follow: { events: ProxyEventLine[]; stop: () => void };
  let xterm: WindowView | undefined;

  beforeAll(async () => {
    image = await buildGuestImage();
    host = new AppVmHost();
    await host.startProxy();
    follow = host.follow();
  }, 40 * 60_000);

  /** The guest's own account of its boot, through the QEMU guest agent, for a failure message. */
  async function guestJournal(vm: string): Promise<string> {
    try {
      const r = await host.guestExec(vm, '/usr/bin/journalctl', [
        '-b',
        '--no-pager',
        '-o',
        'short-monotonic',
        '-n',
        '80',
      ]);
      return r.stdout;
    } catch (err) {
      return `(the QEMU guest agent did not answer: ${(err as Error).message})`;
    }
  }

  afterAll(async () => {
    follow?.stop();
    if (allDomainNames().includes(name)) {
      const log = consoleLogOf(name);
      if (log) process.stderr.write(`guest serial console (last lines):\n${log}\n`);
      removeDomain(name);
    }
    await host?.close();
  }, 120_000);

  test('create --import defines the VM with its config disk, kernel and keyring entries', async () => {
    const result = await host.createVm(name, image, ['xterm']);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
    const xml = virsh('dumpxml', name, '--inactive');
    expect(xml).toContain("<domain type='qemu'");
    expect(xml).toMatch(/<interface type='user'>/);
    expect(xml).toContain('<serial>vmp-config</serial>');
    expect(xml).toMatch(/<kernel>[^<]*\/vms\/[^<]+<\/kernel>/);
    const configDisk = fs
      .readdirSync(host.vmDir)
      .map((f) => path.join(host.vmDir, f))
      .find((f) => f.endsWith('-config.img'));
    expect(configDisk).toBeDefined();
    expect(fs.statSync(configDisk!).mode & 0o777).toBe(0o600);
    expect(secretToolLookup('vm-provisioner-agent', name)).toBeTruthy();
    expect(secretToolLookup('vm-provisioner', name)).toBeTruthy();
  }, 300_000);

  test('start boots it; the agent authenticates and windows --json lists the xterm window with its title', async () => {
    const cpuBefore = hostCpuSeconds();
    const started = Date.now();
    const result = await host.cli(['start', name, '--no-viewer'], 120_000);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/spice:\/\/127\.0\.0\.1:\d+/);
    // Waits on the `windows --follow` stream already running, not by spawning the CLI in a loop: every
    // spawn is a Node start-up taken from the two cores QEMU emulates the guest on.
    const reported = await host
      .until(
        () => follow.events.find((e) => showsWindow(e, name, isXterm)),
        `the xterm window of ${name} at the proxy`,
        WINDOW_DEADLINE_MS,
      )
      .catch(async (err: unknown) => {
        process.stderr.write(
          `proxy log:\n${host.proxyOutput}\nguest journal (last lines):\n${await guestJournal(name)}\n`,
        );
        throw err;
      });
    process.stderr.write(
      `e2e: xterm at the proxy (${reported.type}) ${((reported.receivedAt - started) / 1000).toFixed(1)} s after start; ${describeHostCpu(cpuBefore, hostCpuSeconds())}\n`,
    );
    // What a user sees: `windows NAME --json` lists it, with its title, within the bound.
    xterm = (await host.windowsOf(name)).find(isXterm);
    const listedAfterMs = Date.now() - started;
    process.stderr.write(
      `e2e: windows --json listed it ${(listedAfterMs / 1000).toFixed(1)} s after start\n`,
    );
    if (listedAfterMs >= WINDOW_WITHIN_MS) {
      process.stderr.write(`slow boot; guest journal (last lines):\n${await guestJournal(name)}\n`);
    }
    expect(xterm).toBeDefined();
    expect(xterm!.title).not.toBe('');
    expect(listedAfterMs).toBeLessThan(WINDOW_WITHIN_MS);
    expect(xterm!.width).toBeGreaterThan(100);
    // Debian's bash titles the xterm user@HOST: the host name the config disk gave this VM.
    const id = xterm!.id;
    const titled = (w: WindowView): boolean => w.id === id && w.title.includes(`@${name}`);
    await host
      .until(
        () =>
          follow.events.find(
            (e) =>
              (e.vm === name &&
                e.type === 'title-changed' &&
                e.id === id &&
                String(e.title).includes(`@${name}`)) ||
              showsWindow(e, name, titled),
          ),
        `the xterm's title to name the VM's host name ${name}`,
        60_000,
      )
      .catch(async (err: unknown) => {
        const titles = follow.events
          .filter((e) => e.vm === name && e.type === 'title-changed' && e.id === id)
          .map((e) => String(e.title));
        process.stderr.write(
          `the xterm's title as listed: ${JSON.stringify(xterm!.title)}; retitles seen: ${JSON.stringify(titles)}\n` +
            `the guest's terminals:\n${await host.guestTerminalReport(name)}\n`,
        );
        throw err;
      });
    // Over the VM's virtio-serial port, not TCP (docs/protocol.md, "Transport"): a local libvirt's VMs have it.
    expect(host.proxyOutput).toMatch(new RegExp(`agent ${name} connected from virtio-serial`));
    expect(virsh('dumpxml', name)).toMatch(
      /<source mode='connect' path='\/tmp\/vm-provisioner-agents-\d+\/agent\.sock'>[\s\S]*?<target type='virtio' name='org\.vm-provisioner\.agent\.0' state='connected'\/>/,
    );
    expect(
      follow.events.find(
        (e) => e.vm === name && e.type === 'agent-connected' && e.receivedAt <= reported.receivedAt,
      ),
    ).toBeDefined();
    expect(virsh('domdisplay', name).trim()).toMatch(/^spice:\/\/127\.0\.0\.1:\d+\/?$/);
  }, 300_000);

  test("logs --console: the guest's serial console, as virtlogd wrote it", async () => {
    // The guest's getty on ttyS0 prints its login prompt once the system is up.
    const shown = await host.until(
      async () => {
        const r = await host.cli(['logs', name, '--console'], 30_000);
        return r.code === 0 && /login:/.test(r.stdout) ? r : undefined;
      },
      `a login prompt in logs ${name} --console`,
      60_000,
    );
    expect(shown.stderr).toBe('');
    // Nothing the guest wrote can drive the host's terminal: no escape or other control characters.
    // eslint-disable-next-line no-control-regex
    expect(shown.stdout).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/);
    // Without a flag: the console log, since it exists.
    expect((await host.cli(['logs', name], 30_000)).stdout).toMatch(/login:/);
  }, 120_000);

  test('closing the window inside the guest reaches the proxy as window-destroyed', async () => {
    expect(xterm).toBeDefined();
    const id = `0x${xterm!.id.toString(16)}`;
    // wmctrl asks the window to close (WM_DELETE_WINDOW): xterm exits cleanly, so its unit does not relaunch it.
    const closed = await host.guestExec(name, '/usr/bin/wmctrl', ['-i', '-c', id], GUEST_X_ENV);
    expect(closed).toEqual({ code: 0, stdout: '', stderr: '' });
    await host.until(
      () => follow.events.find((e) => e.vm === name && e.type === 'window-destroyed' && e.id === xterm!.id),
      `window-destroyed for ${id}`,
      30_000,
    );
    expect((await host.windowsOf(name)).find((w) => w.id === xterm!.id)).toBeUndefined();
  }, 120_000);

  test('run starts a command in the running guest through its agent; its window reaches the proxy', async () => {
    const from = follow.events.length;
    const result = await host.cli(
      ['run', name, '--', 'xterm', '-name', 'vmp-e2e-run', '-T', 'vmp e2e run'],
      60_000,
    );
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(new RegExp(`^${name}: started xterm \\(pid \\d+ in the VM\\)\\n$`));
    const pid = /\(pid (\d+) in the VM\)/.exec(result.stdout)![1]!;
    const isRun = (w: WindowView): boolean => w.wmInstance === 'vmp-e2e-run';
    await host.until(
      () => follow.events.slice(from).find((e) => showsWindow(e, name, isRun)),
      'the xterm started by run at the proxy',
      60_000,
    );
    // The pid is the guest's: the process runs there, as the auto-login user, in that user's home.
    const cwd = await host.guestExec(name, '/usr/bin/readlink', [`/proc/${pid}/cwd`]);
    expect(cwd.code).toBe(0);
    expect(cwd.stdout.trim()).toMatch(/^\/home\/[a-z_][a-z0-9_-]*$/);
    expect((await host.guestExec(name, '/bin/kill', [pid])).code).toBe(0);
  }, 120_000);

  test('stop and destroy leave nothing behind', async () => {
    const stopped = await host.cli(['stop', name, '--timeout', '60', '--force'], 180_000);
    expect(stopped.code).toBe(0);
    expect(virsh('domstate', name).trim()).toBe('shut off');
    const destroyed = await host.cli(['destroy', name, '--yes'], 120_000);
    expect({ code: destroyed.code, stderr: destroyed.stderr }).toEqual({ code: 0, stderr: '' });
    expect(allDomainNames()).not.toContain(name);
    expect(fs.readdirSync(host.vmDir)).toEqual([]);
    expect(fs.existsSync(path.join(host.env.XDG_CONFIG_HOME!, 'vm-provisioner', `${name}.toml`))).toBe(false);
    expect(secretToolLookup('vm-provisioner-agent', name)).toBeNull();
    expect(secretToolLookup('vm-provisioner', name)).toBeNull();
  }, 300_000);
});

/** libvirt's per-domain QEMU log is the only trace left when a boot goes wrong. */
function consoleLogOf(name: string): string {
  try {
    return execFileSync('tail', ['-n', '40', `/var/log/libvirt/qemu/${name}.log`], { encoding: 'utf8' });
  } catch {
    return '';
  }
}
