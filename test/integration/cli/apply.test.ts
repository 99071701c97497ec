import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeDomain } from '../../../src/libvirt/inspect.js';
import { keyringCredentialStores } from '../../../src/secrets/credentials.js';
import { ensureWakePipe } from '../../../src/service/state.js';
import { CLI, runCli } from '../../support/cli.js';
import {
  allDomainNames,
  qemuImgCreate,
  removeDomain,
  removePoolsUnder,
  virsh,
} from '../../support/libvirt-fixture.js';
import { describeWith, LIBVIRT_TEST_URI, probeLibvirt, probeSecretService } from '../../support/services.js';
import { allOf } from '../../support/tools.js';

import { jest } from '@jest/globals';
import { procState } from '../../support/processes.js';

jest.setTimeout(600_000);

/**
 * `apply FILE` with the built CLI against the real libvirtd and Secret
 * Service: a template imported from a small blank qcow2 (never booted) and
 * app VMs on it, declared in one file. The plan, applying it, applying it
 * again (no changes), a change, pruning (never a domain vm-provisioner did
 * not make), and bad entries that must leave everything as it was.
 */

describeWith(allOf(probeLibvirt(), probeSecretService()), 'libvirt and a Secret Service')('apply', () => {
  let root: string;
  let env: NodeJS.ProcessEnv;
  const tag = randomBytes(3).toString('hex');
  const template = `vmp-t-apply-base-${tag}`;
  const web = `vmp-t-apply-web-${tag}`;
  const chat = `vmp-t-apply-chat-${tag}`;
  const foreign = `vmp-t-apply-foreign-${tag}`;
  const names = [web, chat, 'vmp-t-apply-never', template];
  const stores = keyringCredentialStores();
  const at = (...parts: string[]): string => path.join(root, ...parts);
  const cli = (args: string[], timeoutMs = 300_000) =>
    runCli([...args, '--connect', LIBVIRT_TEST_URI], env, timeoutMs);
  const tomlOf = (name: string): string =>
    fs.readFileSync(at('config', 'vm-provisioner', `${name}.toml`), 'utf8');
  const file = (): string => at('work', 'vms.toml');

  function writeFile(vms: string, templateMemory = 512): void {
    fs.writeFileSync(
      file(),
      [
        '# the app VMs of this desktop',
        '[[template]]',
        `name = "${template}"`,
        'import = "../src/base.qcow2"',
        'virt_type = "qemu"',
        'network_mode = "user"',
        `memory_mb = ${templateMemory}`,
        `vm_dir = "${at('vms')}"`,
        '',
        vms,
      ].join('\n'),
    );
  }

  const webEntry = (memory: number, label = 'red'): string =>
    `[[vm]]\nname = "${web}"\ntemplate = "${template}"\nmemory_mb = ${memory}\nvcpus = 1\nlabel = "${label}"\nauto_launch_apps = ["xterm"]\n`;
  const chatEntry = `[[vm]]\nname = "${chat}"\ntemplate = "${template}"\nflatpak_packages = ["org.example.Chat"]\non_stop = "save"\n`;

  /** Every domain's persistent definition and every config file: what "nothing changed" compares. */
  function state(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of names) {
      if (allDomainNames().includes(name)) out[`xml:${name}`] = virsh('dumpxml', name, '--inactive');
      const toml = at('config', 'vm-provisioner', `${name}.toml`);
      if (fs.existsSync(toml)) out[`toml:${name}`] = fs.readFileSync(toml, 'utf8');
    }
    return out;
  }

  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-apply-'));
    fs.chmodSync(root, 0o711);
    for (const dir of ['home', 'tmp', 'config', 'state', 'src', 'work'])
      fs.mkdirSync(at(dir), { mode: 0o700 });
    fs.mkdirSync(at('vms'), { mode: 0o711 });
    qemuImgCreate(at('src', 'base.qcow2'), '64M');
    env = {
      PATH: process.env.PATH,
      HOME: at('home'),
      XDG_CONFIG_HOME: at('config'),
      XDG_STATE_HOME: at('state'),
      TMPDIR: at('tmp'),
      DBUS_SESSION_BUS_ADDRESS: process.env.DBUS_SESSION_BUS_ADDRESS,
      NO_COLOR: '1',
    };
    // A domain vm-provisioner did not make, which prune must never touch.
    const xml = at('tmp', 'foreign.xml');
    fs.writeFileSync(
      xml,
      `<domain type='qemu'><name>${foreign}</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os></domain>`,
    );
    virsh('define', xml);
  });

  afterAll(async () => {
    for (const name of [...names, foreign]) {
      removeDomain(name);
      await stores.passwords.delete(name).catch(() => undefined);
      await stores.agentSecrets.delete(name).catch(() => undefined);
    }
    if (root) {
      removePoolsUnder(root);
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  test('--dry-run prints the plan and makes nothing', async () => {
    writeFile(`${webEntry(384)}\n${chatEntry}`);
    const before = state();
    const plan = await cli(['apply', file(), '--dry-run']);
    expect({ code: plan.code, stderr: plan.stderr }).toEqual({ code: 0, stderr: '' });
    const lines = plan.stdout.trim().split('\n');
    expect(lines[0]).toBe(`Plan for ${file()} at ${LIBVIRT_TEST_URI}:`);
    expect(lines[1]).toMatch(
      new RegExp(`^\\+ template ${template} \\(import ${at('src', 'base.qcow2')}, 512 MiB`),
    );
    expect(lines[2]).toBe(`+ vm ${web} (on ${template}, 384 MiB, 1 vCPUs, label red, network user)`);
    expect(lines[3]).toBe(
      `+ vm ${chat} (on ${template}, 512 MiB, 2 vCPUs, label gray, network user, flatpaks org.example.Chat)`,
    );
    expect(lines.slice(4)).toEqual(['3 to make, 0 to change, 0 to remove', 'dry run: nothing was changed']);
    expect(state()).toEqual(before);
    expect(allDomainNames()).not.toContain(template);
  });

  test('without --yes off a terminal it is refused, and nothing is made', async () => {
    const refused = await cli(['apply', file()]);
    expect(refused.code).toBe(2);
    expect(refused.stderr.trim()).toBe(
      'error: apply needs confirmation: pass --yes when not running on a terminal',
    );
    expect(allDomainNames()).not.toContain(template);
  });

  test('apply makes the template and the app VMs with their settings; applying again changes nothing', async () => {
    const applied = await cli(['apply', file(), '--yes']);
    expect({ code: applied.code, stderr: applied.stderr }).toEqual({ code: 0, stderr: '' });
    expect(applied.stdout).toContain(`done: + template ${template}`);
    expect(applied.stdout).toContain(`done: + vm ${chat} (`);
    expect(applied.stdout).toContain('installs org.example.Chat at its first boot');
    expect(describeDomain(virsh('dumpxml', template, '--inactive')).role).toBe('template');
    const webXml = virsh('dumpxml', web, '--inactive');
    expect(describeDomain(webXml).template?.name).toBe(template);
    expect(webXml).toContain(`<memory unit='KiB'>${384 * 1024}</memory>`);
    expect(webXml).toMatch(/<vcpu placement='static'>1<\/vcpu>/);
    expect(tomlOf(web)).toContain('label = "red"');
    expect(tomlOf(web)).toContain('memory_mb = 384');
    // Inherited from the template where the entry says nothing.
    expect(tomlOf(chat)).toContain('memory_mb = 512');
    expect(tomlOf(chat)).toContain('on_stop = "save"');
    expect(tomlOf(chat)).toContain('auto_launch_apps = ["flatpak run org.example.Chat"]');
    expect(describeDomain(virsh('dumpxml', chat, '--inactive')).pendingFlatpaks).toEqual([
      'org.example.Chat',
    ]);

    const before = state();
    const again = await cli(['apply', file(), '--yes']);
    expect({ code: again.code, stderr: again.stderr }).toEqual({ code: 0, stderr: '' });
    expect(again.stdout).toBe(`Plan for ${file()} at ${LIBVIRT_TEST_URI}:\nno changes\n`);
    expect(state()).toEqual(before);
  });

  test('a changed entry is a ~ step through set; then no changes again', async () => {
    writeFile(`${webEntry(640, 'blue')}\n${chatEntry}`, 600);
    const plan = await cli(['apply', file(), '--dry-run']);
    expect(plan.stdout).toContain(
      `~ template ${template}: memory_mb 512 -> 600\n~ vm ${web}: memory_mb 384 -> 640, label red -> blue\n`,
    );
    expect(plan.stdout).toContain('0 to make, 2 to change, 0 to remove');
    const applied = await cli(['apply', file(), '--yes']);
    expect({ code: applied.code, stderr: applied.stderr }).toEqual({ code: 0, stderr: '' });
    expect(virsh('dumpxml', web, '--inactive')).toContain(`<memory unit='KiB'>${640 * 1024}</memory>`);
    expect(tomlOf(web)).toContain('memory_mb = 640');
    expect(tomlOf(web)).toContain('label = "blue"');
    expect(virsh('dumpxml', template, '--inactive')).toContain(`<memory unit='KiB'>${600 * 1024}</memory>`);
    expect(tomlOf(template)).toContain('memory_mb = 600');
    // An app VM made earlier keeps the memory it has: its entry does not name one.
    expect(tomlOf(chat)).toContain('memory_mb = 512');
    expect((await cli(['apply', file(), '--yes'])).stdout).toContain('\nno changes\n');
  });

  test('a bad entry fails the whole plan with its file:line, and nothing is touched', async () => {
    const before = state();
    const cases: Array<[string, RegExp]> = [
      // A good change first, then a bad value: the good one must not be made either.
      [
        `${webEntry(768)}\n${chatEntry}\n[[vm]]\nname = "vmp-t-apply-never"\ntemplate = "${template}"\nlabel = "pink"\n`,
        new RegExp(
          `^error: ${escape(file())}:2[0-9]: label: invalid label "pink": must be one of red, orange`,
        ),
      ],
      [
        `${webEntry(768)}\n[[vm]]\nname = "vmp-t-apply-never"\ntemplate = "${template}"\ncolour = "red"\n`,
        new RegExp(
          `^error: ${escape(file())}:2[0-9]: unknown key "colour" in a vm: use name, template, memory_mb`,
        ),
      ],
      [
        `${webEntry(768)}\n[[vm]]\nname = "vmp-t-apply-never"\ntemplate = "no-such-template"\n`,
        new RegExp(
          `^error: ${escape(file())}:1[0-9]: vm 'vmp-t-apply-never': its template 'no-such-template' is neither in this file nor a template`,
        ),
      ],
      [
        `${webEntry(768)}\n[[vm]]\nname = "${chat}"\ntemplate = "${template}"\nflatpak_packages = ["org.example.Other"]\n`,
        new RegExp(
          `^error: ${escape(file())}:1[0-9]: vm '${chat}': flatpak_packages is \\["org.example.Chat"\\] and is set only when it is made`,
        ),
      ],
      [
        `${webEntry(768)}\n[[vm]]\nname = "${foreign}"\ntemplate = "${template}"\n`,
        new RegExp(`that vm-provisioner did not make; it is never touched$`),
      ],
      [
        `${webEntry(768)}\n[[vm]]\nname = "${web}"\ntemplate = "${template}"\n`,
        new RegExp(
          `^error: ${escape(file())}:1[0-9]: the name '${web}' is already used by the vm at line 1[0-9]$`,
        ),
      ],
      [
        `${webEntry(768)}\n[defaults]\nmemory_mb = 3\n`,
        new RegExp(
          `^error: ${escape(file())}:1[0-9]: unknown key or table "defaults": an apply file holds \\[\\[template\\]\\] and \\[\\[vm\\]\\] tables`,
        ),
      ],
      [`${webEntry(768)}\n[[vm]\n`, new RegExp(`^error: ${escape(file())}:1[0-9]:[0-9]+: not valid TOML`)],
    ];
    for (const [vms, message] of cases) {
      writeFile(vms, 600);
      const result = await cli(['apply', file(), '--yes', '--prune']);
      expect({ vms, code: result.code }).toEqual({ vms, code: 2 });
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr.trim()).toMatch(message);
      expect(state()).toEqual(before);
    }
    expect(allDomainNames()).not.toContain('vmp-t-apply-never');
    expect(allDomainNames()).toContain(foreign);
  });

  test('a change the VM cannot take in its state (network of a paused VM) fails the plan, naming the entry', async () => {
    await ensureWakePipe(describeDomain(virsh('dumpxml', web, '--inactive')));
    virsh('start', web, '--paused');
    try {
      writeFile(
        `${webEntry(640, 'blue').replace('vcpus = 1', 'vcpus = 1\nnetwork_mode = "none"')}\n${chatEntry}`,
        600,
      );
      const before = state();
      const result = await cli(['apply', file(), '--yes']);
      expect(result.code).toBe(1);
      expect(result.stderr.trim()).toBe(
        `error: ${file()}:10: vm '${web}': set: network_mode of '${web}' can change only while it is shut off (it is paused); stop it first`,
      );
      expect(state()).toEqual(before);
    } finally {
      virsh('destroy', web);
    }
  });

  test('a VM the file no longer lists is kept, and removed with --prune; a foreign domain never', async () => {
    writeFile(webEntry(640, 'blue'), 600);
    const kept = await cli(['apply', file(), '--yes']);
    expect(kept.stdout).toContain(
      `no changes\nkept, not in the file (apply --prune removes them): ${chat}\n`,
    );
    expect(allDomainNames()).toContain(chat);
    const plan = await cli(['apply', file(), '--prune', '--dry-run']);
    expect(plan.stdout).toContain(`- vm ${chat}\n0 to make, 0 to change, 1 to remove\n`);
    expect(plan.stdout).not.toContain(foreign);
    const pruned = await cli(['apply', file(), '--prune', '--yes']);
    expect({ code: pruned.code, stderr: pruned.stderr }).toEqual({ code: 0, stderr: '' });
    expect(pruned.stdout).toContain(`done: - vm ${chat}`);
    expect(allDomainNames()).not.toContain(chat);
    expect(fs.existsSync(at('config', 'vm-provisioner', `${chat}.toml`))).toBe(false);
    expect(fs.readdirSync(at('vms')).filter((f) => f.startsWith(chat))).toEqual([]);
    expect(allDomainNames()).toEqual(expect.arrayContaining([foreign, web, template]));
    expect((await cli(['apply', file(), '--prune', '--yes'])).stdout).toContain('\nno changes\n');
  });

  test('Ctrl+C while an app VM is made: that one is undone, no later step starts, exit 130', async () => {
    const first = `vmp-t-apply-int1-${tag}`;
    const second = `vmp-t-apply-int2-${tag}`;
    names.push(first, second);
    const entry = (name: string): string => `[[vm]]\nname = "${name}"\ntemplate = "${template}"\n`;
    writeFile(`${webEntry(640, 'blue')}\n${entry(first)}\n${entry(second)}`, 600);
    const before = state();
    const child = spawn(process.execPath, [CLI, 'apply', file(), '--yes', '--connect', LIBVIRT_TEST_URI], {
      env: { ...env, VMP_TEST_STOP_AT: 'domain' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    // Stopped by the create journal's test hook just before the first VM's domain is defined.
    const deadline = Date.now() + 120_000;
    while (procState(child.pid!) !== 'T') {
      if (Date.now() > deadline || child.exitCode !== null)
        throw new Error(`no stop point: ${stdout} ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    process.kill(child.pid!, 'SIGINT');
    process.kill(child.pid!, 'SIGCONT');
    expect(await exited).toBe(130);
    expect(stdout).not.toContain('done: + vm');
    expect(stderr.trim().split('\n')).toHaveLength(1);
    for (const name of [first, second]) {
      expect(allDomainNames()).not.toContain(name);
      expect(fs.existsSync(at('config', 'vm-provisioner', `${name}.toml`))).toBe(false);
      expect(fs.readdirSync(at('vms')).filter((f) => f.startsWith(name))).toEqual([]);
      expect(fs.existsSync(at('state', 'vm-provisioner', 'journal', `${name}.json`))).toBe(false);
    }
    expect(state()).toEqual(before);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
