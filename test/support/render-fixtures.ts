import type { VmSpec } from '../../src/spec/types.js';
import type { KickstartInput } from '../../src/render/kickstart.js';
import { testSpec } from './spec-fixture.js';

/**
 * Fixed inputs for the render golden files: a real SHA-512 crypt hash (of the
 * fake password below), a fake agent secret and a small fake agent bundle, so
 * the goldens are stable and a test can prove the password never leaks.
 */
export const FAKE_PASSWORD = 'not-a-real-vm-password';
export const FAKE_HASH =
  '$6$vmpgoldensalt01$NboHa2.j80HLzU5n3fL8hlfnQq7RquTvKc1QZQXpjxnAGhdT0gw3vdQvFf35.gxahGbuqBramusCbmQKWjbfx/';
export const FAKE_SECRET = '0123456789abcdef'.repeat(4);
export const FAKE_BUNDLE = [
  '#!/usr/bin/env node',
  "'use strict';",
  '// fake guest agent bundle for golden tests: $HOME `id` %end EOF',
  'const conf = { vm: process.env.VMP_VM_NAME, host: process.env.VMP_PROXY_HOST, port: process.env.VMP_PROXY_PORT };',
  "console.log('vm-guest-agent (fake)', JSON.stringify(conf));",
  '',
].join('\n');

export function fakeInput(overrides: Partial<KickstartInput> = {}): KickstartInput {
  return {
    passwordHash: FAKE_HASH,
    agentSecret: FAKE_SECRET,
    agentBundle: FAKE_BUNDLE,
    proxyHost: '192.168.122.1',
    proxyPort: 9999,
    ...overrides,
  };
}

function baseSpec(overrides: Partial<VmSpec>): VmSpec {
  return testSpec({
    name: 'app-vm',
    vmDir: '/var/lib/libvirt/images',
    flatpakPackages: [],
    autoLaunchApps: [],
    ...overrides,
  });
}

/** The golden specs: one Flatpak; only system packages; several Flatpaks with custom resources. */
export const GOLDEN_SPECS: Record<string, VmSpec> = {
  'firefox-vm': baseSpec({
    name: 'firefox-vm',
    flatpakPackages: ['org.mozilla.firefox'],
    autoLaunchApps: ['flatpak run org.mozilla.firefox'],
  }),
  'office-vm': baseSpec({
    name: 'office-vm',
    systemPackages: ['libreoffice', 'xterm', 'htop'],
    autoLaunchApps: ['xterm', '/usr/bin/xterm -title second'],
    fedoraRelease: 42,
    enableAutoLogin: false,
  }),
  'comms-vm': baseSpec({
    name: 'comms-vm',
    memoryMb: 8192,
    vcpus: 4,
    diskSizeGb: 40,
    systemPackages: ['htop'],
    flatpakPackages: ['com.slack.Slack', 'org.telegram.desktop', 'com.spotify.Client'],
    autoLaunchApps: ['com.slack.Slack', 'org.telegram.desktop', 'flatpak run com.spotify.Client'],
    enableAudio: true,
    firewallRules: ['OUTPUT -p udp --dport 53 -j ACCEPT', 'OUTPUT -p tcp --dport 443 -j ACCEPT'],
    arch: 'aarch64',
  }),
};

export const GOLDEN_INPUTS: Record<string, KickstartInput> = {
  'firefox-vm': fakeInput(),
  'office-vm': fakeInput(),
  'comms-vm': fakeInput({
    proxyHost: '10.0.2.2',
    proxyPort: 41999,
    installTree: 'http://10.0.2.2:8080/fedora/43/Everything/aarch64/os/',
  }),
};

export { baseSpec };
