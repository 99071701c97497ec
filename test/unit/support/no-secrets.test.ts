import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  assertNoSecretsInString,
  assertNoSecretsInTree,
  findSecretsInTree,
} from '../../support/no-secrets.js';

const SECRET = 'Kx7hT2mPq9RwZ4vN8cYb3sLd';
const OTHER = '0123456789abcdef0123456789abcdef';

describe('no-secrets helper', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-sec-nosecrets-'));
    fs.mkdirSync(path.join(dir, 'sub'));
    fs.writeFileSync(path.join(dir, 'a.toml'), 'name = "vm"\nmemory_mb = 4096\n');
    fs.writeFileSync(path.join(dir, 'sub', 'ks.cfg'), 'user --name=user --iscrypted --password=$6$x$y\n');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('a clean tree and string pass', () => {
    expect(findSecretsInTree(dir, [SECRET, OTHER])).toEqual([]);
    expect(() => assertNoSecretsInTree(dir, [SECRET, OTHER])).not.toThrow();
    expect(() => assertNoSecretsInString('nothing here', [SECRET])).not.toThrow();
  });

  test('a secret in a nested file is found with its file and line, without printing it', () => {
    fs.writeFileSync(path.join(dir, 'sub', 'ks.cfg'), `line one\nrootpw ${SECRET}\n`);
    const file = path.join(dir, 'sub', 'ks.cfg');
    expect(findSecretsInTree(dir, [OTHER, SECRET])).toEqual([
      { secret: 'Kx…(24 chars)', where: `${file}:2` },
    ]);
    let message = '';
    try {
      assertNoSecretsInTree(dir, [SECRET]);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain(`${file}:2`);
    expect(message).not.toContain(SECRET);
  });

  test('binary files, file names and symlink targets are searched', () => {
    fs.writeFileSync(
      path.join(dir, 'blob.bin'),
      Buffer.concat([Buffer.from([0, 1, 2, 255]), Buffer.from(OTHER)]),
    );
    fs.writeFileSync(path.join(dir, `${SECRET}.txt`), 'x');
    fs.symlinkSync(`/nonexistent/${SECRET}`, path.join(dir, 'link'));
    const wheres = findSecretsInTree(dir, [SECRET, OTHER]).map((f) => f.where);
    expect(wheres).toEqual([
      `name of ${path.join(dir, `${SECRET}.txt`)}`,
      `${path.join(dir, 'blob.bin')}:1`,
      `link target of ${path.join(dir, 'link')}`,
    ]);
  });

  test('a secret in a string is reported under its label', () => {
    expect(() => assertNoSecretsInString(`a\nb ${SECRET}`, [SECRET], 'kickstart')).toThrow(
      'secret found in kickstart:\n  Kx…(24 chars) in kickstart:2',
    );
  });

  test('misuse fails loudly instead of passing vacuously', () => {
    expect(() => assertNoSecretsInTree(dir, [])).toThrow(/at least one secret/);
    expect(() => assertNoSecretsInTree(dir, ['short'])).toThrow(/shorter than 8/);
    expect(() => assertNoSecretsInTree(path.join(dir, 'missing'), [SECRET])).toThrow(/does not exist/);
  });
});
