import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { installKernelCmdline } from '../../../src/install/cmdline.js';
import { removeInstallBoot, stageInstallBoot, type InstallBootFiles } from '../../../src/install/initrd.js';
import { fetchInstallMedia, type InstallMedia } from '../../../src/install/media.js';
import { monitorInstall } from '../../../src/install/monitor.js';
import type { ProgressEvent } from '../../../src/install/progress.js';
import { renderDomainXml } from '../../../src/render/domain-xml.js';
import type { VmSpec } from '../../../src/spec/types.js';
import {
  buildFakeInstaller,
  serveTree,
  treeFiles,
  type FakeTreeServer,
} from '../../support/fake-tree/tree.js';
import { describeWith, LIBVIRT_TEST_URI, probeLibvirt } from '../../support/services.js';

const run = promisify(execFile);
const virsh = async (...args: string[]): Promise<string> =>
  // Generous: a busy libvirtd on a loaded machine has taken 3 minutes to start a domain.
  (await run('virsh', ['-c', LIBVIRT_TEST_URI, ...args], { encoding: 'utf8', timeout: 300_000 })).stdout;

const xml = (s: string): string =>
  s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/'/g, '&apos;')
    .replace(/"/g, '&quot;');

/**
 * The install-phase domain, written here until branch `libvirt`'s generator
 * lands: direct kernel boot, every stop is final (the installer's reboot or
 * power-off ends the install), serial console logged to a file. Software
 * emulation: this machine's KVM cannot boot a stock kernel.
 */
function installDomainXml(o: {
  name: string;
  kernel: string;
  initrd: string;
  cmdline: string;
  serialLog: string;
}): string {
  return `<domain type='qemu'>
  <name>${xml(o.name)}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${xml(o.kernel)}</kernel>
    <initrd>${xml(o.initrd)}</initrd>
    <cmdline>${xml(o.cmdline)}</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <serial type='file'>
      <source path='${xml(o.serialLog)}'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}

/** Resolves once libvirt no longer knows the transient domain (or reports it shut off). */
async function waitUntilGone(name: string, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    try {
      const state = (await virsh('domstate', name)).trim();
      if (state === 'shut off') return;
    } catch (err) {
      if (/failed to get domain|Domain not found/i.test(String((err as { stderr?: string }).stderr ?? err)))
        return;
      throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

/** A small software-emulated VM for the product's own domain XML renderer. */
function productSpec(name: string, vmDir: string): VmSpec {
  return {
    name,
    memoryMb: 512,
    vcpus: 1,
    diskSizeGb: 1,
    vmDir,
    systemPackages: [],
    flatpakPackages: [],
    autoLaunchApps: [],
    graphicsBackend: 'virtio',
    enableClipboard: false,
    enableAudio: false,
    enableUsbPassthrough: false,
    enableAutoLogin: false,
    networkMode: 'none',
    firewallRules: [],
    fedoraRelease: 41,
    arch: 'x86_64',
    virtType: 'qemu',
  };
}

function kickstart(vmName: string, packages: string[]): string {
  return `# vm-provisioner test kickstart
text
poweroff
%packages
@core
${packages.join('\n')}
-dracut-config-rescue
%end

%post --erroronfail
echo "VMP-INSTALL-OK ${vmName}" > /dev/ttyS0
%end

%onerror
echo "VMP-INSTALL-FAILED anaconda stopped in software installation" > /dev/ttyS0
%end
`;
}

describeWith(probeLibvirt(), 'libvirt (qemu:///system)')(
  'unattended install of the fake installer under libvirt',
  () => {
    let server: FakeTreeServer;
    let cacheRoot: string;
    let media: InstallMedia;

    beforeAll(async () => {
      const built = buildFakeInstaller();
      server = await serveTree(
        treeFiles(fs.readFileSync(built.kernelPath), fs.readFileSync(built.initrdPath)),
      );
      cacheRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-inst-boot-cache-'));
      const t0 = performance.now();
      media = await fetchInstallMedia({ treeUrl: server.url, arch: 'x86_64', cacheRoot });
      const t1 = performance.now();
      const again = await fetchInstallMedia({ treeUrl: server.url, arch: 'x86_64', cacheRoot });
      const t2 = performance.now();
      expect(media.downloaded).toBe(true);
      expect(again.downloaded).toBe(false);
      const size = fs.statSync(media.kernelPath).size + fs.statSync(media.initrdPath).size;
      process.stdout.write(
        `fake tree media: ${(size / 1048576).toFixed(1)} MiB downloaded+verified in ${(t1 - t0).toFixed(0)} ms; cached fetch ${(t2 - t1).toFixed(0)} ms\n`,
      );
    }, 10 * 60_000);

    afterAll(async () => {
      await server?.close();
      if (cacheRoot) fs.rmSync(cacheRoot, { recursive: true, force: true });
    });

    async function install(vmName: string, packages: string[], xmlFrom: 'test' | 'renderer' = 'test') {
      const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-inst-boot-'));
      fs.chmodSync(workDir, 0o755); // QEMU runs as libvirt-qemu and writes the serial log here
      const serialLog = path.join(workDir, `${vmName}-install.log`);
      let staged: InstallBootFiles | undefined;
      const stopWatching = new AbortController();
      try {
        staged = await stageInstallBoot(media, kickstart(vmName, packages));
        const cmdline = installKernelCmdline({ treeUrl: server.url, extraArgs: ['quiet'] });
        const xmlFile = path.join(workDir, 'domain.xml');
        const boot = { kernel: staged.kernelPath, initrd: staged.initrdPath, cmdline };
        if (xmlFrom === 'test') {
          fs.writeFileSync(xmlFile, installDomainXml({ name: vmName, ...boot, serialLog }));
        } else {
          const diskPath = path.join(workDir, `${vmName}.qcow2`);
          await run('qemu-img', ['create', '-q', '-f', 'qcow2', diskPath, '1G'], { timeout: 60_000 });
          const spec = productSpec(vmName, workDir);
          fs.writeFileSync(
            xmlFile,
            renderDomainXml(spec, { diskPath, install: { ...boot, consoleLog: serialLog }, version: 'test' }),
          );
        }
        const started = performance.now();
        await virsh('create', xmlFile);
        const createdAfter = performance.now() - started;
        const events: ProgressEvent[] = [];
        const eventTimes: number[] = [];
        const outcome = await monitorInstall({
          logPath: serialLog,
          vmName,
          domainStopped: waitUntilGone(vmName, stopWatching.signal),
          onEvent: (e) => {
            events.push(e);
            eventTimes.push(performance.now() - started);
          },
          timeoutMs: 5 * 60_000,
        });
        const elapsed = performance.now() - started;
        return {
          outcome,
          events,
          eventTimes,
          elapsed,
          createdAfter,
          log: fs.readFileSync(serialLog, 'utf8'),
        };
      } finally {
        stopWatching.abort();
        await virsh('destroy', vmName).catch(() => undefined);
        if (staged) await removeInstallBoot(staged);
        fs.rmSync(workDir, { recursive: true, force: true });
        // libvirtd keeps a per-domain QEMU log even for transient domains.
        fs.rmSync(`/var/log/libvirt/qemu/${vmName}.log`, { force: true });
      }
    }

    test(
      'boots the installer with the injected kickstart and follows it to success and power-off',
      async () => {
        const vmName = `vmp-t-inst-ok-${randomBytes(3).toString('hex')}`;
        const { outcome, events, eventTimes, elapsed, createdAfter, log } = await install(vmName, [
          'kitty',
          'i3',
          'firefox',
        ]);
        expect(outcome.status).toBe('succeeded');
        expect(outcome.domainStopped).toBe(true);
        expect(
          events.filter((e) => e.type === 'stage').map((e) => (e.type === 'stage' ? e.stage : '')),
        ).toEqual([
          'starting-installer',
          'setting-up',
          'storage',
          'pre-install',
          'installing-software',
          'configuring-system',
          'post-scripts',
          'complete',
        ]);
        // The fake installer lists the kickstart's %packages (groups and exclusions skipped).
        expect(events.filter((e) => e.type === 'package')).toEqual([
          { type: 'package', name: 'kitty.x86_64', done: 1, total: 3 },
          { type: 'package', name: 'i3.x86_64', done: 2, total: 3 },
          { type: 'package', name: 'firefox.x86_64', done: 3, total: 3 },
        ]);
        expect(events).toContainEqual({ type: 'success', vmName });
        expect(log).toContain(`VMP-INSTALL-OK ${vmName}`);
        expect(outcome.progress.recentLines.join('\n')).toMatch(/reboot: Power down/);
        const firstEvent = eventTimes[0] ?? NaN;
        process.stdout.write(
          `fake install (success): virsh create ${(createdAfter / 1000).toFixed(1)} s; from then, first progress line ${((firstEvent - createdAfter) / 1000).toFixed(1)} s, power-off detected ${((elapsed - createdAfter) / 1000).toFixed(1)} s\n`,
        );
      },
      10 * 60_000,
    );

    test(
      'an installer that prints the failure marker is a failure, reported with its detail',
      async () => {
        const vmName = `vmp-t-inst-fail-${randomBytes(3).toString('hex')}`;
        const { outcome, events, elapsed, createdAfter } = await install(vmName, [
          'kitty',
          'vmp-fake-missing-package',
          'i3',
        ]);
        expect(outcome.status).toBe('failed');
        expect(outcome.message).toBe(
          'the installer reported failure: anaconda stopped in software installation',
        );
        expect(events).toContainEqual({ type: 'package', name: 'kitty.x86_64', done: 1, total: 3 });
        expect(events.some((e) => e.type === 'success')).toBe(false);
        expect(outcome.progress.stage).toBe('installing-software');
        process.stdout.write(
          `fake install (failure): virsh create ${(createdAfter / 1000).toFixed(1)} s; failure detected ${((elapsed - createdAfter) / 1000).toFixed(1)} s later\n`,
        );
      },
      10 * 60_000,
    );

    test(
      "the product's install-phase domain XML (src/render/domain-xml.ts) boots the installer to success",
      async () => {
        const vmName = `vmp-t-inst-xml-${randomBytes(3).toString('hex')}`;
        const { outcome, events, elapsed, createdAfter, log } = await install(vmName, ['kitty'], 'renderer');
        expect(outcome.status).toBe('succeeded');
        expect(outcome.domainStopped).toBe(true);
        expect(events).toContainEqual({ type: 'package', name: 'kitty.x86_64', done: 1, total: 1 });
        expect(events).toContainEqual({ type: 'stage', stage: 'complete', label: 'Installation complete' });
        expect(log).toContain(`VMP-INSTALL-OK ${vmName}`);
        process.stdout.write(
          `fake install (renderer XML): virsh create ${(createdAfter / 1000).toFixed(1)} s; power-off detected ${((elapsed - createdAfter) / 1000).toFixed(1)} s later\n`,
        );
      },
      10 * 60_000,
    );
  },
);
