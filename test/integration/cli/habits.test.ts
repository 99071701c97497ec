import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadAllCommands } from '../../../src/cli/commands/index.js';
import { allCommands, describeCli } from '../../../src/cli/completion/model.js';
import { VMP_XML_NAMESPACE } from '../../../src/render/domain-xml.js';
import { runCli } from '../../support/cli.js';
import { qemuImgCreate, removeDomain, testVmName, virsh } from '../../support/libvirt-fixture.js';
import { describeWith, LIBVIRT_TEST_URI, probeLibvirt } from '../../support/services.js';

/**
 * Issue 19's habits through the built CLI: NO_COLOR, help CMD = CMD --help, unknown commands,
 * version, missing positionals, numbers in help and their one-line errors, MiB, and what start
 * says when it opens no viewer (against the real libvirtd).
 */
let home: string;
beforeAll(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-habits-'));
  // libvirt's qemu user reads the test disk in here.
  fs.chmodSync(home, 0o755);
});
afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

function env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, 'config'),
    DBUS_SESSION_BUS_ADDRESS: `unix:path=${path.join(home, 'no-bus')}`,
    LIBVIRT_DEFAULT_URI: LIBVIRT_TEST_URI,
    ...extra,
  };
}

const ESC = '\x1b[';
const root = describeCli(await loadAllCommands());
const visible = allCommands(root).filter((c) => !c.hidden && !c.path.includes('__complete'));

describe('NO_COLOR', () => {
  test('set and not empty: no colour in error prefixes even when colour is forced', async () => {
    const coloured = await runCli(['lst'], env({ FORCE_COLOR: '1' }));
    expect(coloured.stderr).toContain(ESC);
    // Node itself warns that NO_COLOR loses to FORCE_COLOR; vm-provisioner lets NO_COLOR win.
    const plain = await runCli(['lst'], env({ FORCE_COLOR: '1', NO_COLOR: '1', NODE_NO_WARNINGS: '1' }));
    expect(plain).toEqual({
      code: 2,
      stdout: '',
      stderr: "error: unknown command 'lst' (did you mean list?)\n",
    });
    // Empty means unset (no-color.org).
    expect((await runCli(['lst'], env({ FORCE_COLOR: '1', NO_COLOR: '' }))).stderr).toContain(ESC);
  });
});

describe('unknown commands', () => {
  test.each([
    [['lst'], "error: unknown command 'lst' (did you mean list?)\n"],
    [['strat', 'x'], "error: unknown command 'strat' (did you mean start?)\n"],
    [['template', 'lst'], "error: unknown command 'template lst' (did you mean template list?)\n"],
    [
      ['snapshot', 'revrt', 'a', 'b'],
      "error: unknown command 'snapshot revrt' (did you mean snapshot revert?)\n",
    ],
    [['qqqqqq'], "error: unknown command 'qqqqqq'\n"],
    [['help', 'lst'], "error: unknown command 'lst' (did you mean list?)\n"],
  ])('%j: one line, exit 2', async (args, stderr) => {
    expect(await runCli(args, env({ NO_COLOR: '1' }))).toEqual({ code: 2, stdout: '', stderr });
  });
});

describe('help and version', () => {
  test('help prints what --help prints, for the tool and every command and subcommand', async () => {
    const top = await runCli(['--help'], env());
    expect(top.code).toBe(0);
    expect(await runCli(['help'], env())).toEqual(top);
    for (const command of visible.filter((c) => c.path.length > 0)) {
      const viaFlag = await runCli([...command.path, '--help'], env());
      expect({ path: command.path, code: viaFlag.code }).toEqual({ path: command.path, code: 0 });
      expect(viaFlag.stdout).toContain(`vm-provisioner ${command.path.join(' ')}`);
      expect(await runCli(['help', ...command.path], env())).toEqual(viaFlag);
    }
  }, 120_000);

  test('version and --version print the package version', async () => {
    const { version } = JSON.parse(fs.readFileSync('package.json', 'utf8')) as { version: string };
    expect(await runCli(['version'], env())).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
    expect(await runCli(['--version'], env())).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });
});

describe('missing positionals', () => {
  test.each([
    [['start'], 'start: name the VM to start'],
    [['stop', '--force'], 'stop: name the VM to stop'],
    [['destroy', '--yes'], 'destroy: name the VM to destroy'],
    [['snapshot', 'revert', 'vm1'], 'snapshot revert: name the snapshot to revert to'],
    [['snapshot', 'create', '--memory'], 'snapshot create: name the VM to snapshot'],
    [['template', 'import', 'base'], 'template import: name the disk image to import'],
    [['template', 'update', '--timeout', '5'], 'template update: name the template to update'],
    [['clipboard', 'copy'], 'clipboard: name the VM whose clipboard to use'],
  ])('%j says which one', async (args, message) => {
    expect(await runCli(args, env({ NO_COLOR: '1' }))).toEqual({
      code: 2,
      stdout: '',
      stderr: `error: ${message}\n`,
    });
  });

  test('every command with a required positional names it in one line, exit 2', async () => {
    const needing = visible.filter((c) => c.positionals.some((p) => p.required));
    expect(needing.length).toBeGreaterThan(10);
    for (const command of needing) {
      const r = await runCli(command.path, env({ NO_COLOR: '1' }));
      expect({ path: command.path, code: r.code, stdout: r.stdout }).toEqual({
        path: command.path,
        code: 2,
        stdout: '',
      });
      expect(r.stderr).toMatch(new RegExp(`^error: ${command.path.join(' ')}: (name|say) [^\\n]+\\n$`));
    }
  }, 120_000);
});

describe('numbers', () => {
  test('--help types --memory, --vcpus and --disk as numbers', async () => {
    for (const args of [
      ['create', '--help'],
      ['template', 'create', '--help'],
    ]) {
      const help = (await runCli(args, env())).stdout;
      for (const flag of ['memory', 'vcpus', 'disk']) {
        expect(help).toMatch(new RegExp(`--${flag}\\s.*\\[number\\]`));
      }
    }
    expect((await runCli(['create', '--help'], env())).stdout).toMatch(/--memory\s+RAM in MiB/);
  });

  test.each([
    [['create', '--memory', '12x'], 'invalid memory "12x": must be a whole number of MiB'],
    [['create', '--memory=0x10'], 'invalid memory "0x10": must be a whole number of MiB'],
    [['create', '--vcpus', '1e3'], 'invalid vCPU count "1e3": must be a whole number'],
    [['create', '--disk', ' 20'], 'invalid disk size " 20": must be a whole number of GB'],
    [['create', '--memory', '1024'], 'invalid memory 1024 MiB: must be at least 2048 MiB'],
    [['stop', 'vm1', '--timeout', '12x'], '--timeout 12x is invalid: seconds from 0 to 86400'],
    [['template', 'update', 't1', '--timeout', '0x5'], 'invalid --timeout "0x5": a whole number of minutes'],
    [
      ['start', 'vm1', '--seamless-timeout', '12x'],
      '--seamless-timeout 12x is invalid: must be 1 to 3600 seconds',
    ],
    [
      ['start', 'vm1', '--seamless-timeout', '0'],
      '--seamless-timeout 0 is invalid: must be 1 to 3600 seconds',
    ],
  ])('%j: the value as typed, in one line, exit 2', async (args, message) => {
    const r = await runCli(
      [...args, '--dry-run'].filter((a) => args[0] === 'create' || a !== '--dry-run'),
      env({ NO_COLOR: '1' }),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: [^\n]+\n$/);
    expect(r.stderr).toContain(message);
  });

  test('the plan shows memory in MiB, never MB', async () => {
    const r = await runCli(['create', '--name', 'vmp-t-habits-plan', '--memory', '3072', '--dry-run'], env());
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ {2}memory: +3072 MiB$/m);
    expect(r.stdout).not.toMatch(/\bMB\b/);
  });
});

describeWith(probeLibvirt(), 'libvirtd')('with a VM in libvirt', () => {
  const name = testVmName('habits');
  beforeAll(() => {
    const disk = path.join(home, `${name}.qcow2`);
    qemuImgCreate(disk, '16M');
    const xml = path.join(home, `${name}.xml`);
    fs.writeFileSync(
      xml,
      `<domain type='qemu'><name>${name}</name><memory unit='MiB'>96</memory><vcpu>1</vcpu>
      <metadata><vmp:vm xmlns:vmp='${VMP_XML_NAMESPACE}' version='0.1.0'/></metadata>
      <os><type arch='x86_64'>hvm</type></os>
      <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${disk}'/>
      <target dev='vda' bus='virtio'/></disk><graphics type='spice' autoport='yes' listen='127.0.0.1'/></devices></domain>`,
    );
    virsh('define', xml);
  }, 60_000);
  afterAll(() => removeDomain(name), 60_000);

  const row = (stdout: string): string => stdout.split('\n').find((l) => l.startsWith(`${name} `)) ?? '';

  test("list: memory in MiB; the label's coloured dot only while colour is allowed", async () => {
    const coloured = await runCli(['list'], env({ FORCE_COLOR: '1' }));
    expect(coloured.code).toBe(0);
    expect(row(coloured.stdout)).toContain('\u25cf');
    expect(row(coloured.stdout)).toContain(ESC);
    expect(row(coloured.stdout)).toMatch(/ 96 MiB /);
    const plain = await runCli(['list'], env({ FORCE_COLOR: '1', NO_COLOR: '1', NODE_NO_WARNINGS: '1' }));
    expect(plain.code).toBe(0);
    expect(row(plain.stdout)).toMatch(/ gray +96 MiB /);
    expect(plain.stdout).not.toContain(ESC);
    expect(plain.stdout).not.toContain('\u25cf');
  });

  test('start without a display, or with --no-viewer, says the viewer was not opened and how to open it', async () => {
    const noDisplay = await runCli(['start', name], env());
    expect(noDisplay).toMatchObject({ code: 0, stderr: '' });
    const uri = /spice:\/\/127\.0\.0\.1:\d+/.exec(noDisplay.stdout)?.[0];
    expect(uri).toBeDefined();
    expect(noDisplay.stdout).toContain(
      `${name}: viewer not opened (no DISPLAY or WAYLAND_DISPLAY); open it from a graphical session with: vm-provisioner start ${name} (or remote-viewer ${uri})\n`,
    );
    const skipped = await runCli(['start', name, '--no-viewer', '--connect', LIBVIRT_TEST_URI], env());
    expect(skipped.stdout).toContain(`${name}: already running\n`);
    expect(skipped.stdout).toContain(
      `${name}: viewer not opened (--no-viewer); open it from a graphical session with: vm-provisioner start ${name} --connect ${LIBVIRT_TEST_URI} (or remote-viewer ${uri})\n`,
    );
  }, 120_000);
});
