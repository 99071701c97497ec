import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { VMP_XML_NAMESPACE } from '../../src/render/domain-xml.js';
import { allDomainNames, removeDomain, virsh } from '../support/libvirt-fixture.js';
import { describeWith, probeLibvirt } from '../support/services.js';
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
 * Saved state, pause and snapshots on the real end-to-end guest, one boot
 * shared by every test (CI's time budget): the VM comes back from a managed
 * save, a snapshot revert with memory and a pause with its agent reconnected
 * at once, told by the host through the wake channel, not at a heartbeat.
 */

const probe = probeE2e();
/**
 * The proxy's heartbeat interval here: an agent that only noticed its dead
 * link at a heartbeat would take 15-30 s (it sends one after half an interval
 * of silence, checking every quarter), so a reconnect well inside that was
 * driven by the wake channel.
 */
const HEARTBEAT_MS = 60_000;
const RECONNECT_WITHIN_MS = 10_000;
const SAVE_DIR = '/var/lib/libvirt/qemu/save';
const SNAPSHOT_DIR = '/var/lib/libvirt/qemu/snapshot';

describeWith(probe, 'end-to-end saved state')('saved state, pause and snapshots on a real guest', () => {
  const name = AppVmHost.vmName('state');
  let image: GuestImage;
  let host: AppVmHost;
  let follow: { events: ProxyEventLine[]; stop: () => void };

  beforeAll(async () => {
    image = await buildGuestImage();
    host = new AppVmHost();
    await host.startProxy(['--heartbeat-interval', String(HEARTBEAT_MS)]);
    follow = host.follow();
  }, 40 * 60_000);

  afterAll(async () => {
    follow?.stop();
    if (allDomainNames().includes(name)) removeDomain(name);
    await host?.close();
  }, 120_000);

  /** The xterm reported by a new connection of the agent after `t0`: an agent-connected, then its window list. */
  async function reconnectedAfter(t0: number, what: string): Promise<number> {
    const list = await host.until(
      () =>
        follow.events.find(
          (e) => e.receivedAt >= t0 && e.type === 'window-list' && showsWindow(e, name, isXterm),
        ),
      `${what}: the agent's window list with the xterm`,
      120_000,
    );
    expect(
      follow.events.find((e) => e.vm === name && e.type === 'agent-connected' && e.receivedAt >= t0),
    ).toBeDefined();
    const ms = list.receivedAt - t0;
    process.stderr.write(`e2e: ${what}: the xterm at the proxy ${ms} ms later\n`);
    return ms;
  }

  /** How many of the agent's sessions came back on a ticket, by the proxy's log. */
  function resumesOnTicket(): number {
    return host.proxyOutput
      .split('\n')
      .filter((l) => l.includes(`agent ${name} connected from virtio-serial (resumed on its ticket)`)).length;
  }

  async function sh(script: string): Promise<{ code: number; stdout: string }> {
    return host.guestExec(name, '/bin/sh', ['-c', script]);
  }

  test('create --on-stop save; start boots it and the agent lists the xterm', async () => {
    const created = await host.createVm(name, image, ['xterm'], { extraArgs: ['--on-stop', 'save'] });
    expect({ code: created.code, stderr: created.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
    const t0 = Date.now();
    const started = await host.cli(['start', name, '--no-viewer'], 120_000);
    expect(started.code).toBe(0);
    expect(started.stdout).toContain(`${name}: started`);
    await host.until(
      () => follow.events.find((e) => e.receivedAt >= t0 && showsWindow(e, name, isXterm)),
      'the xterm after a cold boot',
      240_000,
    );
    const listed = JSON.parse((await host.cli(['list', '--json'])).stdout) as Array<Record<string, unknown>>;
    expect(listed.find((vm) => vm.name === name)).toMatchObject({ state: 'running', onStop: 'save' });
  }, 400_000);

  test('stop saves by default (on_stop), list shows it saved with its size, start resumes it and the agent is back at once', async () => {
    const stopped = await host.cli(['stop', name], 300_000);
    expect(stopped.code).toBe(0);
    expect(stopped.stdout).toMatch(new RegExp(`${name}: saved in [\\d.]+ s, \\d+ MiB; start resumes it`));
    expect(virsh('domstate', name).trim()).toBe('shut off');
    const saveFile = path.join(SAVE_DIR, `${name}.save`);
    const size = fs.statSync(saveFile).size;
    const listed = JSON.parse((await host.cli(['list', '--json'])).stdout) as Array<Record<string, unknown>>;
    expect(listed.find((vm) => vm.name === name)).toMatchObject({ state: 'saved', savedBytes: size });
    expect((await host.cli(['list'])).stdout).toMatch(new RegExp(`${name}\\s+saved \\(\\d+ MiB\\)`));

    const t0 = Date.now();
    const started = await host.cli(['start', name, '--no-viewer'], 120_000);
    expect(started.code).toBe(0);
    expect(started.stdout).toContain(`${name}: resumed from saved state`);
    expect(started.stdout).toMatch(/spice:\/\/127\.0\.0\.1:\d+/);
    const ms = await reconnectedAfter(t0, 'start from saved state');
    expect(ms).toBeLessThan(RECONNECT_WITHIN_MS);
    // Back on the ticket its last session was given: no challenge on the way (docs/protocol.md, "Resume").
    expect(resumesOnTicket()).toBe(1);
    expect(fs.existsSync(saveFile)).toBe(false);
  }, 400_000);

  test('a memory snapshot, a file after it, revert: the file is gone, the earlier one is there, the agent is back at once', async () => {
    expect((await sh('echo before > /var/tmp/vmp-before && sync')).code).toBe(0);
    const made = await host.cli(['snapshot', 'create', name, 'first', '--memory'], 300_000);
    expect({ code: made.code, stderr: made.stderr }).toEqual({ code: 0, stderr: '' });
    const listed = JSON.parse((await host.cli(['snapshot', 'list', name, '--json'])).stdout) as Array<{
      name: string;
      memory: boolean;
      disks: string[];
    }>;
    const fromVirsh = virsh('snapshot-list', name, '--name')
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    expect(listed.map((s) => s.name).sort()).toEqual(fromVirsh.sort());
    expect(listed).toEqual([expect.objectContaining({ name: 'first', memory: true, disks: ['vda'] })]);
    expect((await sh('echo after > /var/tmp/vmp-after && sync')).code).toBe(0);

    const refused = await host.cli(['snapshot', 'revert', name, 'first']);
    expect(refused.code).toBe(2);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(
      /is running: reverting to 'first' throws its current state away; pass --force/,
    );

    const before = resumesOnTicket();
    const t0 = Date.now();
    const reverted = await host.cli(['snapshot', 'revert', name, 'first', '--force'], 300_000);
    expect({ code: reverted.code, stderr: reverted.stderr }).toEqual({ code: 0, stderr: '' });
    expect(reverted.stdout).toContain('now running');
    // Loading the snapshot's memory is the slow part; the agent's part starts when the CLI returns.
    const returned = Date.now();
    process.stderr.write(`e2e: snapshot revert --force took ${returned - t0} ms\n`);
    const ms = await reconnectedAfter(t0, 'snapshot revert with memory');
    expect(ms - (returned - t0)).toBeLessThan(RECONNECT_WITHIN_MS);
    // The snapshot's ticket, pinned at create and re-armed by the revert (docs/protocol.md, "Resume: tickets").
    await host.until(() => resumesOnTicket() > before || undefined, 'the revert on its ticket', 10_000);
    const files = await sh('ls /var/tmp');
    expect(files.stdout).toContain('vmp-before');
    expect(files.stdout).not.toContain('vmp-after');
  }, 600_000);

  test('pause freezes it, resume wakes the agent at once', async () => {
    const before = resumesOnTicket();
    const paused = await host.cli(['pause', name]);
    expect(paused).toMatchObject({ code: 0, stdout: `${name}: paused\n` });
    expect(virsh('domstate', name).trim()).toBe('paused');
    const t0 = Date.now();
    const resumed = await host.cli(['resume', name]);
    expect(resumed).toMatchObject({ code: 0, stdout: `${name}: resumed\n` });
    expect(virsh('domstate', name).trim()).toBe('running');
    expect(await reconnectedAfter(t0, 'resume')).toBeLessThan(RECONNECT_WITHIN_MS);
    await host.until(() => resumesOnTicket() > before || undefined, 'the resume on its ticket', 10_000);
  }, 300_000);

  test('bad input: unknown snapshot, a name that is not a plain word, --memory on a stopped VM', async () => {
    for (const [args, message] of [
      [['snapshot', 'revert', name, 'nope', '--force'], `VM '${name}' has no snapshot named 'nope'`],
      [['snapshot', 'delete', name, 'nope'], `VM '${name}' has no snapshot named 'nope'`],
      [['snapshot', 'create', name, 'two words', '--memory'], 'snapshot name "two words" is invalid'],
      [['snapshot', 'create', name, '../etc', '--memory'], 'snapshot name "../etc" is invalid'],
      [['snapshot', 'create', name, 'disk-only'], 'a snapshot of a running VM holds its memory too'],
    ] as const) {
      const result = await host.cli([...args]);
      expect({ args, code: result.code }).toEqual({ args, code: 2 });
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toContain(message);
    }
    expect(virsh('snapshot-list', name, '--name').trim()).toBe('first');
  }, 120_000);

  test('destroy of a saved VM with snapshots leaves no saved state, no snapshot metadata and no file', async () => {
    const saved = await host.cli(['stop', name, '--save'], 300_000);
    expect(saved.code).toBe(0);
    expect(fs.existsSync(path.join(SAVE_DIR, `${name}.save`))).toBe(true);
    expect(fs.existsSync(path.join(SNAPSHOT_DIR, name))).toBe(true);
    const destroyed = await host.cli(['destroy', name, '--yes'], 120_000);
    expect(destroyed.code).toBe(0);
    expect(allDomainNames()).not.toContain(name);
    expect(fs.existsSync(path.join(SAVE_DIR, `${name}.save`))).toBe(false);
    expect(fs.existsSync(path.join(SNAPSHOT_DIR, name))).toBe(false);
    expect(fs.readdirSync(host.vmDir)).toEqual([]);
  }, 300_000);
});

describeWith(probeLibvirt('qemu:///system'), 'libvirtd')(
  'stop --save of a VM with a device that cannot be saved',
  () => {
    const name = AppVmHost.vmName('shmem');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-shmem-'));
    let host: AppVmHost;

    afterAll(async () => {
      removeDomain(name);
      fs.rmSync(dir, { recursive: true, force: true });
      await host?.close();
    });

    test('is refused with one line naming the device, exit 2, and the VM keeps running', async () => {
      host = new AppVmHost();
      // No guest OS: the firmware finds nothing to boot and idles, which is all a save needs.
      const xml = `<domain type='qemu'>
  <name>${name}</name>
  <metadata><vmp:vm xmlns:vmp='${VMP_XML_NAMESPACE}' version='test' phase='installed'/></metadata>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices>
    <shmem name='${name}'><model type='ivshmem-plain'/><size unit='M'>1</size></shmem>
    <graphics type='spice' autoport='yes' listen='127.0.0.1'/>
  </devices>
</domain>`;
      fs.writeFileSync(path.join(dir, 'domain.xml'), xml);
      virsh('define', path.join(dir, 'domain.xml'));
      virsh('start', name);
      const result = await host.cli(['stop', name, '--save'], 120_000);
      expect(result.code).toBe(2);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toContain(
        `cannot save VM '${name}' (it keeps running): its shared memory device '${name}' cannot be saved with its memory; stop it with stop --no-save`,
      );
      expect(virsh('domstate', name).trim()).toBe('running');
      expect(virsh('dominfo', name)).toMatch(/Managed save:\s+no/);
    }, 180_000);
  },
);
