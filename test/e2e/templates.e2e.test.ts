import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { secretToolLookup } from '../support/keyring-control.js';
import { allDomainNames, removeDomain, virsh } from '../support/libvirt-fixture.js';
import { describeWith } from '../support/services.js';
import {
  AppVmHost,
  buildGuestImage,
  isXterm,
  showsWindow,
  type GuestImage,
  type ProxyEventLine,
  probeE2e,
} from './support/app-vm-host.js';

/**
 * Templates on a real guest: the Debian test image imported once as a
 * template, 20 app VMs made on it (overlays, never copies), one of them
 * booted to its xterm at the real proxy; its root is thrown away at a cold
 * restart while its /home (the private volume) is kept; a `template update`
 * reaches it at its next start; destroying all 20 leaves the template's disk
 * as it was.
 */

const APP_VMS = 20;
/** Not on Flathub and never fetched: the test image has no flatpak, and tests reach no network. */
const PENDING_FLATPAK = 'org.example.VmpPending';
const WINDOW_DEADLINE_MS = 240_000;

describeWith(probeE2e(), 'end-to-end templates')('app VMs on an imported template, on a real guest', () => {
  const template = AppVmHost.vmName('tmpl');
  const apps = Array.from({ length: APP_VMS }, (_, i) => `${template}-app${String(i).padStart(2, '0')}`);
  const booted = apps[0]!;
  let image: GuestImage;
  let host: AppVmHost;
  let follow: { events: ProxyEventLine[]; stop: () => void };

  beforeAll(async () => {
    image = await buildGuestImage();
    host = new AppVmHost();
    await host.startProxy();
    follow = host.follow();
  }, 40 * 60_000);

  afterAll(async () => {
    follow?.stop();
    for (const name of [...apps, template]) {
      if (allDomainNames().includes(name)) removeDomain(name);
    }
    await host?.close();
  }, 300_000);

  const templateDisk = (): string => path.join(host.vmDir, `${template}.qcow2`);
  const sha256 = (file: string): string =>
    execFileSync('sha256sum', [file], { encoding: 'utf8' }).split(' ')[0]!;

  /** Waits until the xterm of `vm` is reported at the proxy after `since` (an event index). */
  async function xtermAfter(vm: string, since: number, what: string): Promise<void> {
    const started = Date.now();
    await host.until(
      () => follow.events.slice(since).find((e) => showsWindow(e, vm, isXterm)),
      what,
      WINDOW_DEADLINE_MS,
    );
    process.stderr.write(`e2e templates: ${what} after ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  }

  async function sh(vm: string, script: string): Promise<string> {
    const result = await host.guestExec(vm, '/bin/sh', ['-c', script], [], 60_000);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    return result.stdout;
  }

  async function stop(vm: string): Promise<void> {
    const stopped = await host.cli(['stop', vm, '--timeout', '90', '--force'], 240_000);
    expect(stopped.code).toBe(0);
    expect(virsh('domstate', vm).trim()).toBe('shut off');
  }

  test('template import, then 20 app VMs on it: overlays, listed with their template', async () => {
    const imported = await host.importTemplate(template, image);
    expect({ code: imported.code, stderr: imported.stderr }).toEqual({ code: 0, stderr: '' });
    expect(fs.statSync(templateDisk()).mode & 0o777).toBe(0o444);
    for (const name of apps) {
      // The booted one also asks for a Flatpak the template lacks: pending until its guest reports it.
      const extra = name === booted ? ['--flatpak', PENDING_FLATPAK] : [];
      const created = await host.createOnTemplate(name, template, ['xterm'], extra);
      expect({ name, code: created.code, stderr: created.stderr }).toEqual({ name, code: 0, stderr: '' });
    }
    const listed = await host.cli(['list', '--json']);
    expect(listed.code).toBe(0);
    const vms = JSON.parse(listed.stdout) as Array<{ name: string; template?: string }>;
    expect(vms.filter((v) => v.template === template).map((v) => v.name)).toEqual(apps);
    const templates = JSON.parse((await host.cli(['template', 'list', '--json'])).stdout) as Array<{
      name: string;
      appVms: string[];
    }>;
    expect(templates.find((t) => t.name === template)?.appVms).toEqual(apps);
    // No copy of the base: each app VM's files together are a few MiB at most.
    for (const name of apps) {
      const own = fs.readdirSync(host.vmDir).filter((f) => f.startsWith(`${name}-`));
      expect(own.sort()).toEqual([`${name}-config.img`, `${name}-private.qcow2`, `${name}-root.qcow2`]);
      const bytes = own
        .map((f) => fs.statSync(path.join(host.vmDir, f)).blocks * 512)
        .reduce((a, b) => a + b);
      expect(bytes).toBeLessThan(50 * 1024 * 1024);
    }
  }, 900_000);

  test(
    'one app VM boots from the template; its xterm reaches the proxy',
    async () => {
      const since = follow.events.length;
      const started = await host.cli(['start', booted, '--no-viewer'], 120_000);
      expect({ code: started.code, stderr: started.stderr }).toEqual({ code: 0, stderr: '' });
      await xtermAfter(booted, since, `the xterm of ${booted} (first boot on the template)`);
      // The private volume is /home, formatted at this first boot from the image's own /home.
      expect(await sh(booted, 'findmnt -n -o SOURCE,FSTYPE /home')).toMatch(/^\/dev\/vd\w\s+ext4$/m);
      expect(await sh(booted, 'stat -c %U /home/user')).toBe('user\n');
    },
    WINDOW_DEADLINE_MS + 120_000,
  );

  test('a Flatpak the template lacks is pending in list until the guest records it installed', async () => {
    const pendingOf = async (): Promise<string[] | undefined> => {
      const listed = await host.cli(['list', '--json']);
      expect(listed.code).toBe(0);
      return (JSON.parse(listed.stdout) as Array<{ name: string; pendingFlatpaks: string[] }>).find(
        (v) => v.name === booted,
      )?.pendingFlatpaks;
    };
    // The config disk handed the list to the guest; this image has no flatpak, so the installer failed.
    expect(await sh(booted, 'cat /etc/vm-provisioner/flatpaks')).toBe(`${PENDING_FLATPAK}\n`);
    expect(await pendingOf()).toEqual([PENDING_FLATPAK]);
    // What vmp-install-flatpaks writes once `flatpak install --user` has succeeded.
    await sh(
      booted,
      `install -d -o user -g user /home/user/.local/share/vm-provisioner && echo ${PENDING_FLATPAK} > /home/user/.local/share/vm-provisioner/flatpaks-installed`,
    );
    expect(await pendingOf()).toEqual([]);
    expect(virsh('dumpxml', booted, '--inactive')).not.toContain('pending-flatpak');
  }, 120_000);

  test(
    'a cold restart: the file written to / is gone, the one in /home is kept',
    async () => {
      await sh(booted, 'echo root > /vmp-root-marker && echo home > /home/user/vmp-home-marker && sync');
      expect(await sh(booted, 'cat /vmp-root-marker /home/user/vmp-home-marker')).toBe('root\nhome\n');
      await stop(booted);
      const since = follow.events.length;
      const started = await host.cli(['start', booted, '--no-viewer'], 120_000);
      expect(started.code).toBe(0);
      await xtermAfter(booted, since, `the xterm of ${booted} after a cold restart`);
      expect(await sh(booted, 'test -e /vmp-root-marker && echo there || echo gone')).toBe('gone\n');
      expect(await sh(booted, 'cat /home/user/vmp-home-marker')).toBe('home\n');
    },
    WINDOW_DEADLINE_MS + 300_000,
  );

  test('template update is refused while an app VM runs, naming it', async () => {
    const refused = await host.cli(['template', 'update', template, '--', '/bin/true'], 60_000);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(`${booted} (running)`);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
  }, 120_000);

  test('template update runs a command in the template and seals it again; the app VM sees it at its next start', async () => {
    await stop(booted);
    const updated = await host.cli(
      ['template', 'update', template, '--', '/bin/sh', '-c', 'echo updated > /etc/vmp-template-marker'],
      900_000,
    );
    expect({ code: updated.code, stdout: updated.stdout }).toEqual({
      code: 0,
      stdout: expect.stringContaining('updated and sealed') as string,
    });
    expect(virsh('domstate', template).trim()).toBe('shut off');
    expect(fs.statSync(templateDisk()).mode & 0o777).toBe(0o444);

    const since = follow.events.length;
    const started = await host.cli(['start', booted, '--no-viewer'], 120_000);
    expect({ code: started.code, stderr: started.stderr }).toEqual({ code: 0, stderr: '' });
    await xtermAfter(booted, since, `the xterm of ${booted} after the template update`);
    expect(await sh(booted, 'cat /etc/vmp-template-marker')).toBe('updated\n');
    expect(await sh(booted, 'cat /home/user/vmp-home-marker')).toBe('home\n');
    await stop(booted);
  }, 1_500_000);

  test('template destroy is refused while in use; destroying all 20 leaves the template disk unchanged and nothing else', async () => {
    const refused = await host.cli(['template', 'destroy', template]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(apps[0]);
    const before = sha256(templateDisk());
    for (const name of apps) {
      const destroyed = await host.cli(['destroy', name, '--yes'], 120_000);
      expect({ name, code: destroyed.code }).toEqual({ name, code: 0 });
      expect(secretToolLookup('vm-provisioner', name)).toBeNull();
    }
    expect(sha256(templateDisk())).toBe(before);
    expect(
      fs
        .readdirSync(host.vmDir)
        .filter((f) => !f.startsWith(`${template}.`) && !f.startsWith(`${template}-`)),
    ).toEqual([]);
    for (const name of apps) expect(allDomainNames()).not.toContain(name);
    const gone = await host.cli(['template', 'destroy', template], 120_000);
    expect({ code: gone.code, stderr: gone.stderr }).toEqual({ code: 0, stderr: '' });
    expect(fs.readdirSync(host.vmDir)).toEqual([]);
    expect(secretToolLookup('vm-provisioner', template)).toBeNull();
  }, 600_000);
});
