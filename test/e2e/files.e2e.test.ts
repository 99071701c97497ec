import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CLI } from '../support/cli.js';
import { allDomainNames, removeDomain, virsh } from '../support/libvirt-fixture.js';
import { describeWith } from '../support/services.js';
import { AppVmHost, buildGuestImage, type GuestImage, probeE2e } from './support/app-vm-host.js';

/**
 * `copy-to-vm`, `open` and `open --writeback` on the real Debian guest: one
 * guest, booted by the first command (which starts it, as `run` does), shared
 * by every test. The e2e image has no xdg-utils, so the test installs an
 * `xdg-open` that records what it was asked to open; what is checked is that
 * the agent starts it on the one file it placed. Files in the guest are
 * inspected through the QEMU guest agent, independently of our agent.
 */

const probe = probeE2e();
const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

describeWith(probe, 'end-to-end files')('open and copy-to-vm on a real guest', () => {
  const name = AppVmHost.vmName('files');
  let image: GuestImage;
  let host: AppVmHost;
  let hostDir: string;
  let writeback: ChildProcess | undefined;

  beforeAll(async () => {
    image = await buildGuestImage();
    host = new AppVmHost();
    await host.startProxy();
    hostDir = path.join(host.root, 'host-files');
    fs.mkdirSync(hostDir, { mode: 0o700 });
    const created = await host.createVm(name, image, ['xterm']);
    if (created.code !== 0) throw new Error(`create failed: ${created.stderr}`);
  }, 40 * 60_000);

  afterAll(async () => {
    if (writeback && writeback.exitCode === null) writeback.kill('SIGKILL');
    // destroy removes the domain, its files and its keyring entries; removeDomain only if that failed.
    if (allDomainNames().includes(name))
      await host.cli(['destroy', name, '--yes'], 120_000).catch(() => undefined);
    if (allDomainNames().includes(name)) removeDomain(name);
    await host?.close();
  }, 120_000);

  /** Runs a shell line in the guest as root (QEMU guest agent); fails the test on a non-zero exit. */
  const inGuest = async (script: string): Promise<string> => {
    const r = await host.guestExec(name, '/bin/sh', ['-c', script]);
    if (r.code !== 0) throw new Error(`guest: ${script}: exit ${r.code}: ${r.stderr}`);
    return r.stdout;
  };

  test('copy-to-vm starts the VM and lands the exact bytes in ~/Incoming/host (0700), never overwriting', async () => {
    const content = randomBytes(700 * 1024);
    const file = path.join(hostDir, 'scan.bin');
    fs.writeFileSync(file, content);
    const r = await host.cli(['copy-to-vm', name, file, '--timeout', '300'], 400_000);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const m = new RegExp(`^${name}: ${file} -> (/home/[^/]+/Incoming/host/scan\\.bin)\\n$`).exec(r.stdout);
    expect(m).not.toBeNull();
    const guestPath = m![1]!;
    const home = path.dirname(path.dirname(path.dirname(guestPath)));
    expect((await inGuest(`sha256sum '${guestPath}'`)).split(' ')[0]).toBe(sha256(content));
    const [dirMode, dirOwner] = (await inGuest(`stat -c '%a %U' '${path.dirname(guestPath)}'`))
      .trim()
      .split(' ');
    expect(dirMode).toBe('700');
    expect(dirOwner).toBe(path.basename(home));
    // Again: a numbered copy beside it, the first untouched.
    fs.writeFileSync(file, 'second');
    const again = await host.cli(['copy-to-vm', name, file], 60_000);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`-> ${home}/Incoming/host/scan (1).bin`);
    expect(await inGuest(`cat '${home}/Incoming/host/scan (1).bin'`)).toBe('second');
    expect((await inGuest(`sha256sum '${guestPath}'`)).split(' ')[0]).toBe(sha256(content));
  }, 600_000);

  test('open puts exactly one read-only file in its own directory and runs xdg-open on it; no host directory is shared', async () => {
    // The recording stand-in for the guest's default handler (see the header comment).
    await inGuest(
      `printf '%s\\n' '#!/bin/sh' 'echo "$1" >> "$HOME/xdg-open.log"' > /usr/local/bin/xdg-open && chmod 755 /usr/local/bin/xdg-open`,
    );
    const file = path.join(hostDir, 'letter.txt');
    fs.writeFileSync(file, 'dear guest\n');
    fs.writeFileSync(path.join(hostDir, 'secret.txt'), 'not for the guest\n');
    const r = await host.cli(['open', name, file], 60_000);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const m = new RegExp(
      `^${name}: opened (/run/user/\\d+/vm-provisioner/open/f-[^/]+/letter\\.txt) with xdg-open \\(pid \\d+ in the VM\\)\\n$`,
    ).exec(r.stdout);
    expect(m).not.toBeNull();
    const guestPath = m![1]!;
    const dir = path.dirname(guestPath);
    expect(await inGuest(`ls -A '${dir}'`)).toBe('letter.txt\n');
    expect(await inGuest(`stat -c '%a' '${guestPath}' '${dir}'`)).toBe('444\n500\n');
    expect(await inGuest(`cat '${guestPath}'`)).toBe('dear guest\n');
    await host.until(
      async () => (await inGuest('cat /home/*/xdg-open.log 2>/dev/null || true')).includes(`${guestPath}\n`),
      'xdg-open to be started on the file',
      30_000,
    );
    // The transport is the agent link: the domain has no shared filesystem, and no other host file is in the guest.
    expect(virsh('dumpxml', name)).not.toContain('<filesystem');
    expect(await inGuest('findmnt -rn -t virtiofs,9p -o TARGET || true')).toBe('');
    expect(await inGuest("grep -rl 'not for the guest' /home /run/user /tmp 2>/dev/null || true")).toBe('');
  }, 120_000);

  test('--writeback changes only that host file, and stops on SIGTERM', async () => {
    const file = path.join(hostDir, 'notes.txt');
    fs.writeFileSync(file, 'v1\n');
    const bystanders = fs
      .readdirSync(hostDir)
      .filter((n) => n !== 'notes.txt')
      .sort();
    const before = new Map(bystanders.map((n) => [n, fs.readFileSync(path.join(hostDir, n))]));
    const child = spawn(process.execPath, [CLI, 'open', name, file, '--writeback'], {
      env: host.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    writeback = child;
    let out = '';
    let err = '';
    child.stdout?.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr?.setEncoding('utf8').on('data', (c: string) => (err += c));
    const guestPath = await host.until(
      () => /opened (\/run\/user\/\d+\/vm-provisioner\/open\/f-[^/]+\/notes\.txt) /.exec(out)?.[1],
      `open --writeback to open the file (stderr: ${err})`,
      60_000,
    );
    expect(await inGuest(`stat -c '%a' '${guestPath}'`)).toBe('644\n');
    // An edit saved in the guest (in place, as root through the QEMU guest agent: the agent only watches).
    await inGuest(`printf 'v2 from the guest\\n' > '${guestPath}'`);
    await host.until(
      () => /wrote 18 bytes to /.test(out),
      `the writeback (stdout: ${out}; stderr: ${err})`,
      60_000,
    );
    expect(fs.readFileSync(file, 'utf8')).toBe('v2 from the guest\n');
    expect(fs.readdirSync(hostDir).sort()).toEqual([...bystanders, 'notes.txt'].sort());
    for (const [n, content] of before)
      expect(fs.readFileSync(path.join(hostDir, n)).equals(content)).toBe(true);
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(out).toContain('writeback stopped');
    // Detached: the guest copy is read-only again.
    await host.until(
      async () => (await inGuest(`stat -c '%a' '${guestPath}'`)) === '444\n',
      'the guest copy to be made read-only',
      30_000,
    );
  }, 180_000);

  test('bad input is refused before anything reaches the guest', async () => {
    fs.symlinkSync(path.join(hostDir, 'letter.txt'), path.join(hostDir, 'link.txt'));
    const r = await host.cli(['copy-to-vm', name, path.join(hostDir, 'link.txt')], 30_000);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/it is a symbolic link; only regular files are sent/);
    expect(await inGuest('ls -A /home/*/Incoming/host')).not.toContain('link.txt');
  }, 60_000);
});
