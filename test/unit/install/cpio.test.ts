import { newcArchive } from '../../../src/install/cpio.js';
import { InputError } from '../../../src/util/errors.js';
import { expectGolden } from '../../support/golden.js';

/** A hexdump -C style rendering, so the golden file is reviewable byte by byte. */
function hexdump(buf: Buffer): string {
  const lines: string[] = [];
  for (let off = 0; off < buf.length; off += 16) {
    const row = buf.subarray(off, off + 16);
    const hex = [...row].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    const ascii = [...row].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${off.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  |${ascii}|`);
  }
  return lines.join('\n') + '\n';
}

describe('newc cpio writer', () => {
  test('archive bytes of a small kickstart match the golden file', () => {
    const archive = newcArchive([{ name: 'ks.cfg', data: 'text\nreboot\n', mode: 0o600 }]);
    expectGolden('install/ks-cpio.hexdump', hexdump(archive));
  });

  test('header fields: magic, mode 0100600, size, namesize, 4-byte alignment, trailer, 512-byte block', () => {
    const data = 'abcde'; // 5 bytes: needs 3 bytes of padding
    const archive = newcArchive([{ name: 'ks.cfg', data, mode: 0o600, mtime: 0x5f5e100 }]);
    const text = archive.toString('latin1');
    expect(text.slice(0, 6)).toBe('070701');
    const field = (i: number): number => parseInt(text.slice(6 + i * 8, 14 + i * 8), 16);
    expect(field(0)).toBe(1); // ino
    expect(field(1)).toBe(0o100600); // mode
    expect(field(2)).toBe(0); // uid root
    expect(field(3)).toBe(0); // gid root
    expect(field(4)).toBe(1); // nlink
    expect(field(5)).toBe(0x5f5e100); // mtime
    expect(field(6)).toBe(5); // filesize
    expect(field(11)).toBe('ks.cfg'.length + 1); // namesize counts the NUL
    // 110-byte header + 7-byte name = 117 -> data starts at 120.
    expect(text.slice(110, 117)).toBe('ks.cfg\0');
    expect(text.slice(117, 120)).toBe('\0\0\0');
    expect(text.slice(120, 125)).toBe(data);
    // The trailer starts at the next 4-byte boundary.
    expect(text.slice(128, 134)).toBe('070701');
    expect(text.slice(128 + 110, 128 + 110 + 11)).toBe('TRAILER!!!\0');
    expect(archive.length % 512).toBe(0);
    expect(archive.subarray(128 + 110 + 11).every((b) => b === 0)).toBe(true);
  });

  test('multi-byte UTF-8 content is sized in bytes, not characters', () => {
    const archive = newcArchive([{ name: 'ks.cfg', data: 'é€' }]);
    expect(parseInt(archive.toString('latin1', 6 + 6 * 8, 14 + 6 * 8), 16)).toBe(5);
  });

  test.each([
    ['/ks.cfg', 'relative path'],
    ['../ks.cfg', 'relative path'],
    ['a/./b', 'without . or ..'],
    ['ks cfg', 'relative path'],
    ['', 'relative path'],
  ])('refuses entry name %j', (name, rule) => {
    expect(() => newcArchive([{ name, data: 'x' }])).toThrow(InputError);
    expect(() => newcArchive([{ name, data: 'x' }])).toThrow(rule);
  });

  test('refuses a duplicate name and a mode outside 0..07777', () => {
    expect(() =>
      newcArchive([
        { name: 'a', data: '' },
        { name: 'a', data: '' },
      ]),
    ).toThrow(/appears twice/);
    expect(() => newcArchive([{ name: 'a', data: '', mode: 0o10000 }])).toThrow(
      /mode 4096 is not an integer in 0\.\.4095/,
    );
  });
});
