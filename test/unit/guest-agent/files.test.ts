import { suffixed, defaultFileLocations } from '../../../guest-agent/src/files.js';

/** The pure parts of the agent's file handling; the rest runs against the real proxy in test/integration. */

describe('suffixed: the name of the n-th copy on a clash', () => {
  test.each([
    ['report.pdf', 0, 'report.pdf'],
    ['report.pdf', 1, 'report (1).pdf'],
    ['archive.tar.gz', 2, 'archive.tar (2).gz'],
    ['README', 3, 'README (3)'],
    ['a.b.', 1, 'a.b (1).'],
  ])('%j, copy %i: %j', (name, n, expected) => {
    expect(suffixed(name, n)).toBe(expected);
  });

  test('stays within 255 bytes, cutting the stem by whole characters', () => {
    const long = `${'é'.repeat(125)}.txt`; // 254 bytes
    const out = suffixed(long, 12);
    expect(Buffer.byteLength(out, 'utf8')).toBeLessThanOrEqual(255);
    expect(out.endsWith(' (12).txt')).toBe(true);
    expect(out).not.toContain('\ufffd');
  });
});

test('open copies go under XDG_RUNTIME_DIR, else under ~/.cache', () => {
  expect(defaultFileLocations({ HOME: '/home/u', XDG_RUNTIME_DIR: '/run/user/1000' })).toEqual({
    home: '/home/u',
    openRoot: '/run/user/1000/vm-provisioner/open',
  });
  expect(defaultFileLocations({ HOME: '/home/u' }).openRoot).toBe('/home/u/.cache/vm-provisioner/open');
});
