import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../../support/cli.js';

/**
 * `create --import --dry-run` with direct boot: the plan and the domain XML
 * the import would define, and nothing made (no copies, config disk, config
 * file; the keyring is not reachable in this environment at all).
 */

let home: string;
let env: NodeJS.ProcessEnv;
beforeAll(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-import-dry-'));
  execFileSync('qemu-img', ['create', '-f', 'qcow2', path.join(home, 'guest.qcow2'), '16M'], {
    stdio: 'ignore',
  });
  fs.writeFileSync(path.join(home, 'vmlinuz'), 'k');
  fs.writeFileSync(path.join(home, 'initrd.img'), 'i');
  env = {
    PATH: process.env.PATH,
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, 'config'),
    // No session bus: a dry run must not need the keyring.
    DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent',
    FORCE_COLOR: '0',
  };
});
afterAll(() => {
  fs.rmSync(home, { recursive: true, force: true });
});

test('prints the plan, writes the domain XML and plan with --output, and makes nothing else', async () => {
  const out = path.join(home, 'out');
  const vms = path.join(home, 'vms');
  const r = await runCli(
    [
      'create',
      '--import',
      path.join(home, 'guest.qcow2'),
      '--kernel',
      path.join(home, 'vmlinuz'),
      '--initrd',
      path.join(home, 'initrd.img'),
      '--kernel-args',
      'root=/dev/vda rw console=ttyS0',
      '--network',
      'user',
      '--autostart-app',
      'xterm',
      '--name',
      'xterm-vm',
      '--memory',
      '2048',
      '--vm-dir',
      vms,
      '--dry-run',
      '--output',
      out,
    ],
    env,
  );
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toContain(`config disk:     ${vms}/xterm-vm-config.img`);
  expect(r.stdout).toMatch(/Rendered the domain XML and a config disk of 8 files \(format, hostname, /);
  expect(fs.readdirSync(out).sort()).toEqual(['xterm-vm-plan.txt', 'xterm-vm.xml']);
  const xml = fs.readFileSync(path.join(out, 'xterm-vm.xml'), 'utf8');
  expect(xml).toContain(`<kernel>${vms}/xterm-vm-vmlinuz</kernel>`);
  expect(xml).toContain('<cmdline>root=/dev/vda rw console=ttyS0</cmdline>');
  expect(xml).toContain(`<source file="${vms}/xterm-vm-config.img"/>`);
  expect(xml).toContain(`<vmp:file>${vms}/xterm-vm-initrd.img</vmp:file>`);
  expect(fs.existsSync(vms)).toBe(false);
  expect(fs.existsSync(path.join(home, 'config'))).toBe(false);
});
