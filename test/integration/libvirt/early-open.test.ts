import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openEarly, takeEarlyConnection } from '../../../src/libvirt/early-open.js';
import { openHypervisor } from '../../../src/libvirt/index.js';
import { testDriverXml } from '../../support/test-driver-file.js';

/**
 * A connection `list` opens before loading its modules (src/libvirt/early-open.ts) is the one
 * openHypervisor then uses, once, and fails as a connection openHypervisor opens itself fails.
 */
let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-early-'));
  fs.writeFileSync(path.join(dir, 'domains.xml'), testDriverXml(3, 'vmp-t-early'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('openHypervisor adopts the early connection for its URI, once', async () => {
  const uri = `test://${path.join(dir, 'domains.xml')}`;
  openEarly(uri, {});
  // Another URI does not take it.
  expect(takeEarlyConnection('test:///default')).toBeUndefined();
  const hv = await openHypervisor({ uri });
  try {
    expect(hv.backend).toBe('binding');
    expect(takeEarlyConnection(uri)).toBeUndefined();
    expect((await hv.listDomains()).sort()).toEqual([
      'vmp-t-early-000',
      'vmp-t-early-001',
      'vmp-t-early-002',
    ]);
  } finally {
    await hv.close();
  }
});

test('a file libvirt cannot read: the same error as without the early open', async () => {
  const uri = `test://${path.join(dir, 'missing.xml')}`;
  const plain = await openHypervisor({ uri }).then(
    () => 'opened',
    (err: Error) => `${err.name}: ${err.message}`,
  );
  openEarly(uri, {});
  const adopted = await openHypervisor({ uri }).then(
    () => 'opened',
    (err: Error) => `${err.name}: ${err.message}`,
  );
  expect(plain).toMatch(/^\w+: connect to test:\/\/\/.*missing\.xml/);
  expect(adopted).toBe(plain);
});
