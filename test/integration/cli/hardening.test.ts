import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../../support/cli.js';

/** Issue 20 items 9-11 through the built CLI: exit codes, one-line messages, time bounds, nothing left behind. */

let home: string;
let server: net.Server;
let hungUri: string;
const sockets: net.Socket[] = [];

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-cli-hard-'));
  const sock = path.join(home, 'hung.sock');
  server = net.createServer((c) => {
    sockets.push(c);
    c.on('data', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(sock, resolve));
  hungUri = `qemu+unix:///system?socket=${sock}`;
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((resolve) => server.close(resolve));
  fs.rmSync(home, { recursive: true, force: true });
});

function env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, 'config'),
    // No keyring: nothing here may get as far as the keyring.
    DBUS_SESSION_BUS_ADDRESS: `unix:path=${path.join(home, 'no-bus')}`,
    FORCE_COLOR: '0',
    ...extra,
  };
}

function configFiles(): string[] {
  const dir = path.join(home, 'config', 'vm-provisioner');
  return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
}

test('create --config /proc/self/pagemap: exit 2, one line, quickly, nothing written', async () => {
  const started = Date.now();
  const r = await runCli(
    ['create', '--name', 'vmp-t-a', '--config', '/proc/self/pagemap', '--dry-run'],
    env(),
  );
  expect(Date.now() - started).toBeLessThan(10_000);
  expect(r.code).toBe(2);
  expect(r.stderr).toBe(
    'error: config file /proc/self/pagemap is larger than 262144 bytes: a config file may hold at most 262144 bytes\n',
  );
  expect(configFiles()).toEqual([]);
});

test.each([
  ['a hung libvirtd (accepts, never answers)', ['list']],
  ['a hung libvirtd during create (whose calls may take 300 s)', ['create', '--name', 'vmp-t-b', '--yes']],
])('%s: exit 1 with one line within the connect deadline', async (_what, args) => {
  const started = Date.now();
  const r = await runCli([...args, '--connect', hungUri], env({ VMP_LIBVIRT_CONNECT_TIMEOUT_MS: '1500' }));
  const took = Date.now() - started;
  expect(r.code).toBe(1);
  expect(r.stderr).toBe(
    `error: connect to ${hungUri}: libvirtd did not answer within 1500 ms; it is hung or overloaded: restart it (systemctl restart libvirtd or virtqemud), or raise VMP_LIBVIRT_CONNECT_TIMEOUT_MS\n`,
  );
  expect(took).toBeLessThan(7000);
  expect(configFiles()).toEqual([]);
});

test('the default connect deadline is 5 s', async () => {
  const started = Date.now();
  const r = await runCli(['create', '--name', 'vmp-t-c', '--yes', '--connect', hungUri], env());
  const took = Date.now() - started;
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/^error: connect to .*: libvirtd did not answer within 5 s; /);
  expect(took).toBeGreaterThanOrEqual(5000);
  expect(took).toBeLessThan(11_000);
});

test("destroy vm-passwords --yes is refused (exit 2) and the predecessor's file stays", async () => {
  const dir = path.join(home, 'config', 'vm-provisioner');
  fs.mkdirSync(dir, { recursive: true });
  const legacy = path.join(dir, 'vm-passwords.toml');
  fs.writeFileSync(legacy, '[passwords]\nold-vm = "x"\n');
  for (const args of [
    ['destroy', 'vm-passwords', '--yes'],
    ['create', '--name', 'vm-passwords', '--dry-run'],
  ]) {
    const r = await runCli([...args, '--connect', hungUri], env());
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'error: invalid VM name "vm-passwords": is reserved: vm-passwords.toml is the predecessor\'s password file, not a VM; choose another name\n',
    );
  }
  expect(fs.readFileSync(legacy, 'utf8')).toContain('old-vm');
  fs.rmSync(dir, { recursive: true });
});

test.each([
  [
    'memory_mb = 99999999999999999999',
    'f.toml:2: memory_mb: invalid memory 99999999999999999999: is far too large (in MiB)',
  ],
  [
    'memory_mb = 18446744073709555712',
    'f.toml:2: memory_mb: invalid memory 18446744073709555712: is far too large (in MiB)',
  ],
  [
    'auto_launch_apps = ["/bin/../bin/sh"]',
    'f.toml:2: auto_launch_apps: invalid auto-launch command "/bin/../bin/sh": use a program name or an absolute path whose segments are such names',
  ],
  [
    'firewall_rules = ["OUTPUT -s 10.0.0.1 -d ::1 -j ACCEPT"]',
    'f.toml:2: firewall_rules: invalid firewall rule "OUTPUT -s 10.0.0.1 -d ::1 -j ACCEPT": must not mix IPv4 and IPv6 addresses',
  ],
])('create --config with %s: exit 2, one line naming the value as written', async (line, message) => {
  const file = path.join(home, 'f.toml');
  fs.writeFileSync(file, `name = "vmp-t-d"\n${line}\n`);
  const r = await runCli(['create', '--config', file, '--dry-run'], env());
  expect(r.code).toBe(2);
  expect(r.stderr.split('\n')).toHaveLength(2);
  expect(r.stderr).toContain(message);
  expect(configFiles()).toEqual([]);
});

test('--autostart-app /bin/../bin/sh is refused the same way', async () => {
  const r = await runCli(
    ['create', '--name', 'vmp-t-e', '--autostart-app', '/bin/../bin/sh', '--dry-run'],
    env(),
  );
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/^error: invalid auto-launch command "\/bin\/\.\.\/bin\/sh": .*\n$/);
});

test('a config file starting with a byte-order mark is read', async () => {
  const file = path.join(home, 'bom.toml');
  fs.writeFileSync(file, '\ufeffname = "vmp-t-bom"\nvcpus = 1\n');
  const r = await runCli(['create', '--config', file, '--dry-run'], env());
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toContain('vmp-t-bom');
  expect(configFiles()).toEqual([]);
});
