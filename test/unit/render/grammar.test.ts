import {
  SHA512_CRYPT_RE,
  checkAgentSecret,
  checkCommand,
  checkFirewallRule,
  checkFlatpakId,
  checkHost,
  checkInstallTree,
  checkPackage,
  checkPasswordHash,
  checkPort,
  checkVmName,
} from '../../../src/render/grammar.js';
import { InputError } from '../../../src/util/errors.js';
import { FAKE_HASH } from '../../support/render-fixtures.js';

function rejects(fn: () => unknown, message: RegExp | string): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(InputError);
  expect((caught as Error).message).toMatch(message);
  expect((caught as Error).message).not.toContain('\n');
}

describe('grammars', () => {
  test('VM names are hostname labels', () => {
    for (const ok of ['firefox-vm', 'a', 'vm1', 'x'.repeat(63)]) expect(checkVmName(ok)).toBe(ok);
    for (const bad of ['', '-vm', 'vm-', 'Firefox', 'a_b', 'a.b', 'x'.repeat(64), "vm'; reboot", 'vm\nx']) {
      rejects(() => checkVmName(bad), /^invalid VM name .*: use 1-63 characters/);
    }
  });

  test('system packages: names and groups, never exclusions or shell text', () => {
    for (const ok of [
      'htop',
      'python3-pip',
      'gcc-c++',
      '@development-tools',
      '@^kde-desktop-environment',
      'kernel-6.1:1',
    ]) {
      expect(checkPackage(ok)).toBe(ok);
    }
    for (const bad of ['-kernel', '', 'a b', 'pkg;rm', '$(id)', 'a\n%end', '@', 'päckage']) {
      rejects(() => checkPackage(bad), /^invalid package spec /);
    }
  });

  test('Flatpak IDs', () => {
    for (const ok of [
      'org.mozilla.firefox',
      'io.gitlab.librewolf-community',
      'com.jetbrains.IntelliJ-IDEA-Community',
    ]) {
      expect(checkFlatpakId(ok)).toBe(ok);
    }
    for (const bad of [
      'firefox',
      'org.mozilla',
      'org.moz-illa.firefox',
      '1org.a.b',
      'org.a.b;id',
      'org..a.b',
      'org.a.b ',
    ]) {
      rejects(() => checkFlatpakId(bad), /^invalid Flatpak ID/);
    }
  });

  test('auto-launch commands split into safe words', () => {
    expect(checkCommand('flatpak run org.mozilla.firefox')).toEqual([
      'flatpak',
      'run',
      'org.mozilla.firefox',
    ]);
    expect(checkCommand('/usr/bin/xterm -title x')).toEqual(['/usr/bin/xterm', '-title', 'x']);
    for (const bad of [
      '',
      ' x',
      'x  y',
      'x $HOME',
      'x %h',
      'x;y',
      "x 'y'",
      'x\\y',
      '../bin/x',
      'x\ny',
      '-x',
    ]) {
      rejects(() => checkCommand(bad), /^invalid auto-launch command/);
    }
  });

  test('hosts and ports', () => {
    expect(checkHost('192.168.122.1')).toBe('192.168.122.1');
    expect(checkHost('host.example')).toBe('host.example');
    for (const bad of ['', 'a b', 'x;y', '-x', 'a..b', 'h$x'])
      rejects(() => checkHost(bad), /^invalid proxy host/);
    expect(checkPort(9999)).toBe(9999);
    for (const bad of [0, 65536, 1.5, NaN]) rejects(() => checkPort(bad), /^invalid proxy port/);
  });

  test('SHA-512 crypt hashes, never echoed in the error', () => {
    expect(checkPasswordHash(FAKE_HASH)).toBe(FAKE_HASH);
    const withRounds = FAKE_HASH.replace('$6$', '$6$rounds=5000$');
    expect(SHA512_CRYPT_RE.test(withRounds)).toBe(true);
    for (const bad of [
      'plaintext-password',
      FAKE_HASH.replace('$6$', '$5$'),
      FAKE_HASH + 'x',
      FAKE_HASH.slice(0, -1),
      `${FAKE_HASH} `,
    ]) {
      rejects(() => checkPasswordHash(bad), /^invalid password hash: must be a SHA-512 crypt hash/);
      try {
        checkPasswordHash(bad);
      } catch (err) {
        expect((err as Error).message).not.toContain(bad);
      }
    }
  });

  test('agent secrets, never echoed', () => {
    const ok = 'a1'.repeat(32);
    expect(checkAgentSecret(ok)).toBe(ok);
    // Exactly what the agent accepts: 64 lower-case hex digits, nothing looser.
    const badSecrets = [
      'short',
      'x'.repeat(513),
      'has space in it 1234',
      "quote'quote'quote'",
      'A1'.repeat(32),
      ok + '0',
      ok.slice(1),
      'vmp-test-secret-0123456789abcdef',
    ];
    for (const bad of badSecrets) {
      rejects(() => checkAgentSecret(bad), /^invalid agent secret: must be/);
    }
  });

  test('install trees', () => {
    expect(checkInstallTree('http://10.0.2.2:8080/f/43/os/')).toBe('http://10.0.2.2:8080/f/43/os/');
    for (const bad of ['file:///x', 'http://h/x y', 'http://h/x"', 'http://h/x#frag', 'http://h/$(id)']) {
      rejects(() => checkInstallTree(bad), /^invalid install location /);
    }
  });

  test('firewall rules map onto direct-rule arguments', () => {
    expect(checkFirewallRule('OUTPUT -p tcp --dport 443 -j ACCEPT')).toEqual({
      chain: 'OUTPUT',
      args: ['-p', 'tcp', '--dport', '443', '-j', 'ACCEPT'],
      families: ['ipv4', 'ipv6'],
    });
    expect(checkFirewallRule('INPUT -s 10.0.0.0/8 -j DROP')).toEqual({
      chain: 'INPUT',
      args: ['-s', '10.0.0.0/8', '-j', 'DROP'],
      families: ['ipv4'],
    });
    expect(checkFirewallRule('OUTPUT -d fd00::/8 -p udp --dport 53:54 -j REJECT').families).toEqual(['ipv6']);
    expect(checkFirewallRule('INPUT -p icmp -j ACCEPT').families).toEqual(['ipv4']);
    rejects(() => checkFirewallRule('OUTPUT -s 10.0.0.1 -d fd00::1 -j DROP'), /must not mix IPv4 and IPv6/);
    rejects(() => checkFirewallRule('OUTPUT -p icmp -d fd00::1 -j DROP'), /-p icmp matches IPv4 only/);
    for (const bad of [
      'OUTPUT -j LOG',
      'OUTPUT --dport 443 -j ACCEPT',
      'OUTPUT -p tcp --dport 70000 -j ACCEPT',
      'nat OUTPUT -j ACCEPT',
      'OUTPUT -p tcp',
      'OUTPUT -p tcp -j ACCEPT; reboot',
    ]) {
      rejects(() => checkFirewallRule(bad), /^invalid firewall rule|a port match needs/);
    }
  });
});
