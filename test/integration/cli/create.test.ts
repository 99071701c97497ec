import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * `create` end to end: the built CLI in a child process, with HOME and
 * XDG_CONFIG_HOME pointed at an empty temp dir that must stay empty.
 */

const CLI = path.resolve('dist/src/cli/main.js');

let home: string;

beforeAll(() => {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
});

beforeEach(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-spec-cli-'));
  fs.mkdirSync(path.join(home, 'config'));
});

afterEach(() => {
  fs.rmSync(home, { recursive: true, force: true });
});

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(...args: string[]): Result {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout: 20_000,
    cwd: home,
    env: {
      PATH: process.env.PATH,
      HOME: home,
      XDG_CONFIG_HOME: path.join(home, 'config'),
      FORCE_COLOR: '0',
    },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Every file under the temp home, besides the empty config dir we made. */
function written(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else out.push(path.relative(home, p));
    }
  };
  walk(home);
  return out.concat(fs.readdirSync(path.join(home, 'config')));
}

function expectOneLineError(r: Result, code: number, pattern: RegExp): void {
  expect(r.code).toBe(code);
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(/^error: [^\n]*\n$/);
  expect(r.stderr).toMatch(pattern);
}

test('--dry-run prints the plan, exits 0 and writes nothing', () => {
  const r = cli('create', '--flatpak', 'org.mozilla.firefox', '--dry-run');
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(
    /^Plan for VM "org-mozilla-firefox-vm" \(dry run: no VM, disk, keyring entry or config is made\)\n/,
  );
  expect(r.stdout).toContain('memory:          4096 MiB');
  expect(r.stdout).toContain('vCPUs:           2');
  expect(r.stdout).toContain('/var/lib/libvirt/images/org-mozilla-firefox-vm.qcow2 (20 GB, qcow2)');
  expect(r.stdout).toContain('autostart apps:  flatpak run org.mozilla.firefox');
  expect(r.stdout).toContain('release:         Fedora 43 (x86_64)');
  expect(r.stdout).toContain('config file:     ~/config/vm-provisioner/org-mozilla-firefox-vm.toml');
  expect(written()).toEqual([]);
});

test("the seed's multi-valued, repeated flags", () => {
  const r = cli(
    'create',
    '--system',
    'git',
    'gcc',
    '--flatpak',
    'a.b.C',
    '--flatpak',
    'd.e.F',
    '--memory',
    '2048',
    '--vcpus',
    '1',
    '--disk',
    '30',
    '--name',
    'vmp-t-spec-dev',
    '--autostart-app',
    'kitty',
    '--fedora-release',
    '42',
    '--arch',
    'x86_64',
    '--virt-type',
    'qemu',
    '--network',
    'user',
    '--graphics',
    'qxl',
    '--connect',
    'qemu:///session',
    '-y',
    '--verbose',
    '--dry-run',
  );
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toContain('name:            vmp-t-spec-dev');
  expect(r.stdout).toContain('system packages: git, gcc');
  expect(r.stdout).toContain('flatpak apps:    a.b.C, d.e.F');
  expect(r.stdout).toContain('autostart apps:  kitty');
  expect(r.stdout).toContain('release:         Fedora 42 (x86_64)');
  expect(r.stdout).toContain('connection:      qemu:///session (from --connect, domain type qemu)');
  expect(r.stdout).toContain(`${home}/.local/share/libvirt/images/vmp-t-spec-dev.qcow2 (30 GB, qcow2)`);
  expect(written()).toEqual([]);
});

test('without --dry-run and not on a terminal it needs --yes (exit 2) and writes nothing', () => {
  const r = cli('create', '--system', 'git', '--connect', 'test:///default');
  expectOneLineError(r, 2, /^error: create needs confirmation: pass --yes when not running on a terminal\n$/);
  expect(written()).toEqual([]);
});

test('a bad --install-timeout is refused before anything is made', () => {
  for (const value of ['0', '90m', '-5', '1441']) {
    const r = cli('create', '--system', 'git', '--install-timeout', value, '--yes');
    expectOneLineError(
      r,
      2,
      /invalid install timeout ".*": must be a whole number of minutes from 1 to 1440/,
    );
  }
  expect(written()).toEqual([]);
});

test.each([
  [['--name', 'Bad Name'], /invalid VM name "Bad Name": use 1-63 characters/],
  [['--name=-vm'], /invalid VM name "-vm"/],
  [['--flatpak', 'org.mozillа.firefox'], /invalid Flatpak ID "org\.mozill\\u0430\.firefox"/],
  [['--flatpak', 'firefox'], /needs at least 3 dot-separated elements/],
  [['--system', 'git;reboot'], /invalid package spec "git;reboot"/],
  [['--system', '$(id)'], /invalid package spec "\$\(id\)"/],
  [['--system', 'x\n%post'], /invalid package spec "x\\n%post"/],
  [
    ['--system', 'a'.repeat(10240)],
    /invalid package spec "a{40}\.\.\." \(10240 characters\): is longer than 200/,
  ],
  [['--memory', '-1'], /invalid memory "-1": must be a whole number of MiB/],
  [['--memory', '1024'], /invalid memory 1024 MiB: must be at least 2048 MiB/],
  [
    ['--memory', '99999999999'],
    /invalid memory 99999999999 MiB: must be at most 4194304 MiB, even with --force/,
  ],
  [['--memory', '4g'], /invalid memory "4g"/],
  [['--vcpus', '100000'], /invalid vCPU count 100000/],
  [['--vcpus', '0'], /invalid vCPU count 0: must be at least 1/],
  [['--disk', '5'], /invalid disk size 5 GB: must be at least 10 GB/],
  [['--disk', '1e9'], /invalid disk size "1e9"/],
  [['--fedora-release', '38'], /invalid Fedora release "38": supported releases are 41, 42, 43/],
  [['--arch', 'sparc'], /invalid architecture "sparc": must be one of x86_64, aarch64/],
  [['--virt-type', 'xen'], /invalid virtualisation type "xen"/],
  [['--network', 'bridge'], /invalid network mode "bridge"/],
  [['--graphics', 'vga'], /invalid graphics backend "vga"/],
  [['--autostart-app', 'firefox && curl evil'], /invalid auto-launch command/],
  [['--autostart-app', '<script>'], /invalid auto-launch command "<script>"/],
  [['--connect', 'qemu:///system; reboot'], /invalid libvirt URI/],
  [['--location', 'file:///etc/shadow'], /invalid install location/],
  [['--vm-dir', '/tmp/x y'], /invalid --vm-dir directory/],
  [['--import', 'missing.qcow2'], /--import disk \/.*missing\.qcow2 is not an existing file/],
  [
    ['--import', '/a.qcow2', '--location', 'https://m.example/'],
    /--import and --location exclude each other/,
  ],
  [['--name', 'a', '--name', 'b'], /option --name was given 2 times; give it once/],
  [['--config', 'nope.toml'], /cannot read config file nope\.toml: ENOENT/],
  [['--bogus'], /Unknown argument: bogus/],
  [['extra-positional'], /Unknown argument: extra-positional/],
])('refuses %p with exit 2, one line, nothing written', (args, pattern) => {
  const r = cli('create', ...args, '--dry-run');
  expectOneLineError(r, 2, pattern);
  expect(written()).toEqual([]);
});

test('--output without --dry-run is refused before anything is made', () => {
  const r = cli('create', '--flatpak', 'org.mozilla.firefox', '--output', path.join(home, 'out'));
  expectOneLineError(r, 2, /--output goes with --dry-run/);
  expect(written()).toEqual([]);
});

test('host maximums: more vCPUs than the host needs --force', () => {
  const cpus = os.cpus().length;
  expectOneLineError(
    cli('create', '--vcpus', String(cpus + 1), '--dry-run'),
    2,
    new RegExp(`more than this host's ${cpus} CPUs; use --force`),
  );
  const forced = cli('create', '--vcpus', String(cpus + 1), '--force', '--dry-run');
  expect(forced.code).toBe(0);
  expect(forced.stdout).toContain(`vCPUs:           ${cpus + 1}`);
});

test('--config: flags override the file; a bad key is reported with file and line', () => {
  const good = path.join(home, 'spec.toml');
  fs.writeFileSync(good, 'name = "vmp-t-spec-cfg"\nmemory_mb = 3072\nflatpak_packages = ["org.gimp.GIMP"]\n');
  const r = cli('create', '--config', good, '--memory', '2048', '--dry-run');
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toContain('name:            vmp-t-spec-cfg');
  expect(r.stdout).toContain('memory:          2048 MiB');
  expect(r.stdout).toContain('autostart apps:  flatpak run org.gimp.GIMP');

  fs.writeFileSync(path.join(home, 'bad.toml'), 'name = "vmp-t-spec-cfg"\n\nuser_name = "x"\n');
  expectOneLineError(
    cli('create', '--config', 'bad.toml', '--dry-run'),
    2,
    /^error: bad\.toml:3: unknown key "user_name"/,
  );
  fs.writeFileSync(path.join(home, 'syntax.toml'), 'name = "vmp-t-spec-cfg\n');
  expectOneLineError(
    cli('create', '--config', 'syntax.toml', '--dry-run'),
    2,
    /^error: syntax\.toml:1:\d+: not valid TOML/,
  );
  // The test's own files are the only files.
  expect(written().sort()).toEqual(['bad.toml', 'spec.toml', 'syntax.toml']);
});

test('a taken name is an error; a taken generated name gets a numeric suffix', () => {
  const dir = path.join(home, 'config', 'vm-provisioner');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'vmp-t-spec-taken.toml'), 'name = "vmp-t-spec-taken"\n');
  fs.writeFileSync(path.join(dir, 'git-vm.toml'), 'name = "git-vm"\n');
  expectOneLineError(
    cli('create', '--name', 'vmp-t-spec-taken', '--dry-run'),
    2,
    /a VM named "vmp-t-spec-taken" already exists; choose another --name/,
  );
  const r = cli('create', '--system', 'git', '--dry-run');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/^Plan for VM "git-vm-2"/);
  expect(fs.readdirSync(dir).sort()).toEqual(['git-vm.toml', 'vmp-t-spec-taken.toml']);
});

test('create is listed in --help', () => {
  const r = cli('--help');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/create +Create an app VM/);
});

test('--dry-run --output DIR writes the kickstart, a valid domain XML and the plan, and nothing else', () => {
  const out = path.join(home, 'out');
  const r = cli(
    'create',
    '--flatpak',
    'org.mozilla.firefox',
    '--system',
    'git',
    '--dry-run',
    '--output',
    out,
  );
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const files = fs.readdirSync(out).sort();
  expect(files).toEqual([
    'org-mozilla-firefox-vm-plan.txt',
    'org-mozilla-firefox-vm.ks',
    'org-mozilla-firefox-vm.xml',
  ]);
  for (const f of files) expect(fs.statSync(path.join(out, f)).mode & 0o777).toBe(0o600);
  expect(written().sort()).toEqual(files.map((f) => path.join('out', f)).sort());

  const ks = fs.readFileSync(path.join(out, 'org-mozilla-firefox-vm.ks'), 'utf8');
  expect(ks).toMatch(/^user --name=user --groups=wheel --iscrypted --password=\$6\$rounds=\d+\$/m);
  expect(ks).toMatch(/^git$/m);
  expect(ks).toContain("flatpak_apps=('org.mozilla.firefox')");
  const xmlFile = path.join(out, 'org-mozilla-firefox-vm.xml');
  const xml = fs.readFileSync(xmlFile, 'utf8');
  expect(xml).toContain('<name>org-mozilla-firefox-vm</name>');
  const validate = spawnSync('virt-xml-validate', [xmlFile, 'domain'], { encoding: 'utf8', timeout: 30_000 });
  expect(validate.stderr).toMatch(/validates$/m);
  expect(validate.status).toBe(0);
  expect(fs.readFileSync(path.join(out, 'org-mozilla-firefox-vm-plan.txt'), 'utf8')).toMatch(
    /^Plan for VM "org-mozilla-firefox-vm"/,
  );
});
