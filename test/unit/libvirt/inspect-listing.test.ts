import fs from 'node:fs';
import path from 'node:path';
import { describeDomain, describeListing, type DomainDescription } from '../../../src/libvirt/inspect.js';
import { VMP_XML_NAMESPACE } from '../../../src/render/xml-names.js';
import { testDriverXml } from '../../support/test-driver-file.js';

/**
 * describeListing reads a domain's name and metadata alone (what `list` shows); it must give
 * those fields exactly as describeDomain reads them from the whole definition.
 */
const GOLDEN = 'test/golden/libvirt';

function listed(d: DomainDescription): Partial<DomainDescription> {
  const { name, ours, version, phase, apps, files, role, seal, template, pendingFlatpaks } = d;
  return { name, ours, version, phase, apps, files, role, seal, template, pendingFlatpaks };
}

const cases: Array<[string, string]> = [
  ...fs
    .readdirSync(GOLDEN)
    .map((file): [string, string] => [file, fs.readFileSync(path.join(GOLDEN, file), 'utf8')]),
  ...testDriverXml(3)
    .match(/<domain[\s\S]*?<\/domain>/g)!
    .map((xml, i): [string, string] => [`test-driver domain ${i}`, xml]),
  ['a foreign domain without metadata', "<domain type='kvm'><name>other</name><memory>1</memory></domain>"],
  [
    'a foreign domain with metadata of its own',
    "<domain><name>other</name><metadata><x:y xmlns:x='urn:x'>1</x:y></metadata><devices/></domain>",
  ],
  [
    'ours, beside metadata whose CDATA holds a closing metadata tag',
    `<domain><name>a&amp;b</name><metadata><x:y xmlns:x='urn:x'><![CDATA[</metadata>]]></x:y>` +
      `<vmp:vm xmlns:vmp='${VMP_XML_NAMESPACE}' version='1' phase='installed'><vmp:app>xterm</vmp:app>` +
      `<vmp:pending-flatpak>org.a.B</vmp:pending-flatpak></vmp:vm></metadata>` +
      `<devices><disk type='file' device='disk'><source file='/d.qcow2'/></disk></devices></domain>`,
  ],
  [
    'our namespace outside the metadata element only',
    `<domain><name>odd</name><description>${VMP_XML_NAMESPACE}</description><devices/></domain>`,
  ],
];

test.each(cases)('%s: the listed fields read as describeDomain reads them', (_, xml) => {
  expect(listed(describeListing(xml))).toEqual(listed(describeDomain(xml)));
});

test('the cases cover ours, templates, app VMs on templates and foreign domains', () => {
  const all = cases.map(([, xml]) => describeListing(xml));
  expect(all.some((d) => d.ours && d.role === 'template')).toBe(true);
  expect(all.some((d) => d.ours && d.template !== undefined)).toBe(true);
  expect(all.some((d) => d.ours && d.pendingFlatpaks.length > 0)).toBe(true);
  expect(all.some((d) => !d.ours)).toBe(true);
  expect(all.find((d) => d.name === 'a&b')?.apps).toEqual(['xterm']);
});
