import type { VmSpec } from '../../src/spec/types.js';

/** A complete VmSpec for tests; override what a test is about. */
export function testSpec(overrides: Partial<VmSpec> = {}): VmSpec {
  return {
    name: 'firefox',
    memoryMb: 4096,
    vcpus: 2,
    diskSizeGb: 20,
    vmDir: '/var/lib/vm-provisioner/firefox',
    systemPackages: [],
    flatpakPackages: ['org.mozilla.firefox'],
    autoLaunchApps: ['flatpak run org.mozilla.firefox'],
    graphicsBackend: 'virtio',
    enableClipboard: true,
    enableAudio: false,
    enableUsbPassthrough: false,
    enableAutoLogin: true,
    networkMode: 'default',
    firewallRules: [],
    fedoraRelease: 43,
    arch: 'x86_64',
    virtType: 'kvm',
    ...overrides,
  };
}
