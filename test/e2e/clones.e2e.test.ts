import fs from 'node:fs';
import path from 'node:path';
import { CloneUnavailable, removeClone, startClone } from '../../src/disposable/clone.js';
import {
  prepareReadyState,
  readyPaths,
  removeReadyState,
  type CloneDeps,
} from '../../src/disposable/ready-state.js';
import { openHypervisor } from '../../src/libvirt/index.js';
import { VirshHypervisor } from '../../src/libvirt/virsh.js';
import { AgentClient } from '../../src/protocol/agent-client.js';
import { keyringCredentialStores } from '../../src/secrets/credentials.js';
import { FileConfigStore } from '../../src/spec/store.js';
import { LibvirtVolumeStore } from '../../src/storage/volumes.js';
import { packageVersion } from '../../src/util/package-info.js';
import { APP_DIR_NAME } from '../../src/util/paths.js';
import { secretToolLookup } from '../support/keyring-control.js';
import { allDomainNames, removeDomain } from '../support/libvirt-fixture.js';
import { describeWith } from '../support/services.js';
import {
  AppVmHost,
  buildGuestImage,
  E2E_URI,
  isXterm,
  PROXY_PORT,
  showsWindow,
  type GuestImage,
  type ProxyEventLine,
  probeE2e,
} from './support/app-vm-host.js';

/**
 * Clones of a template's ready saved state on the real guest: the Debian
 * test image imported as a template, its clone source booted once to its
 * xterm with its agent waiting for an identity, saved; then two clones
 * restored at once from the rewritten save image, each with its own name,
 * secret, MAC, host name and machine ID. Each one's xterm reaches the real
 * proxy under its own name; neither can authenticate as the other; removing
 * them leaves nothing.
 */

const WINDOW_DEADLINE_MS = 120_000;

describeWith(probeE2e(), 'end-to-end clones')(
  'disposable clones of a ready saved state, on a real guest',
  () => {
    const template = AppVmHost.vmName('ctpl');
    const clones = [`${template}-c1`, `${template}-c2`];
    let image: GuestImage;
    let host: AppVmHost;
    let follow: { events: ProxyEventLine[]; stop: () => void };
    let deps: CloneDeps;
    let hypervisorClose: () => Promise<void> = async () => undefined;

    beforeAll(async () => {
      image = await buildGuestImage();
      host = new AppVmHost();
      await host.startProxy();
      follow = host.follow();
      const hypervisor = await openHypervisor({ uri: E2E_URI });
      hypervisorClose = () => hypervisor.close();
      const virsh = new VirshHypervisor(E2E_URI);
      deps = {
        hypervisor,
        volumes: new LibvirtVolumeStore(E2E_URI),
        configStore: new FileConfigStore(path.join(host.env.XDG_CONFIG_HOME!, APP_DIR_NAME)),
        credentials: keyringCredentialStores(),
        virsh: (operation, args, options) => virsh.virsh(operation, args, options ?? {}),
      };
    }, 40 * 60_000);

    afterAll(async () => {
      follow?.stop();
      for (const name of [...clones, `${template}-ready`, template]) {
        if (allDomainNames().includes(name)) removeDomain(name);
      }
      await hypervisorClose();
      await host?.close();
    }, 300_000);

    const secretOf = (name: string): string | null => secretToolLookup('vm-provisioner-agent', name);

    test(
      'template import, then its ready state: booted to the xterm, saved, volumes frozen, the source secret gone',
      async () => {
        const imported = await host.importTemplate(template, image, 1024);
        expect({ code: imported.code, stderr: imported.stderr }).toEqual({ code: 0, stderr: '' });
        await expect(startClone(deps, template, clones[0]!)).rejects.toThrow(CloneUnavailable);

        const templateSpec = { name: template, vmDir: host.vmDir };
        const paths = readyPaths(templateSpec);
        const state = await prepareReadyState(deps, template, {
          version: packageVersion(),
          apps: ['xterm'],
          log: (line) => process.stderr.write(`e2e clones: ${line}\n`),
          // Every clone starts with the xterm the source had mapped when it was saved.
          beforeSave: async (source) => {
            await host.until(
              async () => (await host.guestExec(source, '/usr/bin/pgrep', ['-x', 'xterm'])).code === 0,
              'the clone source xterm',
              WINDOW_DEADLINE_MS,
            );
          },
        });
        expect(state.source).toBe(`${template}-ready`);
        expect(allDomainNames()).not.toContain(state.source);
        for (const file of [paths.root, paths.private, paths.configDisk]) {
          expect({ file, mode: fs.statSync(file).mode & 0o777 }).toEqual({ file, mode: 0o444 });
        }
        expect(fs.statSync(paths.saveImage).size).toBeGreaterThan(10 * 1024 * 1024);
        // In every clone's memory, so never valid at the proxy.
        expect(secretOf(state.source)).toBeNull();
        // The source never connected: its agent waited for an identity.
        expect(follow.events.filter((e) => e.vm === state.source)).toEqual([]);
      },
      30 * 60_000,
    );

    test(
      'two clones restored at once: each xterm reaches the proxy under its own name',
      async () => {
        const since = follow.events.length;
        const results = await Promise.all(clones.map((name) => startClone(deps, template, name)));
        for (const r of results)
          process.stderr.write(`e2e clones: ${r.name}: ${JSON.stringify(r.timings)}\n`);
        for (const name of clones) {
          await host.until(
            () => follow.events.slice(since).find((e) => showsWindow(e, name, isXterm)),
            `the xterm of clone ${name} at the proxy`,
            WINDOW_DEADLINE_MS,
          );
        }
        expect(follow.events.slice(since).filter((e) => e.vm === `${template}-ready`)).toEqual([]);
      },
      WINDOW_DEADLINE_MS * 2 + 60_000,
    );

    test('each clone has its own host name, machine ID and agent secret', async () => {
      const seen = await Promise.all(
        clones.map(async (name) => {
          const r = await host.until(
            async () => {
              const out = await host.guestExec(name, '/bin/sh', [
                '-c',
                'cat /proc/sys/kernel/hostname /etc/hostname /etc/machine-id',
              ]);
              // vmp-apply-identity runs a moment after the agent got the identity.
              return out.stdout.startsWith(`${name}\n`) ? out : undefined;
            },
            `the host name of ${name}`,
            60_000,
          );
          return r.stdout.split('\n');
        }),
      );
      // What the guest did after its restore, for the record (the bench times it): the NIC and the agent.
      const report = await host.guestExec(clones[0]!, '/bin/sh', [
        '-c',
        "dmesg | grep -iE 'virtio_net|eth0|pcieport|pciehp' | tail -8; journalctl -b -o short-monotonic --no-pager -n 12 _COMM=node 2>/dev/null || true",
      ]);
      process.stderr.write(`e2e clones: ${clones[0]} after its restore:\n${report.stdout}${report.stderr}\n`);
      expect(seen.map((lines) => lines.slice(0, 2))).toEqual(clones.map((name) => [name, name]));
      const machineIds = seen.map((lines) => lines[2]);
      expect(new Set(machineIds).size).toBe(2);
      for (const id of machineIds) expect(id).toMatch(/^[0-9a-f]{32}$/);
      const secrets = clones.map(secretOf);
      for (const s of secrets) expect(s).toMatch(/^[0-9a-f]{64}$/);
      expect(secrets[0]).not.toBe(secrets[1]);
    }, 180_000);

    test('neither clone can authenticate as the other at the real proxy', async () => {
      const [a, b] = clones as [string, string];
      for (const [as, withSecretOf] of [
        [a, b],
        [b, a],
      ] as const) {
        await expect(
          AgentClient.connect({
            host: '127.0.0.1',
            port: PROXY_PORT,
            vmName: as,
            secret: Buffer.from(secretOf(withSecretOf)!, 'hex'),
            timeoutMs: 10_000,
          }),
        ).rejects.toThrow();
      }
      // Nor as the clone source, whose secret every clone's memory holds.
      const sourceSecret = Buffer.alloc(32, 1);
      await expect(
        AgentClient.connect({
          host: '127.0.0.1',
          port: PROXY_PORT,
          vmName: `${template}-ready`,
          secret: sourceSecret,
          timeoutMs: 10_000,
        }),
      ).rejects.toThrow();
    }, 60_000);

    test('removing the clones and the ready state leaves nothing: domains, volumes, files, keyring', async () => {
      for (const name of clones) await removeClone(deps, host.vmDir, name);
      for (const name of clones) {
        expect(allDomainNames()).not.toContain(name);
        expect(secretOf(name)).toBeNull();
      }
      const left = fs.readdirSync(host.vmDir).filter((f) => clones.some((c) => f.startsWith(`${c}-`)));
      expect(left).toEqual([]);
      await removeReadyState(deps, { name: template, vmDir: host.vmDir });
      const destroyed = await host.cli(['template', 'destroy', template], 120_000);
      expect({ code: destroyed.code, stderr: destroyed.stderr }).toEqual({ code: 0, stderr: '' });
      expect(fs.readdirSync(host.vmDir)).toEqual([]);
      expect(secretToolLookup('vm-provisioner', `${template}-ready`)).toBeNull();
    }, 300_000);
  },
);
