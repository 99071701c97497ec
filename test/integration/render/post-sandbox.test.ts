import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { extractPostScripts, renderKickstart } from '../../../src/render/kickstart.js';
import { renderI3Config } from '../../../src/render/i3config.js';
import { renderLightdmConf } from '../../../src/render/lightdm.js';
import { renderAppUnits } from '../../../src/render/units.js';
import { describeWith } from '../../support/services.js';
import { allOf, probeCommand, probeMountNamespace } from '../../support/tools.js';
import { FAKE_BUNDLE, FAKE_SECRET, GOLDEN_INPUTS, GOLDEN_SPECS } from '../../support/render-fixtures.js';

/**
 * Runs the generated %post scripts for real with bash, in a private mount
 * namespace (test/support/post-sandbox.sh): /etc and /usr/local are overlays,
 * /dev/ttyS0 is a file, and only the commands that would change this machine
 * or reach the network are logging stubs.
 */

const SANDBOX = path.resolve('test/support/post-sandbox.sh');

interface SandboxRun {
  status: number | null;
  output: string;
  serial: string;
  calls: string[];
  etc: string;
  local: string;
}

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-ks-post-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function runPost(
  name: string,
  body: string,
  env: NodeJS.ProcessEnv = {},
  prepare?: (work: string) => void,
): SandboxRun {
  const dir = fs.mkdtempSync(path.join(tmp, `${name}-`));
  const script = path.join(dir, 'post.sh');
  fs.writeFileSync(script, body);
  const work = path.join(dir, 'sb');
  prepare?.(work);
  const r = spawnSync(SANDBOX, [work, script], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, ...env },
  });
  if (r.error) throw r.error;
  return {
    status: r.status,
    output: `${r.stdout}${r.stderr}`,
    serial: fs.readFileSync(path.join(work, 'ttyS0'), 'utf8'),
    calls: fs.readFileSync(path.join(work, 'calls.log'), 'utf8').trimEnd().split('\n'),
    etc: path.join(work, 'upper-etc'),
    local: path.join(work, 'upper-local'),
  };
}

function mainPost(name: string): string {
  const ks = renderKickstart(GOLDEN_SPECS[name]!, GOLDEN_INPUTS[name]!);
  return extractPostScripts(ks).find((p) => !p.header.includes('--nochroot'))!.body;
}

const mode = (file: string): string => (fs.statSync(file).mode & 0o7777).toString(8);

describeWith(
  allOf(probeMountNamespace(), probeCommand('bash', ['--version'])),
  'running %post in a mount namespace',
)('%post run in a sandbox', () => {
  test('firefox-vm: installs the Flatpak, writes every file with its mode, ends with the OK marker', () => {
    const spec = GOLDEN_SPECS['firefox-vm']!;
    const r = runPost('ok', mainPost('firefox-vm'));
    expect(r.output).toContain('VMP-INSTALL-OK firefox-vm');
    expect(r.status).toBe(0);
    expect(r.serial).toBe('VMP-INSTALL-OK firefox-vm\n');

    expect(r.calls).toEqual(
      expect.arrayContaining([
        'flatpak remote-add --system --if-not-exists flathub https://dl.flathub.org/repo/flathub.flatpakrepo',
        'flatpak install --system --noninteractive --assumeyes flathub org.mozilla.firefox',
        'systemctl enable lightdm.service',
        'systemctl set-default graphical.target',
        'systemctl --global enable vm-app-org.mozilla.firefox.service vm-guest-agent.service',
        'chown user:user /etc/vm-provisioner/agent.secret',
      ]),
    );
    // Flathub is added before any app is installed.
    expect(r.calls.findIndex((c) => c.startsWith('flatpak remote-add'))).toBeLessThan(
      r.calls.findIndex((c) => c.startsWith('flatpak install')),
    );
    const restorecon = r.calls.find((c) => c.startsWith('restorecon '))!;
    for (const p of [
      '/etc/i3',
      '/etc/lightdm',
      '/etc/systemd/user',
      '/etc/vm-provisioner',
      '/usr/local/lib/vm-provisioner',
    ]) {
      expect(restorecon.split(' ')).toContain(p);
    }

    expect(fs.readFileSync(path.join(r.etc, 'i3/config'), 'utf8')).toBe(renderI3Config(spec));
    expect(fs.readFileSync(path.join(r.etc, 'lightdm/lightdm.conf.d/50-vm-provisioner.conf'), 'utf8')).toBe(
      renderLightdmConf(spec),
    );
    const [unit] = renderAppUnits(spec);
    expect(fs.readFileSync(path.join(r.etc, 'systemd/user', unit!.fileName), 'utf8')).toBe(unit!.content);
    expect(fs.readFileSync(path.join(r.etc, 'vm-provisioner/agent.conf'), 'utf8')).toBe(
      'VMP_VM_NAME=firefox-vm\nVMP_PROXY_HOST=192.168.122.1\nVMP_PROXY_PORT=9999\nVMP_SECRET_FILE=/etc/vm-provisioner/agent.secret\n',
    );
    const secret = path.join(r.etc, 'vm-provisioner/agent.secret');
    expect(fs.readFileSync(secret, 'utf8')).toBe(FAKE_SECRET);
    expect(mode(secret)).toBe('600');
    const bundle = path.join(r.local, 'lib/vm-provisioner/vm-guest-agent.cjs');
    expect(fs.readFileSync(bundle, 'utf8')).toBe(FAKE_BUNDLE);
    expect(mode(bundle)).toBe('755');
    expect(mode(path.join(r.etc, 'i3/config'))).toBe('644');
  });

  test('a 300 kB agent bundle with non-ASCII text survives the trip byte for byte', () => {
    const chunk = "const s = 'ÄÖÜ ✓ \\u{1F600} $HOME `id` %end EOF';\n";
    const bundle = chunk.repeat(Math.ceil(300_000 / chunk.length));
    const ks = renderKickstart(GOLDEN_SPECS['office-vm']!, {
      ...GOLDEN_INPUTS['office-vm']!,
      agentBundle: bundle,
    });
    const body = extractPostScripts(ks).find((p) => !p.header.includes('--nochroot'))!.body;
    const r = runPost('big-bundle', body);
    expect(r.status).toBe(0);
    expect(r.serial).toBe('VMP-INSTALL-OK office-vm\n');
    expect(fs.readFileSync(path.join(r.local, 'lib/vm-provisioner/vm-guest-agent.cjs'), 'utf8')).toBe(bundle);
  });

  test('an app that cannot be installed is retried, then fails the install loudly', () => {
    const r = runPost('flatpak-fail', mainPost('comms-vm'), {
      VMP_STUB_FAIL_FLATPAK_APP: 'org.telegram.desktop',
    });
    expect(r.status).not.toBe(0);
    expect(r.serial).toBe(
      'VMP-INSTALL-FAILED comms-vm cannot install Flatpak org.telegram.desktop from flathub\n',
    );
    expect(r.serial).not.toContain('VMP-INSTALL-OK');
    expect(r.calls.filter((c) => c.endsWith('flathub org.telegram.desktop'))).toHaveLength(5);
    expect(r.calls.filter((c) => c.startsWith('sleep '))).toEqual([
      'sleep 10',
      'sleep 20',
      'sleep 30',
      'sleep 40',
    ]);
    // Nothing after the failed step ran.
    expect(r.calls.some((c) => c.includes('com.spotify.Client'))).toBe(false);
    expect(r.calls.some((c) => c.startsWith('systemctl'))).toBe(false);
  });

  test('any failing step trips the ERR trap: a corrupted agent bundle gives the failure marker', () => {
    const body = mainPost('office-vm');
    const lines = body.split('\n');
    const first =
      lines.indexOf(
        "base64 -d > /usr/local/lib/vm-provisioner/vm-guest-agent.cjs << 'VMP_AGENT_BUNDLE_B64'",
      ) + 1;
    lines[first] = `${lines[first]!.startsWith('A') ? 'B' : 'A'}${lines[first]!.slice(1)}`;
    const r = runPost('bundle-corrupt', lines.join('\n'));
    expect(r.status).not.toBe(0);
    expect(r.serial).toMatch(/^VMP-INSTALL-FAILED office-vm %post line \d+\n$/);
    expect(r.output).toMatch(/sha256sum: WARNING: 1 computed checksum did NOT match/);
  });

  test('firewall rules become firewalld direct rules, in order', () => {
    const r = runPost('firewall', mainPost('comms-vm'));
    expect(r.status).toBe(0);
    expect(r.calls.filter((c) => c.startsWith('firewall-offline-cmd'))).toEqual([
      'firewall-offline-cmd --direct --add-rule ipv4 filter OUTPUT 0 -p udp --dport 53 -j ACCEPT',
      'firewall-offline-cmd --direct --add-rule ipv6 filter OUTPUT 0 -p udp --dport 53 -j ACCEPT',
      'firewall-offline-cmd --direct --add-rule ipv4 filter OUTPUT 0 -p tcp --dport 443 -j ACCEPT',
      'firewall-offline-cmd --direct --add-rule ipv6 filter OUTPUT 0 -p tcp --dport 443 -j ACCEPT',
    ]);
  });

  test('%post --nochroot fails with the marker on the serial console when the target is not mounted', () => {
    const ks = renderKickstart(GOLDEN_SPECS['firefox-vm']!, GOLDEN_INPUTS['firefox-vm']!);
    const body = extractPostScripts(ks).find((p) => p.header.includes('--nochroot'))!.body;
    const r = runPost('nochroot-missing', body, {
      ANA_INSTALL_PATH: path.join(tmp, 'vmp-t-ks-no-such-root'),
    });
    expect(r.status).not.toBe(0);
    expect(r.serial).toMatch(/^VMP-INSTALL-FAILED firefox-vm %post --nochroot line \d+\n$/);
  });

  test('the resolver copy is undone: /etc/resolv.conf becomes the saved symlink again', () => {
    const r = runPost('resolv', mainPost('office-vm'), {}, (work) => {
      fs.mkdirSync(path.join(work, 'upper-etc'), { recursive: true });
      fs.writeFileSync(
        path.join(work, 'upper-etc/resolv.conf.vmp-link'),
        '../run/systemd/resolve/stub-resolv.conf\n',
      );
    });
    expect(r.status).toBe(0);
    expect(fs.readlinkSync(path.join(r.etc, 'resolv.conf'))).toBe('../run/systemd/resolve/stub-resolv.conf');
    expect(fs.existsSync(path.join(r.etc, 'resolv.conf.vmp-link'))).toBe(false);
  });
});

describeWith(probeCommand('bash', ['--version']), 'bash for %post --nochroot')('%post --nochroot', () => {
  function nochroot(): string {
    const ks = renderKickstart(GOLDEN_SPECS['firefox-vm']!, GOLDEN_INPUTS['firefox-vm']!);
    return extractPostScripts(ks).find((p) => p.header.includes('--nochroot'))!.body;
  }

  test('copies the installer resolv.conf over the target symlink and remembers the link', () => {
    const root = fs.mkdtempSync(path.join(tmp, 'sysroot-'));
    fs.mkdirSync(path.join(root, 'etc'));
    fs.symlinkSync('../run/systemd/resolve/stub-resolv.conf', path.join(root, 'etc/resolv.conf'));
    const script = path.join(root, '..', `${path.basename(root)}.sh`);
    fs.writeFileSync(script, nochroot());
    // /etc/resolv.conf here stands in for the installer's; this test only reads it.
    const r = spawnSync('bash', [script], {
      encoding: 'utf8',
      env: { ...process.env, ANA_INSTALL_PATH: root },
    });
    expect(`${r.stdout}${r.stderr}`).toBe('');
    expect(r.status).toBe(0);
    const copied = path.join(root, 'etc/resolv.conf');
    expect(fs.lstatSync(copied).isSymbolicLink()).toBe(false);
    expect(fs.readFileSync(copied, 'utf8')).toBe(fs.readFileSync('/etc/resolv.conf', 'utf8'));
    expect(fs.readFileSync(path.join(root, 'etc/resolv.conf.vmp-link'), 'utf8')).toBe(
      '../run/systemd/resolve/stub-resolv.conf\n',
    );
  });
});
