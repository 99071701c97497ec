import fs from 'node:fs';
import path from 'node:path';
import { create } from 'xmlbuilder2';
import { describeDomain } from '../../../src/libvirt/inspect.js';
import { parseXmlObject } from '../../../src/libvirt/xml-object.js';
import { testDriverXml } from '../../support/test-driver-file.js';

/**
 * The light XML reader that describeDomain uses must read every domain as the
 * DOM library it replaced did: the same object for every golden domain XML
 * (what vm-provisioner defines) and for libvirt-style output with entities,
 * comments and a declaration.
 */
const GOLDEN = 'test/golden/libvirt';
const goldenXml = fs.readdirSync(GOLDEN).map((file) => fs.readFileSync(path.join(GOLDEN, file), 'utf8'));

test.each(fs.readdirSync(GOLDEN))('%s reads as xmlbuilder2 reads it', (file) => {
  const xml = fs.readFileSync(path.join(GOLDEN, file), 'utf8');
  expect(parseXmlObject(xml)).toEqual(create(xml).toObject());
});

test('the golden files are there to compare', () => {
  expect(goldenXml.length).toBeGreaterThanOrEqual(10);
});

test('every domain of the test-driver fixture describes the same through both readers', () => {
  const domains = testDriverXml(4).match(/<domain[\s\S]*?<\/domain>/g)!;
  expect(domains).toHaveLength(4);
  for (const xml of domains) {
    expect(parseXmlObject(xml)).toEqual(create(xml).toObject());
    expect(describeDomain(xml).ours).toBe(true);
  }
});

test('shapes: attributes, text, empty and repeated elements, a declaration and comments', () => {
  const xml = `<?xml version="1.0"?>\n<!-- made by libvirt -->\n<r a="1" b='2'>\n  <e/>\n  <t>text</t>\n  <x k="v">t2</x>\n  <d>1</d><d>2</d><d k="3"/>\n  <blank> </blank>\n</r>\n`;
  const expected = {
    r: {
      '@a': '1',
      '@b': '2',
      e: {},
      t: 'text',
      x: { '@k': 'v', '#': 't2' },
      d: ['1', '2', { '@k': '3' }],
      blank: {},
    },
  };
  expect(parseXmlObject(xml)).toEqual(expected);
  // xmlbuilder2 keeps a comment outside the root as a key of its own; describeDomain never looks there.
  expect(create(xml.replace('<!-- made by libvirt -->', '')).toObject()).toEqual(expected);
});

test('entities and character references are decoded, in text and attributes', () => {
  expect(parseXmlObject(`<r a="&lt;&amp;&quot;&#65;"><t>x &gt; y &#x42; &apos;</t></r>`)).toEqual({
    r: { '@a': '<&"A', t: "x > y B '" },
  });
  expect(parseXmlObject('<r><![CDATA[<raw>]]></r>')).toEqual({ r: '<raw>' });
});

test.each([
  ['<r><a></r>', /does not match/],
  ['<r>', /is not closed/],
  ['<r/><s/>', /second root/],
  ['text', /outside the root|no root/],
  ['<r>&bogus;</r>', /unknown entity/],
  ['<r a=1/>', /malformed tag/],
  ['', /no root element/],
])('malformed %j is an error naming where', (xml, message) => {
  expect(() => parseXmlObject(xml)).toThrow(message);
});
