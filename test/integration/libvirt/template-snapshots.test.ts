import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { AppVmHost } from '../../e2e/support/app-vm-host.js';
import { qemuImgCreate, removeDomain, virsh } from '../../support/libvirt-fixture.js';
import { describeWith, probeLibvirt, probeSecretService, type Probe } from '../../support/services.js';

/**
 * The reset of an app VM's root at a cold start and its snapshots must agree
 * (docs/snapshots.md): with the real CLI, libvirtd and its storage API, an
 * app VM on an imported template whose disk holds no OS (the firmware idles:
 * a cold start is all this needs), snapshots of its overlay, and the
 * template's sealed disk watched throughout.
 */
function probeAll(): Probe {
  if (process.getuid?.() !== 0) return { available: false, reason: 'needs root (qemu:///system storage)' };
  const libvirt = probeLibvirt('qemu:///system');
  return libvirt.available ? probeSecretService() : libvirt;
}

describeWith(probeAll(), 'libvirtd and a Secret Service')('snapshots of an app VM on a template', () => {
  const host = new AppVmHost();
  const template = AppVmHost.vmName('tpl');
  const vm = AppVmHost.vmName('app');
  const image = path.join(host.root, 'base.qcow2');
  const templateDisk = path.join(host.vmDir, `${template}.qcow2`);
  const root = path.join(host.vmDir, `${vm}-root.qcow2`);
  const common = ['--virt-type', 'qemu', '--network', 'none', '--memory', '2048', '--vcpus', '1'];

  afterAll(async () => {
    removeDomain(vm);
    removeDomain(template);
    await host.close();
  }, 120_000);

  const cli = async (args: string[]): Promise<string> => {
    const result = await host.cli(args, 120_000);
    if (result.code !== 0) throw new Error(`${args.join(' ')} failed (${result.code}): ${result.stderr}`);
    return result.stdout;
  };
  const templateStamp = (): string => {
    const s = fs.statSync(templateDisk);
    return `${s.mtimeMs} ${s.size} ${(s.mode & 0o777).toString(8)}`;
  };
  const snapshotsInRoot = (): string =>
    execFileSync('qemu-img', ['snapshot', '-l', '-U', root], { encoding: 'utf8' });

  test('a snapshot keeps the root across cold starts; without snapshots the root is made afresh', async () => {
    qemuImgCreate(image, '64M');
    await cli(['template', 'import', template, image, '--vm-dir', host.vmDir, ...common]);
    await cli(['create', '--template', template, '--name', vm, '--vm-dir', host.vmDir, ...common, '--yes']);
    const sealed = templateStamp();
    expect(sealed).toMatch(/ 444$/);

    // Stopped: a disk-only internal snapshot in the overlay and the private volume, not the config disk.
    const made = await cli(['snapshot', 'create', vm, 'clean']);
    expect(made).toContain(`${vm}: snapshot clean created (disks: vda, vdc)`);
    expect(snapshotsInRoot()).toContain('clean');

    const started = await cli(['start', vm, '--no-viewer']);
    expect(started).toContain(`${vm}: root kept, not reset from the template: the VM has snapshots`);
    expect(snapshotsInRoot()).toContain('clean');
    expect(virsh('snapshot-list', vm, '--name').trim()).toBe('clean');
    await cli(['stop', vm, '--no-save', '--timeout', '0', '--force']);

    // Revert to the disk-only snapshot of a stopped VM: no --force needed, it stays off.
    expect(await cli(['snapshot', 'revert', vm, 'clean'])).toContain('now shut off');
    await cli(['snapshot', 'delete', vm, 'clean']);
    expect(virsh('snapshot-list', vm, '--name').trim()).toBe('');
    expect(snapshotsInRoot()).not.toContain('clean');
    // A mark in the overlay that libvirt does not know: only an overlay made afresh loses it.
    execFileSync('qemu-img', ['snapshot', '-c', 'mark', root]);
    const fresh = await cli(['start', vm, '--no-viewer']);
    expect(fresh).not.toContain('root kept');
    expect(snapshotsInRoot()).not.toContain('mark');
    await cli(['stop', vm, '--no-save', '--timeout', '0', '--force']);

    expect(templateStamp()).toBe(sealed);
    await cli(['destroy', vm, '--yes']);
    await cli(['template', 'destroy', template]);
    expect(fs.readdirSync(host.vmDir)).toEqual([]);
  }, 300_000);
});
