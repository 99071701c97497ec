import { cloneNicXml } from '../../../src/disposable/clone.js';
import { cloneDomainXml, type CloneLayout } from '../../../src/disposable/clone-xml.js';
import { describeDomain } from '../../../src/libvirt/inspect.js';
import { renderDomainXml } from '../../../src/render/domain-xml.js';
import { defaultSpec } from '../../../src/spec/defaults.js';
import { SaveFormatError } from '../../../src/storage/save-file.js';
import { InputError } from '../../../src/util/errors.js';

/** A clone source as libvirt would embed it: an app VM on a template, plus what libvirt adds on its own. */
function sourceXml(network: 'user' | 'none' = 'none'): string {
  const spec = defaultSpec('tpl-ready', { vmDir: '/vms', networkMode: network, template: 'tpl' });
  return renderDomainXml(spec, {
    diskPath: '/vms/tpl-ready-root.qcow2',
    configDiskPath: '/vms/tpl-ready-config.img',
    template: { name: 'tpl', disk: '/vms/tpl.qcow2', privateDisk: '/vms/tpl-ready-private.qcow2' },
    consoleLog: '/logs/tpl-ready.console.log',
    version: '0.1.0',
    uuid: '11111111-2222-3333-4444-555555555555',
    agentSocket: '/tmp/vm-provisioner-agents-0/agent.sock',
  }).replace(
    `<target type="virtio" name="org.qemu.guest_agent.0"/>`,
    `<source mode="bind" path="/var/lib/libvirt/qemu/channel/target/domain-7-tpl-ready/org.qemu.guest_agent.0"/><target type="virtio" name="org.qemu.guest_agent.0"/>`,
  );
}

const LAYOUT: CloneLayout = {
  name: 'disp-1',
  uuid: 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee',
  root: { file: '/vms/disp-1-root.qcow2', backing: '/vms/tpl-ready-root.qcow2' },
  private: { file: '/vms/disp-1-private.qcow2', backing: '/vms/tpl-ready-private.qcow2' },
  templateDisk: '/vms/tpl.qcow2',
  wakeBase: '/vms/disp-1-wake',
  displaySocket: '/vms/disp-1-display.sock',
};

describe('the domain XML of a clone', () => {
  test('renames, re-backs the overlays without relabelling, moves the channels, drops NIC and console log', () => {
    const source = sourceXml('user');
    expect(source).toContain('domain-7-tpl-ready');
    const xml = cloneDomainXml(source, LAYOUT);
    const d = describeDomain(xml);
    expect(d.name).toBe('disp-1');
    expect(xml).toContain('<uuid>aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee</uuid>');
    expect(d.disks.map((disk) => disk.file)).toEqual([
      '/vms/disp-1-root.qcow2',
      '/vms/tpl-ready-config.img',
      '/vms/disp-1-private.qcow2',
    ]);
    expect(d.wakePipe).toBe('/vms/disp-1-wake');
    expect(xml).toContain('<source mode="bind" path="/vms/disp-1-display.sock"/>');
    // The agent's link goes to the proxy's one socket, as the source's did (docs/protocol.md, Transport).
    expect(xml).toContain(
      '<source mode="connect" path="/tmp/vm-provisioner-agents-0/agent.sock"><reconnect enabled="yes" timeout="1"/><seclabel model="dac" relabel="no"/></source><target type="virtio" name="org.vm-provisioner.agent.0"/>',
    );
    // Root: clone overlay -> frozen source root -> template disk, each backing file never relabelled.
    expect(xml).toContain(
      '<source file="/vms/disp-1-root.qcow2"/><backingStore type="file"><format type="qcow2"/><source file="/vms/tpl-ready-root.qcow2"><seclabel model="dac" relabel="no"/></source><backingStore type="file"><format type="qcow2"/><source file="/vms/tpl.qcow2"><seclabel model="dac" relabel="no"/></source><backingStore/></backingStore></backingStore><target dev="vda" bus="virtio"/>',
    );
    expect(xml).toContain(
      '<source file="/vms/disp-1-private.qcow2"/><backingStore type="file"><format type="qcow2"/><source file="/vms/tpl-ready-private.qcow2"><seclabel model="dac" relabel="no"/></source><backingStore/></backingStore><target dev="vdc"',
    );
    expect(xml).toContain(
      '<source file="/vms/tpl-ready-config.img"><seclabel model="dac" relabel="no"/></source>',
    );
    expect(xml).not.toContain('<interface');
    expect(xml).not.toContain('tpl-ready.console.log');
    expect(xml).not.toContain('domain-7-tpl-ready');
    expect(xml).not.toMatch(/tpl-ready(?!-(root|private|config))/);
  });

  test('refuses an XML that is not a clone source, so the caller boots instead', () => {
    const noWake = sourceXml().replace(/<channel type="pipe">[\s\S]*?<\/channel>/, '');
    expect(() => cloneDomainXml(noWake, LAYOUT)).toThrow(SaveFormatError);
    expect(() => cloneDomainXml(noWake, LAYOUT)).toThrow(/no wake device/);
    expect(() => cloneDomainXml('<network/>', LAYOUT)).toThrow(/no <domain>/);
    expect(() => cloneDomainXml('<domain', LAYOUT)).toThrow(/does not parse/);
  });

  test('refuses a bad clone name, UUID or path, naming it', () => {
    expect(() => cloneDomainXml(sourceXml(), { ...LAYOUT, name: '../x' })).toThrow(InputError);
    expect(() => cloneDomainXml(sourceXml(), { ...LAYOUT, uuid: 'x' })).toThrow(/clone UUID 'x'/);
    expect(() => cloneDomainXml(sourceXml(), { ...LAYOUT, wakeBase: 'rel/wake' })).toThrow(/'rel\/wake'/);
  });

  test('the hot-plugged NIC follows the network mode and carries the given MAC', () => {
    expect(cloneNicXml('user', '52:54:00:0a:0b:0c')).toBe(
      "<interface type='user'><mac address='52:54:00:0a:0b:0c'/><model type='virtio'/></interface>",
    );
    expect(cloneNicXml('default', '52:54:00:0a:0b:0c')).toContain("<source network='default'/>");
    expect(cloneNicXml('none', '52:54:00:0a:0b:0c')).toBeUndefined();
    expect(() => cloneNicXml('user', "52:54:00:0a:0b:0c'/>")).toThrow(/is not a 52:54:00 address/);
  });
});

describe('the domain XML of a disposable clone', () => {
  test('carries the disposable mark, its owner and its own files, as a cold-booted disposable does', () => {
    const xml = cloneDomainXml(sourceXml(), {
      ...LAYOUT,
      name: 'disp0042',
      disposable: {
        owner: { pid: 4242, startTicks: '777', bootId: '0b5e4a5e-1c1e-4d2e-9a3b-2c4d6e8f0a1b' },
        files: ['/vms/disp0042-restore.fifo', '/vms/disp0042-nic.xml'],
      },
    });
    const d = describeDomain(xml);
    expect(d).toMatchObject({
      name: 'disp0042',
      ours: true,
      role: 'disposable',
      disposableOwner: { pid: 4242, startTicks: '777', bootId: '0b5e4a5e-1c1e-4d2e-9a3b-2c4d6e8f0a1b' },
      template: { name: 'tpl', disk: '/vms/tpl.qcow2' },
      files: ['/vms/disp0042-restore.fifo', '/vms/disp0042-nic.xml'],
    });
    // Without the mark it stays what the source was: an app VM on the template.
    expect(describeDomain(cloneDomainXml(sourceXml(), LAYOUT)).role).toBeUndefined();
  });

  test('refuses an owner or a file that could not be written back safely', () => {
    const owner = { pid: 1, startTicks: null, bootId: null };
    expect(() =>
      cloneDomainXml(sourceXml(), { ...LAYOUT, disposable: { owner: { ...owner, pid: -1 }, files: [] } }),
    ).toThrow(InputError);
    expect(() =>
      cloneDomainXml(sourceXml(), { ...LAYOUT, disposable: { owner, files: ['relative/file'] } }),
    ).toThrow(InputError);
  });
});
