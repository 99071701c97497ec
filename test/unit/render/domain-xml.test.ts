import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { renderDomainXml, VMP_XML_NAMESPACE, type DomainXmlOptions } from '../../../src/render/domain-xml.js';
import type { VmSpec } from '../../../src/spec/types.js';
import { InputError } from '../../../src/util/errors.js';
import { expectGolden } from '../../support/golden.js';
import { testSpec } from '../../support/spec-fixture.js';

const base: DomainXmlOptions = {
  diskPath: '/var/lib/vm-provisioner/firefox/firefox.qcow2',
  consoleLog: '/home/user/.local/state/vm-provisioner/logs/firefox-vm-console.log',
  version: '0.1.0',
};

const variants: Array<[string, Partial<VmSpec>, Partial<DomainXmlOptions>]> = [
  ['default-kvm-x86_64', {}, {}],
  ['qemu-tcg', { virtType: 'qemu', networkMode: 'user' }, {}],
  ['aarch64', { arch: 'aarch64' }, {}],
  ['aarch64-qemu', { arch: 'aarch64', virtType: 'qemu' }, {}],
  ['qxl-audio-usb', { graphicsBackend: 'qxl', enableAudio: true, enableUsbPassthrough: true }, {}],
  ['network-none-no-apps', { networkMode: 'none', flatpakPackages: [], autoLaunchApps: [] }, {}],
  ['import-config-disk', {}, { configDiskPath: '/var/lib/vm-provisioner/firefox/config.img' }],
  [
    'import-direct-boot',
    { virtType: 'qemu', networkMode: 'user' },
    {
      configDiskPath: '/var/lib/vm-provisioner/firefox/firefox-config.img',
      boot: {
        kernel: '/var/lib/vm-provisioner/firefox/firefox-vmlinuz',
        initrd: '/var/lib/vm-provisioner/firefox/firefox-initrd.img',
        cmdline: 'root=/dev/vda rw console=ttyS0',
      },
      ownedFiles: [
        '/var/lib/vm-provisioner/firefox/firefox-vmlinuz',
        '/var/lib/vm-provisioner/firefox/firefox-initrd.img',
      ],
    },
  ],
  [
    'app-on-template',
    { virtType: 'qemu', networkMode: 'user', template: 'debian-base' },
    {
      diskPath: '/var/lib/vm-provisioner/firefox/firefox-root.qcow2',
      configDiskPath: '/var/lib/vm-provisioner/firefox/firefox-config.img',
      template: {
        name: 'debian-base',
        disk: '/var/lib/vm-provisioner/debian-base.qcow2',
        privateDisk: '/var/lib/vm-provisioner/firefox/firefox-private.qcow2',
      },
      boot: {
        kernel: '/var/lib/vm-provisioner/debian-base-vmlinuz',
        initrd: '/var/lib/vm-provisioner/debian-base-initrd.img',
        cmdline: 'root=/dev/vda rw console=ttyS0',
      },
      pendingFlatpaks: ['org.mozilla.firefox'],
      agentSocket: '/tmp/vm-provisioner-agents-1000/agent.sock',
    },
  ],
  [
    'template-sealed',
    { virtType: 'qemu', networkMode: 'user', flatpakPackages: [], autoLaunchApps: [] },
    {
      diskPath: '/var/lib/vm-provisioner/debian-base.qcow2',
      configDiskPath: '/var/lib/vm-provisioner/debian-base-config.img',
      seal: { mtimeNs: '1796416023764538841', sizeBytes: 1141374976, origin: 'import' },
      // A template's console is not logged: it is booted only by template update.
      consoleLog: undefined,
    },
  ],
  [
    'install-phase',
    { virtType: 'qemu' },
    {
      install: {
        kernel: '/var/cache/vm-provisioner/f43/vmlinuz',
        initrd: '/var/cache/vm-provisioner/f43/initrd.img',
        cmdline: 'inst.ks=file:/ks.cfg console=ttyS0 inst.text',
        consoleLog: '/var/lib/vm-provisioner/firefox/install-console.log',
      },
    },
  ],
];

function validate(xml: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-virt-xml-'));
  const file = path.join(dir, 'domain.xml');
  fs.writeFileSync(file, xml);
  try {
    const result = spawnSync('virt-xml-validate', [file, 'domain'], { encoding: 'utf8', timeout: 20_000 });
    // It reports on stderr; the exit status is what counts.
    return `${result.status} ${result.stdout}${result.stderr}`;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('renderDomainXml', () => {
  test.each(variants)(
    "%s matches its golden file and validates against libvirt's schema",
    (name, spec, opts) => {
      const xml = renderDomainXml(testSpec(spec), { ...base, ...opts });
      expectGolden(`libvirt/${name}.xml`, xml);
      expect(validate(xml)).toMatch(/^0 .*validates/s);
    },
  );

  test('marks the domain as ours with the version in our namespace', () => {
    const xml = renderDomainXml(testSpec(), base);
    expect(xml).toContain(`<vmp:vm xmlns:vmp="${VMP_XML_NAMESPACE}" version="0.1.0" phase="installed">`);
    expect(xml).toContain('<vmp:app>org.mozilla.firefox</vmp:app>');
  });

  test('escapes markup in values that reach the document', () => {
    const xml = renderDomainXml(testSpec({ autoLaunchApps: ['a </vmp:app><evil/> & "b"'] }), {
      ...base,
      diskPath: "/tmp/o'<d>&.qcow2",
    });
    expect(xml).not.toContain('<evil/>');
    expect(xml).toContain('&lt;/vmp:app&gt;&lt;evil/&gt; &amp;');
    expect(xml).toContain('file="/tmp/o\'&lt;d&gt;&amp;.qcow2"');
    expect(validate(xml)).toMatch(/^0 .*validates/s);
  });

  test.each([
    [{ name: 'bad name' }, {}, /VM name 'bad name' is invalid/],
    [{ name: '-x' }, {}, /VM name '-x' is invalid/],
    [{ memoryMb: 12.5 }, {}, /memory 12.5 MiB is invalid/],
    [{ vcpus: 0 }, {}, /vcpus 0 is invalid/],
    [{}, { diskPath: 'relative.qcow2' }, /disk path 'relative.qcow2' is invalid/],
    [{}, { configDiskPath: '/x\ny' }, /config disk path/],
    [{ autoLaunchApps: ['a\u0007'] }, {}, /app .* is invalid/],
    [
      {},
      { template: { name: 'bad name', disk: '/t.qcow2', privateDisk: '/p.qcow2' } },
      /template name 'bad name' is invalid/,
    ],
    [{}, { template: { name: 't', disk: 't.qcow2', privateDisk: '/p.qcow2' } }, /template disk path/],
    [{}, { pendingFlatpaks: ['firefox'] }, /pending Flatpak 'firefox' is invalid/],
    [{}, { seal: { mtimeNs: '12a', sizeBytes: 1, origin: 'import' } }, /template seal/],
    [
      {},
      {
        seal: { mtimeNs: '1', sizeBytes: 1, origin: 'import' },
        template: { name: 't', disk: '/t.qcow2', privateDisk: '/p.qcow2' },
      },
      /not built on another template/,
    ],
  ] as Array<[Partial<VmSpec>, Partial<DomainXmlOptions>, RegExp]>)(
    'rejects bad input with a one-line InputError (%p %p)',
    (spec, opts, message) => {
      const run = (): string => renderDomainXml(testSpec(spec), { ...base, ...opts });
      expect(run).toThrow(InputError);
      expect(run).toThrow(message);
    },
  );

  test('rejects a kernel command line with control characters', () => {
    const install = { kernel: '/k', initrd: '/i', cmdline: 'a\nb', consoleLog: '/l' };
    expect(() => renderDomainXml(testSpec(), { ...base, install })).toThrow(/kernel command line/);
    const boot = { kernel: '/k', initrd: '/i', cmdline: 'a\u0007b' };
    expect(() => renderDomainXml(testSpec(), { ...base, boot })).toThrow(/kernel command line/);
  });

  test('an installed VM with direct kernel boot restarts on reboot; the install phase powers off', () => {
    const boot = { kernel: '/v/k', initrd: '/v/i', cmdline: 'root=/dev/vda' };
    const installed = renderDomainXml(testSpec(), { ...base, boot });
    expect(installed).toContain('<on_reboot>restart</on_reboot>');
    expect(installed).toContain('phase="installed"');
    expect(installed).toContain('<kernel>/v/k</kernel>');
    expect(installed).not.toContain('<boot dev="hd"/>');
    const install = { ...boot, consoleLog: '/v/log' };
    expect(renderDomainXml(testSpec(), { ...base, install })).toContain('<on_reboot>destroy</on_reboot>');
  });

  test('direct boot and install boot together, or a relative owned file, are refused', () => {
    const boot = { kernel: '/v/k', initrd: '/v/i', cmdline: '' };
    const install = { ...boot, consoleLog: '/v/log' };
    expect(() => renderDomainXml(testSpec(), { ...base, boot, install })).toThrow(/exclude each other/);
    expect(() => renderDomainXml(testSpec(), { ...base, ownedFiles: ['k'] })).toThrow(
      /owned file path 'k' is invalid/,
    );
  });
});
