import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { kickstartArchive, removeInstallBoot, stageInstallBoot } from '../../../src/install/initrd.js';
import { describeWith, type Probe } from '../../support/services.js';

function probeCpio(): Probe {
  try {
    execFileSync('cpio', ['--version'], { stdio: 'ignore', timeout: 5000 });
    return { available: true, reason: '' };
  } catch {
    return { available: false, reason: 'cpio(1) not installed (Debian package cpio)' };
  }
}

const KICKSTART =
  '# vmp kickstart\ntext\n%post\necho "VMP-INSTALL-OK vmp-t-inst-x" > /dev/ttyS0\n%end\nrootpw --iscrypted $6$salt$hash\n';

describeWith(probeCpio(), "Debian's cpio")('kickstart injection checked with cpio(1)', () => {
  let parent: string;
  beforeEach(() => {
    parent = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-inst-initrd-'));
  });
  afterEach(() => fs.rmSync(parent, { recursive: true, force: true }));

  const cpio = (args: string[], input: Buffer, cwd?: string): string =>
    execFileSync('cpio', args, {
      input,
      cwd,
      encoding: 'utf8',
      timeout: 10_000,
      stdio: ['pipe', 'pipe', 'pipe'],
    });

  test('the archive lists and extracts exactly ks.cfg, byte for byte, mode 0600', () => {
    const archive = gunzipSync(kickstartArchive(KICKSTART));
    expect(cpio(['-t', '--quiet'], archive)).toBe('ks.cfg\n');
    expect(cpio(['-tv', '--quiet'], archive)).toMatch(/^-rw------- +1 root +root +\d+ .* ks\.cfg\n$/);
    const out = path.join(parent, 'x');
    fs.mkdirSync(out);
    cpio(['-i', '--quiet', '--no-absolute-filenames'], archive, out);
    expect(fs.readdirSync(out)).toEqual(['ks.cfg']);
    expect(fs.readFileSync(path.join(out, 'ks.cfg'), 'utf8')).toBe(KICKSTART);
    expect(fs.statSync(path.join(out, 'ks.cfg')).mode & 0o7777).toBe(0o600);
  });

  test('stages private copies: kernel as is, initrd then the archive; files 0600, dir 0711; removed afterwards', async () => {
    const base = path.join(parent, 'initrd.img');
    const baseBytes = randomBytes(300_001);
    fs.writeFileSync(base, baseBytes);
    const kernel = path.join(parent, 'vmlinuz');
    const kernelBytes = randomBytes(70_000);
    fs.writeFileSync(kernel, kernelBytes);
    const staged = await stageInstallBoot({ kernelPath: kernel, initrdPath: base }, KICKSTART, {
      parentDir: parent,
    });
    expect(path.dirname(staged.initrdPath)).toBe(staged.dir);
    expect(path.dirname(staged.kernelPath)).toBe(staged.dir);
    expect(fs.statSync(staged.initrdPath).mode & 0o777).toBe(0o600);
    expect(fs.statSync(staged.kernelPath).mode & 0o777).toBe(0o600);
    expect(fs.statSync(staged.dir).mode & 0o777).toBe(0o711);
    expect(fs.readFileSync(staged.kernelPath).equals(kernelBytes)).toBe(true);
    const bytes = fs.readFileSync(staged.initrdPath);
    expect(bytes.subarray(0, baseBytes.length).equals(baseBytes)).toBe(true);
    const tail = gunzipSync(bytes.subarray(baseBytes.length));
    expect(cpio(['-t', '--quiet'], tail)).toBe('ks.cfg\n');
    expect(fs.readFileSync(base).equals(baseBytes)).toBe(true); // the cached original is untouched

    await removeInstallBoot(staged);
    expect(fs.existsSync(staged.dir)).toBe(false);
    await removeInstallBoot(staged); // idempotent
  });

  test('a missing base initrd fails and leaves no private directory behind', async () => {
    const missing = path.join(parent, 'nope.img');
    const media = { kernelPath: missing, initrdPath: missing };
    await expect(stageInstallBoot(media, KICKSTART, { parentDir: parent })).rejects.toThrow(/ENOENT/);
    expect(fs.readdirSync(parent)).toEqual([]);
  });
});
