import { execFile, execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { encodeSaveHead, readSaveHead, streamRewritten } from '../../../src/storage/save-file.js';
import { allDomainNames, removeDomain, testVmName, virsh } from '../../support/libvirt-fixture.js';
import { describeWith, LIBVIRT_TEST_URI, probeLibvirt } from '../../support/services.js';

const execFileP = promisify(execFile);

/**
 * The save-file rewriter against the real libvirtd: a tiny diskless domain
 * saved with `virsh save`, then restored twice at once under two new names
 * and UUIDs, each restore reading the rewritten head and the unchanged QEMU
 * stream through its own FIFO. A plain `virsh restore --xml` refuses a new
 * name; this is what makes more than one clone possible.
 */
describeWith(probeLibvirt(), 'libvirt')('restoring clones of a saved domain through a FIFO', () => {
  const source = testVmName('savesrc');
  const clones = [`${source}-c1`, `${source}-c2`];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-save-it-'));

  afterAll(() => {
    for (const name of [source, ...clones]) if (allDomainNames().includes(name)) removeDomain(name);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('two clones restore at once under their own names; the image is untouched', async () => {
    fs.chmodSync(dir, 0o711);
    const xml = `<domain type='qemu'><name>${source}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>
      <os><type arch='x86_64' machine='q35'>hvm</type></os><devices><serial type='pty'/></devices></domain>`;
    const xmlFile = path.join(dir, 'source.xml');
    fs.writeFileSync(xmlFile, xml);
    virsh('create', xmlFile);
    const image = path.join(dir, 'source.save');
    virsh('save', source, image);
    expect(allDomainNames()).not.toContain(source);
    const before = fs.statSync(image);

    const head = await readSaveHead(image);
    expect(head.xml).toContain(`<name>${source}</name>`);
    expect(head.header.wasRunning).toBe(true);
    const uuid = /<uuid>([^<]+)<\/uuid>/.exec(head.xml)![1]!;

    const uuids = clones.map(() => randomUUID());
    await Promise.all(
      clones.map(async (clone, i) => {
        const fifo = path.join(dir, `${clone}.fifo`);
        execFileSync('mkfifo', ['-m', '0600', fifo]);
        const cloneXml = head.xml
          .replace(`<name>${source}</name>`, `<name>${clone}</name>`)
          .replace(uuid, uuids[i]!);
        const feeding = streamRewritten(image, head.streamOffset, encodeSaveHead(head, cloneXml), fifo);
        const restoring = execFileP('virsh', ['-c', LIBVIRT_TEST_URI, 'restore', fifo], { timeout: 60_000 });
        await Promise.all([feeding, restoring]);
      }),
    );
    for (const [i, clone] of clones.entries()) {
      expect(virsh('domstate', clone).trim()).toBe('running');
      expect(virsh('domuuid', clone).trim()).toBe(uuids[i]);
    }
    // The clone source's image is read, never written: another clone can come from it.
    const after = fs.statSync(image);
    expect({ size: after.size, mtime: after.mtimeMs }).toEqual({ size: before.size, mtime: before.mtimeMs });
  }, 120_000);
});
