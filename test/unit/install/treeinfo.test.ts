import { parseTreeInfo } from '../../../src/install/treeinfo.js';
import { fedoraTreeinfo, sha256 } from '../../support/fake-tree/tree.js';

describe('.treeinfo parser', () => {
  const kernel = Buffer.from('kernel');
  const initrd = Buffer.from('initrd');

  test('reads the arch, release, image paths and sha256 sums of a Fedora treeinfo', () => {
    const info = parseTreeInfo(fedoraTreeinfo(kernel, initrd), 'x86_64');
    expect(info).toEqual({
      arch: 'x86_64',
      release: '41',
      kernel: { path: 'images/pxeboot/vmlinuz', sha256: sha256(kernel) },
      initrd: { path: 'images/pxeboot/initrd.img', sha256: sha256(initrd) },
    });
  });

  test('uses the [images-<arch>] paths when they differ from the defaults', () => {
    const text = fedoraTreeinfo(kernel, initrd, 'aarch64')
      .replace('kernel = images/pxeboot/vmlinuz', 'kernel = images/pxeboot/vmlinuz-alt')
      .replace('images/pxeboot/vmlinuz = sha256:', 'images/pxeboot/vmlinuz-alt = sha256:');
    expect(parseTreeInfo(text, 'aarch64').kernel.path).toBe('images/pxeboot/vmlinuz-alt');
  });

  test('refuses a tree for another arch, a missing or non-sha256 checksum, and an escaping path', () => {
    const text = fedoraTreeinfo(kernel, initrd);
    expect(() => parseTreeInfo(text, 'aarch64')).toThrow('install tree is for arch x86_64, not aarch64');
    expect(() => parseTreeInfo(text.replace(/^images\/pxeboot\/initrd\.img = .*$/m, ''), 'x86_64')).toThrow(
      '.treeinfo publishes no checksum for images/pxeboot/initrd.img',
    );
    expect(() => parseTreeInfo(text.replace(/initrd\.img = sha256:/, 'initrd.img = md5:'), 'x86_64')).toThrow(
      /not sha256:<64 hex digits>/,
    );
    expect(() =>
      parseTreeInfo(
        text.replace('initrd = images/pxeboot/initrd.img', 'initrd = ../../etc/shadow'),
        'x86_64',
      ),
    ).toThrow(/initrd path "..\/..\/etc\/shadow" must be a relative path/);
    expect(() => parseTreeInfo('garbage line\n', 'x86_64')).toThrow(
      /line 1 is neither \[section\] nor key = value/,
    );
  });
});
