/**
 * A libvirt `test:///PATH` driver file holding N domains that carry our
 * metadata, as vm-provisioner defines them: a fixture for `list` at scale
 * (bench/cli-startup.ts and the CLI tests) without a real hypervisor. Every
 * third domain is shut off (the test driver starts the others), so `list`
 * takes both of its paths. Pure: returns the XML text.
 */
export const VMP_XML_NAMESPACE_FOR_FIXTURE = 'https://vm-provisioner.invalid/xmlns/1';

export function fixtureDomainName(prefix: string, index: number): string {
  return `${prefix}-${String(index).padStart(3, '0')}`;
}

export function testDriverXml(count: number, prefix = 'vmp-bench'): string {
  const domains: string[] = [];
  for (let i = 0; i < count; i++) {
    const name = fixtureDomainName(prefix, i);
    const uuid = `6d3c2a1e-0000-4000-8000-${String(i).padStart(12, '0')}`;
    const shutOff = i % 3 === 2;
    domains.push(`  <domain type='test'>
    <name>${name}</name>
    <uuid>${uuid}</uuid>
    <metadata>
      <vmp:vm xmlns:vmp='${VMP_XML_NAMESPACE_FOR_FIXTURE}' version='0.1.0' phase='installed'>
        <vmp:app>org.mozilla.firefox</vmp:app>
        <vmp:app>xterm</vmp:app>
      </vmp:vm>
    </metadata>
    <memory unit='MiB'>${1024 + (i % 4) * 512}</memory>
    <currentMemory unit='MiB'>${1024 + (i % 4) * 512}</currentMemory>
    <vcpu placement='static'>${1 + (i % 2)}</vcpu>
    <os><type arch='x86_64'>hvm</type></os>
    <devices>
      <disk type='file' device='disk'>
        <source file='/var/lib/vm-provisioner/${name}.qcow2'/>
        <target dev='vda' bus='virtio'/>
      </disk>
    </devices>${shutOff ? "\n    <test:runstate xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>5</test:runstate>" : ''}
  </domain>`);
  }
  return `<node>\n${domains.join('\n')}\n</node>\n`;
}
