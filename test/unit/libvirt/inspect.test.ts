import { describeDomain } from '../../../src/libvirt/inspect.js';
import { renderDomainXml } from '../../../src/render/domain-xml.js';
import { testSpec } from '../../support/spec-fixture.js';

describe('describeDomain', () => {
  test('reads the files a VM owns besides its disks from <vmp:file>', () => {
    const xml = renderDomainXml(testSpec({ name: 'firefox' }), {
      diskPath: '/v/firefox.qcow2',
      configDiskPath: '/v/firefox-config.img',
      boot: { kernel: '/v/firefox-vmlinuz', initrd: '/v/firefox-initrd.img', cmdline: 'root=/dev/vda' },
      ownedFiles: ['/v/firefox-vmlinuz', '/v/firefox-initrd.img'],
      version: '0.1.0',
    });
    const description = describeDomain(xml);
    expect(description.ours).toBe(true);
    expect(description.files).toEqual(['/v/firefox-vmlinuz', '/v/firefox-initrd.img']);
    expect(description.disks).toEqual([
      { file: '/v/firefox.qcow2', readonly: false },
      { file: '/v/firefox-config.img', readonly: true, serial: 'vmp-config' },
    ]);
  });

  test('whatever prefix libvirt kept, and none without <vmp:file>', () => {
    const xml = renderDomainXml(testSpec(), { diskPath: '/v/d.qcow2', version: '0.1.0' })
      .replaceAll('vmp:', 'x:')
      .replace('xmlns:vmp=', 'xmlns:x=')
      .replace('</x:vm>', '<x:file>/v/k</x:file></x:vm>');
    expect(describeDomain(xml).files).toEqual(['/v/k']);
    expect(describeDomain(renderDomainXml(testSpec(), { diskPath: '/v/d', version: '1' })).files).toEqual([]);
  });

  test('a foreign <file> element outside our namespace is ignored', () => {
    const xml =
      '<domain><name>f</name><metadata><y:vm xmlns:y="https://example.invalid/"><y:file>/etc/passwd</y:file></y:vm></metadata></domain>';
    expect(describeDomain(xml)).toMatchObject({ ours: false, files: [] });
  });
});
