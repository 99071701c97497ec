import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { allDomainNames, removeDomain, virsh } from '../support/libvirt-fixture.js';
import { describeWith } from '../support/services.js';
import { BORDER_ALPHA, BORDER_WIDTH, LABEL_RGB } from '../../src/seamless/client.js';
import { AppVmHost, buildGuestImage, type GuestImage, probeE2e } from './support/app-vm-host.js';
import { alive, HostDesktop } from './support/host-desktop.js';

/**
 * Seamless windows on a real guest (docs/seamless.md): the e2e Debian image
 * (xpra inside) as an app VM with no network at all, shown by `start` on a
 * real host X server (Xvfb) managed by a real window manager (i3), through the
 * virtio-serial display channel. One booted guest serves every test.
 */

const probe = probeE2e(['xpra', 'Xvfb', 'i3', 'xdotool', 'xwininfo', 'xprop', 'wmctrl', 'import']);
const LABEL = 'orange';
const GUEST_USER_ENV = [
  'PATH=/usr/bin:/bin',
  'XDG_RUNTIME_DIR=/run/user/1000',
  'DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus',
];

describeWith(probe, 'end-to-end seamless windows')(
  'start --seamless on a real guest and host desktop',
  () => {
    const name = AppVmHost.vmName('seamless');
    let image: GuestImage;
    let host: AppVmHost;
    let desktop: HostDesktop;
    let window: number | undefined;
    const clients: number[] = [];

    beforeAll(async () => {
      image = await buildGuestImage();
      host = new AppVmHost();
      desktop = await HostDesktop.start();
      host.env.DISPLAY = desktop.display;
    }, 40 * 60_000);

    afterAll(async () => {
      for (const pid of clients) if (alive(pid)) process.kill(pid, 'SIGTERM');
      if (allDomainNames().includes(name)) removeDomain(name);
      await desktop?.close();
      await host?.close();
    }, 120_000);

    /** Runs a command in the guest as the session user, with its user manager reachable. */
    function asUser(args: string[]): ReturnType<AppVmHost['guestExec']> {
      return host.guestExec(name, '/usr/sbin/runuser', [
        '-u',
        'user',
        '--',
        '/usr/bin/env',
        ...GUEST_USER_ENV,
        ...args,
      ]);
    }

    async function guestXterms(): Promise<string> {
      const r = await host.guestExec(name, '/usr/bin/pgrep', ['-a', '-x', 'xterm']);
      return r.code === 0 ? r.stdout : '';
    }

    function clientPid(stdout: string): number {
      const pid = Number(/xpra client (?:already )?attached \(pid (\d+)\)/.exec(stdout)?.[1]);
      expect(pid).toBeGreaterThan(0);
      clients.push(pid);
      return pid;
    }

    async function hostWindow(): Promise<number> {
      return host.until(
        async () => (await desktop.windowsNamed(`^\\[${name}\\] `))[0],
        `a host window titled [${name}]`,
        180_000,
      );
    }

    test('display = "seamless" with --network none: start shows the xterm as its own host window, titled and bordered', async () => {
      const created = await host.createVm(name, image, ['xterm'], {
        network: 'none',
        extraArgs: ['--label', LABEL, '--display', 'seamless'],
      });
      expect({ code: created.code, stderr: created.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
      const xml = virsh('dumpxml', name, '--inactive');
      expect(xml).not.toContain('<interface');
      expect(xml).toContain(`<target type='virtio' name='org.vm-provisioner.display.0'/>`);

      // No --seamless: the VM's display setting chooses it.
      const started = await host.cli(['start', name], 400_000);
      expect({ code: started.code, stderr: started.stderr }).toEqual({ code: 0, stderr: '' });
      expect(started.stdout).toContain(`${name}: started`);
      clientPid(started.stdout);
      const socket = fs.readdirSync(host.vmDir).find((f) => f.endsWith('-display.sock'));
      expect(socket).toBe(`${name}-display.sock`);
      expect(fs.statSync(`${host.vmDir}/${socket}`).mode & 0o777).toBe(0o600);
      // The CLI's user owns it (the channel's DAC seclabel), not QEMU's: a non-root user can attach too.
      expect(fs.statSync(`${host.vmDir}/${socket}`).uid).toBe(process.getuid!());

      window = await hostWindow();
      // Titled [NAME] and then the guest's own title: `xterm` as it maps, or bash's user@HOST if its
      // prompt came first. That a later retitle follows is checked once typing has brought a new prompt.
      expect(await desktop.property(window, '_NET_WM_NAME')).toMatch(new RegExp(`= "\\[${name}\\] \\S`));
      expect(await desktop.property(window, 'WM_CLASS')).toContain('"XTerm"');
      // A top-level window the host's window manager manages, not a child of a viewer.
      expect(await desktop.clientList()).toContain(window);
      const { x, y, width, height } = await desktop.geometry(window);
      expect(width).toBeGreaterThan(200);
      // i3 tiles it: the one window fills the screen's width (less i3's own border).
      expect(width).toBeGreaterThan(1200);
      // xpra draws the border inside the window: the label colour at xpra's opacity over the backing.
      const label = LABEL_RGB[LABEL];
      const want = [1, 3, 5].map((i) =>
        Math.round(Number.parseInt(label.slice(i, i + 2), 16) * BORDER_ALPHA),
      );
      const near = (p: number[]): boolean => p.every((v, i) => Math.abs(v - want[i]!) <= 8);
      const midY = y + Math.floor(height / 2);
      // The first frame may still be on its way: wait until the window is painted, then read a row across its edge.
      let row: number[][] = [];
      await host
        .until(
          async () => {
            row = [];
            for (let dx = 0; dx < BORDER_WIDTH + 4; dx++) row.push(await desktop.pixel(x + dx, midY));
            return near(row[2]!);
          },
          'the label-coloured border on screen',
          60_000,
        )
        .catch((err: unknown) => {
          throw new Error(
            `${(err as Error).message}; want ${JSON.stringify(want)}, row from x=${x}: ${JSON.stringify(row)}`,
          );
        });
      // The whole border is the label colour; inside it, the xterm's own (white) background.
      for (let dx = 0; dx < BORDER_WIDTH; dx++) expect(near(row[dx]!)).toBe(true);
      expect(row[BORDER_WIDTH + 2]).toEqual([255, 255, 255]);
    }, 600_000);

    test('text typed into the host window reaches the app in the guest', async () => {
      expect(window).toBeDefined();
      const token = `seamless-${Date.now()}`;
      await desktop.x('xdotool', ['windowactivate', '--sync', String(window)]);
      await desktop.x('xdotool', ['type', '--delay', '60', `cd /tmp && echo ${token} > vmp-typed`]);
      await desktop.x('xdotool', ['key', 'Return']);
      const typed = await host.until(
        async () => {
          const r = await host.guestExec(name, '/bin/cat', ['/tmp/vmp-typed']);
          return r.code === 0 && r.stdout.trim() !== '' ? r.stdout.trim() : undefined;
        },
        'the typed line in /tmp/vmp-typed',
        120_000,
      );
      expect(typed).toBe(token);
      // The command ran and bash drew a new prompt, retitling its xterm `user@HOST: /tmp` (the host name
      // the config disk gave the VM, and a directory no earlier title named): that retitle in the guest
      // reaches the host window's title.
      const shown = window!;
      const titled = new RegExp(`= "\\[${name}\\] user@${name}: /tmp"`);
      await host
        .until(
          async () => titled.test(await desktop.property(shown, '_NET_WM_NAME')),
          `the host window titled [${name}] user@${name}: /tmp`,
          60_000,
        )
        .catch(async (err: unknown) => {
          process.stderr.write(
            `the host window's title: ${await desktop.property(shown, '_NET_WM_NAME').catch(String)}\n` +
              `the guest's terminals:\n${await host.guestTerminalReport(name)}\n`,
          );
          throw err;
        });
    }, 300_000);

    test('a second start re-attaches after the client went away (the guest bridge loops)', async () => {
      const pid = clients.at(-1)!;
      process.kill(pid, 'SIGTERM');
      await host.until(
        () => !alive(pid) && desktop.windowsNamed(`^\\[${name}\\] `).then((w) => w.length === 0),
        'the host window to go with its client',
        30_000,
      );
      const again = await host.cli(['start', name, '--seamless'], 300_000);
      expect({ code: again.code, stderr: again.stderr }).toEqual({ code: 0, stderr: '' });
      expect(again.stdout).toContain(`${name}: already running`);
      expect(clientPid(again.stdout)).not.toBe(pid);
      window = await hostWindow();
      // Only one guest xterm: the apps moved onto xpra's display once, not at every attach.
      expect((await guestXterms()).trim().split('\n')).toHaveLength(1);
    }, 400_000);

    test('closing the host window closes the app in the guest', async () => {
      expect(window).toBeDefined();
      expect(await guestXterms()).toMatch(/xterm/);
      // wmctrl -c asks politely (WM_DELETE_WINDOW), as a window manager's close does.
      await desktop.x('wmctrl', ['-i', '-c', `0x${window!.toString(16)}`]);
      await host.until(async () => (await guestXterms()) === '', 'the guest xterm to exit', 60_000);
      await host.until(
        async () => (await desktop.windowsNamed(`^\\[${name}\\] `)).length === 0,
        'the host window to go',
        30_000,
      );
      // The client stays attached with no windows (the next app window would appear).
      expect(alive(clients.at(-1)!)).toBe(true);
    }, 300_000);

    test('a guest that sends garbage on the display channel: the client exits, start reports it and returns', async () => {
      const pid = clients.at(-1)!;
      process.kill(pid, 'SIGTERM');
      await host.until(() => !alive(pid), 'the client to exit', 30_000);
      const stopped = await asUser(['systemctl', '--user', 'stop', 'vm-display-bridge.service']);
      expect(stopped.code).toBe(0);
      // A hostile guest: random bytes into the port for as long as the host reads them.
      const writer = await host.guestExec(name, '/bin/sh', [
        '-c',
        'nohup sh -c "while :; do head -c 65536 /dev/urandom; done > /dev/virtio-ports/org.vm-provisioner.display.0" >/dev/null 2>&1 & echo $!',
      ]);
      expect(writer.code).toBe(0);
      const startedAt = Date.now();
      const result = await host.cli(['start', name, '--seamless', '--seamless-timeout', '120'], 200_000);
      process.stderr.write(`e2e: start against a garbage guest returned in ${Date.now() - startedAt} ms\n`);
      expect(result.code).toBe(1);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toMatch(/the xpra client exited \(code \d+\): .*(nonsense|invalid|header)/i);
      // eslint-disable-next-line no-control-regex
      expect(result.stderr).not.toMatch(/[\u0000-\u0008\u000e-\u001f\u007f-\uffff]/);
      // Nothing of it left running on the host.
      let left = '';
      try {
        left = execFileSync('pgrep', ['-f', `socket://${host.vmDir}/${name}-display.sock`], {
          encoding: 'utf8',
        });
      } catch {
        // pgrep exits 1 when nothing matches
      }
      expect(left.trim()).toBe('');
      await host.guestExec(name, '/bin/kill', [writer.stdout.trim()]);
    }, 300_000);

    test('destroy removes the display socket with the rest', async () => {
      const destroyed = await host.cli(['destroy', name, '--yes'], 180_000);
      expect(destroyed.code).toBe(0);
      expect(fs.readdirSync(host.vmDir)).toEqual([]);
    }, 300_000);
  },
);
