import { describeDomain } from '../../../src/libvirt/inspect.js';
import { renderDomainXml, WAKE_CHANNEL_NAME } from '../../../src/render/domain-xml.js';
import { managedSavePath, parseSnapshotXml, validateSnapshotName } from '../../../src/service/state.js';
import { testSpec } from '../../support/spec-fixture.js';

describe('saved-state and snapshot helpers', () => {
  test('an app VM has a wake channel beside its disk; an install phase and a template have none', () => {
    const xml = renderDomainXml(testSpec({ name: 'firefox' }), {
      diskPath: '/v/firefox.qcow2',
      version: '1',
    });
    expect(xml).toContain(`<target type="virtio" name="${WAKE_CHANNEL_NAME}"/>`);
    expect(describeDomain(xml).wakePipe).toBe('/v/firefox-wake');
    const template = renderDomainXml(testSpec({ name: 'base' }), {
      diskPath: '/v/base.qcow2',
      seal: { mtimeNs: '1', sizeBytes: 1, origin: 'import' },
      version: '1',
    });
    expect(describeDomain(template).wakePipe).toBeUndefined();
  });

  test('host devices and peer shared memory are what a save cannot keep', () => {
    const xml = renderDomainXml(testSpec({ name: 'firefox' }), {
      diskPath: '/v/f.qcow2',
      version: '1',
    }).replace(
      '</devices>',
      `<hostdev mode="subsystem" type="pci"/><shmem name="a"/><shmem name="b" role="master"/></devices>`,
    );
    expect(describeDomain(xml).unsaveableDevices).toEqual(['host pci device', "shared memory device 'a'"]);
  });

  test('parseSnapshotXml reads what libvirt 9.0 prints, leaving out disks it did not snapshot', () => {
    const info = parseSnapshotXml(`<domainsnapshot>
  <name>first</name>
  <description>before the update</description>
  <state>running</state>
  <creationTime>1796416928</creationTime>
  <memory snapshot='internal'/>
  <disks>
    <disk name='vda' snapshot='internal'/>
    <disk name='vdb' snapshot='no'/>
    <disk name='vdc' snapshot='internal'/>
  </disks>
  <domain type='qemu'><name>x</name></domain>
</domainsnapshot>`);
    expect(info).toEqual({
      name: 'first',
      createdAt: new Date(1796416928 * 1000).toISOString(),
      state: 'running',
      memory: true,
      disks: ['vda', 'vdc'],
      description: 'before the update',
    });
  });

  test('snapshot names are plain words', () => {
    expect(validateSnapshotName('before-update_2')).toBe('before-update_2');
    for (const bad of ['', 'a b', '../x', '-x', 'a.b', 'x'.repeat(65), 7]) {
      expect(() => validateSnapshotName(bad)).toThrow(/^snapshot name .* is invalid: use 1-64 letters/);
    }
  });

  test('managed-save images live where libvirt keeps them per URI', () => {
    expect(managedSavePath('qemu:///system', 'a')).toBe('/var/lib/libvirt/qemu/save/a.save');
    expect(managedSavePath('qemu:///session', 'a', { XDG_CONFIG_HOME: '/h/.c' })).toBe(
      '/h/.c/libvirt/qemu/save/a.save',
    );
    expect(managedSavePath('qemu+ssh://host/system', 'a')).toBeUndefined();
  });
});
