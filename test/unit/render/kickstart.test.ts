import { createHash } from 'node:crypto';
import {
  BASE_PACKAGES,
  extractPostScripts,
  packageList,
  renderKickstart,
  writeFileStep,
} from '../../../src/render/kickstart.js';
import { renderAppUnits } from '../../../src/render/units.js';
import { InputError } from '../../../src/util/errors.js';
import { generateAgentSecret, generatePassword } from '../../../src/secrets/password.js';
import { sha512Crypt, verifySha512Crypt } from '../../../src/secrets/sha512crypt.js';
import {
  FAKE_BUNDLE,
  FAKE_HASH,
  FAKE_PASSWORD,
  FAKE_SECRET,
  GOLDEN_INPUTS,
  GOLDEN_SPECS,
  baseSpec,
  fakeInput,
} from '../../support/render-fixtures.js';

const specs = Object.entries(GOLDEN_SPECS);
const render = (name: string): string => renderKickstart(GOLDEN_SPECS[name]!, GOLDEN_INPUTS[name]!);

/** Kickstart command lines: everything before the first section. */
function commands(ks: string): string[] {
  const head = ks.slice(0, ks.indexOf('\n%packages'));
  return head.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
}

function heredoc(ks: string, delimiter: string): string {
  const m = ks.match(new RegExp(`<< '${delimiter}'\\n([\\s\\S]*?)\\n${delimiter}\\n`));
  if (!m) throw new Error(`no heredoc ${delimiter}`);
  return m[1]!;
}

describe.each(specs)('kickstart for %s', (name, spec) => {
  const ks = render(name);

  test('installer commands: text mode, url --url, no deprecated options, poweroff last', () => {
    const cmds = commands(ks);
    expect(cmds[0]).toBe('text');
    expect(cmds).toContain('timezone Etc/UTC --utc');
    expect(cmds).toContain('rootpw --lock');
    expect(cmds).toContain('selinux --enforcing');
    expect(cmds.some((c) => c.startsWith('firewall --enabled'))).toBe(true);
    expect(cmds.filter((c) => c.startsWith('url --url='))).toHaveLength(1);
    expect(cmds[cmds.length - 1]).toBe('poweroff');
    expect(ks).not.toMatch(/--isUtc|--mirrorlist|^install$|^auth(config)? |^graphical$|^reboot$/m);
  });

  test('user gets the crypt hash, never the password', () => {
    expect(ks).toContain(`user --name=user --groups=wheel --iscrypted --password=${FAKE_HASH}\n`);
    expect(ks).not.toContain(FAKE_PASSWORD);
    // The hash appears only on the user line, where no shell ever sees it.
    expect(ks.split(FAKE_HASH)).toHaveLength(2);
  });

  test('%packages has the base set and every --system package', () => {
    const body = ks.slice(ks.indexOf('%packages\n') + 10, ks.indexOf('\n%end', ks.indexOf('%packages')));
    const pkgs = body.split('\n');
    for (const p of [...BASE_PACKAGES, ...spec.systemPackages]) expect(pkgs).toContain(p);
    expect(new Set(pkgs).size).toBe(pkgs.length);
  });

  test('sections are well formed: %post bodies, no stray section lines', () => {
    const sections = ks.split('\n').filter((l) => l.startsWith('%'));
    expect(sections).toEqual([
      '%packages',
      '%end',
      '%post --nochroot --interpreter=/bin/bash --erroronfail --log=/tmp/vmp-ks-post-nochroot.log',
      '%end',
      '%post --interpreter=/bin/bash --erroronfail --log=/root/vmp-ks-post.log',
      '%end',
    ]);
    expect(extractPostScripts(ks)).toHaveLength(2);
  });

  test('%post ends with the success marker and traps failures with a failure marker', () => {
    const [nochroot, post] = extractPostScripts(ks);
    expect(post!.body.trimEnd().split('\n').pop()).toBe('marker "VMP-INSTALL-OK ${vm_name}"');
    expect(post!.body).toContain(`vm_name='${spec.name}'`);
    expect(post!.body).toContain('> /dev/ttyS0');
    expect(post!.body).toMatch(
      /trap 'marker "VMP-INSTALL-FAILED \$\{vm_name\} %post line \$\{LINENO\}"' ERR/,
    );
    expect(nochroot!.body).toMatch(/VMP-INSTALL-FAILED/);
    expect(nochroot!.body).toContain('cp /etc/resolv.conf "${target}/etc/resolv.conf"');
  });

  test('Flatpaks: Flathub remote, then each app system-wide, non-interactive, with retries', () => {
    const line = ks.match(/^flatpak_apps=\((.*)\)$/m)![1]!;
    expect(line).toBe(spec.flatpakPackages.map((id) => `'${id}'`).join(' '));
    expect(ks).toContain(
      'retry 5 5 flatpak remote-add --system --if-not-exists flathub https://dl.flathub.org/repo/flathub.flatpakrepo',
    );
    expect(ks).toContain('retry 5 10 flatpak install --system --noninteractive --assumeyes flathub "${app}"');
  });

  test('the agent bundle and secret round-trip through base64, with a checksum', () => {
    expect(Buffer.from(heredoc(ks, 'VMP_AGENT_BUNDLE_B64'), 'base64').toString('utf8')).toBe(FAKE_BUNDLE);
    expect(Buffer.from(heredoc(ks, 'VMP_SECRET_B64'), 'base64').toString('utf8')).toBe(FAKE_SECRET);
    expect(ks).not.toContain(FAKE_SECRET);
    const sha = createHash('sha256').update(FAKE_BUNDLE).digest('hex');
    expect(ks).toContain(
      `echo '${sha}  /usr/local/lib/vm-provisioner/vm-guest-agent.cjs' | sha256sum --check`,
    );
    expect(ks).toMatch(
      /chown user:user \/etc\/vm-provisioner\/agent.secret\nchmod 0600 \/etc\/vm-provisioner\/agent.secret/,
    );
  });

  test('every app unit is written and enabled for the graphical session, plus the agent', () => {
    const units = renderAppUnits(spec);
    expect(units).toHaveLength(spec.autoLaunchApps.length);
    const enable = ks.match(/^systemctl --global enable (.*)$/m)![1]!.split(' ');
    expect(enable).toEqual([...units.map((u) => u.fileName), 'vm-guest-agent.service']);
    for (const u of units)
      expect(ks).toContain(`cat > /etc/systemd/user/${u.fileName} << 'VMP_FILE_END'\n${u.content}`);
  });

  test('restorecon covers what %post wrote', () => {
    for (const p of [
      '/etc/i3',
      '/etc/lightdm',
      '/etc/systemd/user',
      '/etc/vm-provisioner',
      '/usr/local/lib/vm-provisioner',
    ]) {
      expect(ks).toMatch(new RegExp(`for path in [^;]*${p.replace(/\//g, '\\/')}[ \\\\]`));
    }
    expect(ks).toContain('restorecon -RF "${relabel[@]}"');
  });
});

describe('renderKickstart inputs', () => {
  const spec = GOLDEN_SPECS['firefox-vm']!;

  test('is deterministic', () => {
    expect(renderKickstart(spec, fakeInput())).toBe(renderKickstart(spec, fakeInput()));
  });

  test('default install source: release tree for the arch plus the updates metalink', () => {
    const ks = renderKickstart(baseSpec({ fedoraRelease: 41, arch: 'aarch64' }), fakeInput());
    expect(ks).toContain(
      'url --url=https://download.fedoraproject.org/pub/fedora/linux/releases/41/Everything/aarch64/os/\n',
    );
    expect(ks).toContain(
      'repo --name=updates --metalink=https://mirrors.fedoraproject.org/metalink?repo=updates-released-f41&arch=aarch64\n',
    );
  });

  test('a custom install tree replaces both lines', () => {
    const ks = renderKickstart(spec, fakeInput({ installTree: 'http://10.0.2.2:8000/os/' }));
    expect(commands(ks).filter((c) => /^(url|repo) /.test(c))).toEqual([
      'url --url=http://10.0.2.2:8000/os/',
    ]);
  });

  test.each([
    ['a plaintext password', { passwordHash: FAKE_PASSWORD }, /^invalid password hash/],
    ['a short secret', { agentSecret: 'x' }, /^invalid agent secret/],
    ['an empty bundle', { agentBundle: '' }, /^invalid agent bundle/],
    ['a bad proxy host', { proxyHost: '1.2.3.4; reboot' }, /^invalid proxy host/],
    ['a bad proxy port', { proxyPort: 0 }, /^invalid proxy port/],
    ['a bad install tree', { installTree: 'http://x/$(id)' }, /^invalid install location /],
  ])('rejects %s', (_what, override, message) => {
    expect(() => renderKickstart(spec, fakeInput(override))).toThrow(InputError);
    expect(() => renderKickstart(spec, fakeInput(override))).toThrow(message);
  });

  test.each([
    ['name', { name: "x'; reboot; '" }, /^invalid VM name/],
    ['release', { fedoraRelease: 30 }, /^invalid Fedora release 30: must be one of 41, 42, 43/],
    ['package', { systemPackages: ['htop', '-kernel'] }, /^invalid package spec "-kernel"/],
    ['package with a section line', { systemPackages: ['x\n%end'] }, /^invalid package spec /],
    ['Flatpak', { flatpakPackages: ['org.x.y$(id)'] }, /^invalid Flatpak ID/],
    ['command', { autoLaunchApps: ['firefox %h'] }, /^invalid auto-launch command/],
    ['firewall rule', { firewallRules: ['OUTPUT -j LOG'] }, /^invalid firewall rule/],
  ])('rejects a bad spec %s', (_what, override, message) => {
    expect(() => renderKickstart(baseSpec(override), fakeInput())).toThrow(message);
  });

  test('a bundle line cannot end the kickstart section: it is base64, so "%end" in JS is harmless', () => {
    const ks = renderKickstart(spec, fakeInput({ agentBundle: 'x\n%end\n%post\nrm -rf /\n' }));
    expect(ks.split('\n').filter((l) => l === '%end')).toHaveLength(3);
  });

  test('audio adds PipeWire; no firewall rules means no iptables-nft', () => {
    expect(packageList(baseSpec({ enableAudio: true }))).toContain('pipewire-pulseaudio');
    expect(packageList(baseSpec({}))).not.toContain('pipewire');
    expect(packageList(baseSpec({}))).not.toContain('iptables-nft');
  });
});

describe('writeFileStep', () => {
  test('writes through a quoted heredoc', () => {
    expect(writeFileStep('/etc/x', '0644', 'a=$HOME\n')).toBe(
      "cat > /etc/x << 'VMP_FILE_END'\na=$HOME\nVMP_FILE_END\nchmod 0644 /etc/x",
    );
  });
  test('refuses content that would end the heredoc or the section', () => {
    expect(() => writeFileStep('/etc/x', '0644', 'a\nVMP_FILE_END\n')).toThrow(/would end a heredoc/);
    expect(() => writeFileStep('/etc/x', '0644', '%end\n')).toThrow(
      /would end a heredoc or kickstart section/,
    );
  });
});

describe('app units', () => {
  test('bare Flatpak IDs run through flatpak; repeated programs get distinct names', () => {
    const units = renderAppUnits({
      flatpakPackages: ['org.mozilla.firefox'],
      autoLaunchApps: ['org.mozilla.firefox', 'xterm', 'xterm -title b', '/usr/bin/gcc++'],
    });
    expect(units.map((u) => u.fileName)).toEqual([
      'vm-app-org.mozilla.firefox.service',
      'vm-app-xterm.service',
      'vm-app-xterm-2.service',
      'vm-app-gcc__.service',
    ]);
    expect(units[0]!.content).toContain('\nExecStart=/usr/bin/flatpak run org.mozilla.firefox\n');
    expect(units[2]!.content).toContain('\nExecStart=xterm -title b\n');
    expect(units[0]!.content).toContain('\nRestart=on-failure\n');
    expect(units[0]!.content).toContain('\nWantedBy=graphical-session.target\n');
  });
});

describe('with real credentials from src/secrets', () => {
  test('a generated password hash and agent secret are accepted, and only the hash reaches the kickstart', () => {
    const password = generatePassword();
    const hash = sha512Crypt(password);
    const secret = generateAgentSecret();
    const ks = renderKickstart(
      GOLDEN_SPECS['firefox-vm']!,
      fakeInput({ passwordHash: hash, agentSecret: secret }),
    );
    expect(ks).not.toContain(password);
    expect(ks).not.toContain(secret);
    const onUserLine = ks.match(/^user --name=user --groups=wheel --iscrypted --password=(\S+)$/m)![1]!;
    expect(verifySha512Crypt(password, onUserLine)).toBe(true);
    expect(Buffer.from(heredoc(ks, 'VMP_SECRET_B64'), 'base64').toString('utf8')).toBe(secret);
  });
});
