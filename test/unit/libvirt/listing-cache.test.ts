import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeListing, listingText } from '../../../src/libvirt/inspect.js';
import { openListingCache } from '../../../src/libvirt/listing-cache.js';
import { VMP_XML_NAMESPACE } from '../../../src/render/xml-names.js';
import { testDriverXml } from '../../support/test-driver-file.js';

/**
 * The cache of describeListing (src/libvirt/listing-cache.ts) gives what describeListing gives,
 * from a cache file or not, and never answers for a definition it has not seen as it is now.
 */
const GOLDEN = 'test/golden/libvirt';
const definitions = [
  ...fs.readdirSync(GOLDEN).map((file) => fs.readFileSync(path.join(GOLDEN, file), 'utf8')),
  ...testDriverXml(6).match(/<domain[\s\S]*?<\/domain>/g)!,
  "<domain type='kvm'><name>other</name><memory>1</memory></domain>",
  "<domain><name>other2</name><metadata><x:y xmlns:x='urn:x'>1</x:y></metadata><devices/></domain>",
];

let dir: string;
let file: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-listing-'));
  file = path.join(dir, 'cache', 'listing.json');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const entries = (): Record<string, unknown> =>
  (JSON.parse(fs.readFileSync(file, 'utf8')) as { entries: Record<string, unknown> }).entries;

test('described, cached and read back: the same as describeListing, every time', () => {
  const first = openListingCache(file);
  expect(definitions.map((xml) => first.describe(xml))).toEqual(definitions.map(describeListing));
  first.save();
  expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  // One entry per distinct text read (several golden definitions share theirs).
  const texts = new Set(definitions.map(listingText).filter((t) => t !== undefined));
  expect(Object.keys(entries()).sort()).toEqual([...texts].sort());
  expect(texts.size).toBeGreaterThan(8);
  const second = openListingCache(file);
  expect(definitions.map((xml) => second.describe(xml))).toEqual(definitions.map(describeListing));
  // Nothing new: not written again.
  const written = fs.statSync(file).mtimeMs;
  fs.utimesSync(file, 0, 0);
  second.save();
  expect(fs.statSync(file).mtimeMs).toBe(0);
  expect(written).toBeGreaterThan(0);
});

test('a cache that holds the text answers for it (so a hit is what the cache says)', () => {
  const xml = testDriverXml(1).match(/<domain[\s\S]*?<\/domain>/)![0];
  const first = openListingCache(file);
  first.describe(xml);
  first.save();
  const cached = JSON.parse(fs.readFileSync(file, 'utf8')) as { entries: Record<string, { apps: string[] }> };
  Object.values(cached.entries)[0]!.apps = ['served.from.Cache'];
  fs.writeFileSync(file, JSON.stringify(cached));
  expect(openListingCache(file).describe(xml).apps).toEqual(['served.from.Cache']);
});

test('a changed definition is described as it is now, and the cache keeps only what was listed', () => {
  const xml = testDriverXml(1).match(/<domain[\s\S]*?<\/domain>/)![0];
  const before = openListingCache(file);
  expect(before.describe(xml).apps).toEqual(['org.mozilla.firefox', 'xterm']);
  before.save();
  const changed = xml.replace('<vmp:app>xterm</vmp:app>', '<vmp:app>org.gnome.Calculator</vmp:app>');
  expect(changed).not.toBe(xml);
  const after = openListingCache(file);
  expect(after.describe(changed)).toEqual(describeListing(changed));
  expect(after.describe(changed).apps).toEqual(['org.mozilla.firefox', 'org.gnome.Calculator']);
  after.save();
  expect(Object.keys(entries())).toHaveLength(1);
  expect(Object.keys(entries())[0]).toContain('org.gnome.Calculator');
});

test.each([
  ['not JSON', () => '{"version":1,'],
  ['another version', (c: Record<string, unknown>) => JSON.stringify({ ...c, version: 2 })],
  ['other code', (c: Record<string, unknown>) => JSON.stringify({ ...c, code: 'elsewhere' })],
  [
    'an entry describeDomain could not return',
    (c: { entries: Record<string, Record<string, unknown>> }) => {
      const [key] = Object.keys(c.entries);
      return JSON.stringify({ ...c, entries: { ...c.entries, [key!]: { ...c.entries[key!], apps: [1] } } });
    },
  ],
  [
    'an entry with a key describeDomain does not give',
    (c: { entries: Record<string, Record<string, unknown>> }) => {
      const [key] = Object.keys(c.entries);
      return JSON.stringify({ ...c, entries: { [key!]: { ...c.entries[key!], spiceUri: 'spice://x:1' } } });
    },
  ],
])('a cache file with %s is ignored and rewritten', (_, corrupt) => {
  const first = openListingCache(file);
  definitions.forEach((xml) => first.describe(xml));
  first.save();
  // A wrong answer the cache would give, were it trusted: apps that no definition lists.
  const cached = JSON.parse(fs.readFileSync(file, 'utf8')) as { entries: Record<string, { apps: unknown }> };
  for (const entry of Object.values(cached.entries)) entry.apps = ['planted'];
  fs.writeFileSync(file, (corrupt as (c: unknown) => string)(cached));
  const second = openListingCache(file);
  expect(definitions.map((xml) => second.describe(xml))).toEqual(definitions.map(describeListing));
  second.save();
  expect(JSON.stringify(entries())).not.toContain('planted');
});

test('nothing is written for code changed within the last 2 s, or where the cache cannot be written', () => {
  const racy = openListingCache(file, () => Date.now() - 10 * 365 * 24 * 3600 * 1000);
  definitions.forEach((xml) => racy.describe(xml));
  racy.save();
  expect(fs.existsSync(file)).toBe(false);
  // A file where the cache directory would be.
  fs.writeFileSync(path.join(dir, 'cache'), '');
  const blocked = openListingCache(file);
  expect(definitions.map((xml) => blocked.describe(xml))).toEqual(definitions.map(describeListing));
  expect(() => blocked.save()).not.toThrow();
});

test('our namespace outside the metadata: described whole, as describeListing does', () => {
  const xml = `<domain><name>odd</name><description>${VMP_XML_NAMESPACE}</description><devices/></domain>`;
  const cache = openListingCache(file);
  expect(cache.describe(xml)).toEqual(describeListing(xml));
  cache.save();
  expect(entries()).toEqual({});
});
