import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadBinding } from '../../../src/libvirt/binding.js';
import { openHypervisor } from '../../../src/libvirt/index.js';
import { describeDomain } from '../../../src/libvirt/inspect.js';
import { renderDomainXml } from '../../../src/render/domain-xml.js';
import { ensureWakePipe } from '../../../src/service/state.js';
import type { DomainEvent, Hypervisor } from '../../../src/service/ports.js';
import {
  AlreadyExistsError,
  AlreadyRunningError,
  NotFoundError,
  NotRunningError,
  ServiceUnavailableError,
} from '../../../src/util/errors.js';
import { qemuArgsOf, qemuImgCreate, removeDomain, testVmName, virsh } from '../../support/libvirt-fixture.js';
import { describeWith, LIBVIRT_TEST_URI, probeLibvirt } from '../../support/services.js';
import { testSpec } from '../../support/spec-fixture.js';

import { jest } from '@jest/globals';

jest.setTimeout(120_000);

/**
 * The Hypervisor port against the real libvirtd, once per backend: the
 * native binding and virsh alone must behave the same.
 */
describeWith(probeLibvirt(), 'libvirt adapter')('libvirt adapter', () => {
  describe.each(['binding', 'virsh'] as const)('%s backend', (backend) => {
    let hv: Hypervisor;
    let dir: string;
    const name = testVmName(backend.slice(0, 3));
    let xml: string;

    beforeAll(async () => {
      if (backend === 'binding' && !(await loadBinding())) {
        throw new Error('@unraid/libvirt is not built here; the binding backend cannot be tested');
      }
      hv = await openHypervisor({ uri: LIBVIRT_TEST_URI, backend });
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-virt-'));
      // QEMU runs as libvirt-qemu under qemu:///system: it must be able to traverse to the disk.
      fs.chmodSync(dir, 0o711);
      const disk = path.join(dir, `${name}.qcow2`);
      qemuImgCreate(disk);
      xml = renderDomainXml(
        testSpec({ name, memoryMb: 256, vcpus: 1, virtType: 'qemu', networkMode: 'user' }),
        {
          diskPath: disk,
          version: '0.0.0-test',
        },
      );
      // QEMU opens the wake channel's FIFOs at start; `start` (startVm) makes them, this test starts directly.
      await ensureWakePipe(describeDomain(xml));
    });

    afterAll(async () => {
      removeDomain(name);
      await hv?.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    test('reports which backend serves it', () => {
      expect(hv.backend).toBe(backend);
      expect(hv.uri).toBe(LIBVIRT_TEST_URI);
    });

    test("an unknown domain is NotFoundError with libvirt's message, and exists() is false", async () => {
      await expect(hv.info(`${name}-nope`)).rejects.toThrow(NotFoundError);
      await expect(hv.start(`${name}-nope`)).rejects.toThrow(/failed to get domain|Domain not found/);
      expect(await hv.exists(`${name}-nope`)).toBe(false);
    });

    test("define: listed, shut off, with our metadata and the spec's memory and vcpus", async () => {
      await hv.define(xml);
      expect(await hv.exists(name)).toBe(true);
      expect(await hv.listDomains()).toContain(name);
      const info = await hv.info(name);
      expect(info).toMatchObject({ name, state: 'shut off', maxMemoryKiB: 256 * 1024, vcpus: 1 });
      const description = describeDomain(await hv.xml(name, { inactive: true }));
      expect(description).toMatchObject({ name, ours: true, version: '0.0.0-test', phase: 'installed' });
      expect(description.disks).toEqual([{ file: path.join(dir, `${name}.qcow2`), readonly: false }]);
      // What `list` reads of every domain at once: the same definition and info.
      const listed = (await hv.listDomainDetails()).filter(
        (d) => describeDomain(d.inactiveXml).name === name,
      );
      expect(listed).toEqual([
        {
          inactiveXml: await hv.xml(name, { inactive: true }),
          info: { state: 'shut off', maxMemoryKiB: 256 * 1024, memoryKiB: info.memoryKiB, vcpus: 1 },
        },
      ]);
    });

    test('defining the same name again is AlreadyExistsError', async () => {
      await expect(hv.define(xml)).rejects.toThrow(AlreadyExistsError);
    });

    test('snapshots of the shut-off VM: create, list, revert, delete', async () => {
      await hv.snapshotCreate(name, 'clean', 'before first boot');
      expect(await hv.snapshotList(name)).toEqual(['clean']);
      await hv.snapshotRevert(name, 'clean');
      await expect(hv.snapshotRevert(name, 'nope')).rejects.toThrow(NotFoundError);
      await hv.snapshotDelete(name, 'clean');
      expect(await hv.snapshotList(name)).toEqual([]);
    });

    test('start: running, SPICE on loopback, TCG cache of 256 MiB on the QEMU command line', async () => {
      const events = hv.events(name);
      const seen: DomainEvent[] = [];
      const collecting = (async () => {
        for await (const event of events) seen.push(event);
      })();
      // A failing expectation must not leave the virsh event child running: jest would never exit.
      try {
        // virsh subscribes asynchronously; give it a moment before the event we wait for.
        await new Promise((resolve) => setTimeout(resolve, 2000));
        await hv.start(name);
        expect((await hv.info(name)).state).toBe('running');
        expect(describeDomain(await hv.xml(name)).spiceUri).toMatch(/^spice:\/\/127\.0\.0\.1:\d+$/);
        expect(qemuArgsOf(name)).toMatch(/-accel tcg,tb-size=256/);
        const deadline = Date.now() + 30_000;
        while (!seen.some((e) => e.event === 'Started') && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      } finally {
        events.close();
        await collecting;
      }
      expect(seen).toContainEqual({ domain: name, event: 'Started', detail: 'Booted' });
    });

    test('starting a running VM is AlreadyRunningError', async () => {
      await expect(hv.start(name)).rejects.toThrow(AlreadyRunningError);
    });

    test('managed save stops it with its memory saved; start resumes it', async () => {
      await hv.managedSave(name);
      expect((await hv.info(name)).state).toBe('shut off');
      expect(await hv.hasManagedSave(name)).toBe(true);
      await hv.start(name);
      expect((await hv.info(name)).state).toBe('running');
      expect(await hv.hasManagedSave(name)).toBe(false);
    });

    test('ACPI shutdown is accepted; destroy stops it; destroying again is NotRunningError', async () => {
      await hv.shutdown(name);
      await hv.destroy(name);
      expect((await hv.info(name)).state).toBe('shut off');
      await expect(hv.destroy(name)).rejects.toThrow(NotRunningError);
      await expect(hv.shutdown(name)).rejects.toThrow(NotRunningError);
    });

    test('undefine removes it with its managed-save image and snapshot metadata', async () => {
      await hv.start(name);
      await hv.managedSave(name);
      await hv.snapshotCreate(name, 'kept');
      await hv.undefine(name);
      expect(await hv.exists(name)).toBe(false);
      expect(virsh('list', '--all', '--name')).not.toContain(name);
    });
  });

  test.each(['binding', 'virsh'] as const)(
    'an unreachable daemon is ServiceUnavailableError (%s backend)',
    async (backend) => {
      const uri = `qemu+unix:///system?socket=${path.join(os.tmpdir(), 'vmp-t-virt-no-such.sock')}`;
      await expect(openHypervisor({ uri, backend })).rejects.toThrow(ServiceUnavailableError);
      await expect(openHypervisor({ uri, backend })).rejects.toThrow(/Failed to connect socket/);
    },
  );
});
