import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { VMP_XML_NAMESPACE } from '../../../src/render/domain-xml.js';
import { CLI, runCli } from '../../support/cli.js';
import { qemuImgCreate, removeDomain, testVmName, virsh } from '../../support/libvirt-fixture.js';
import { describeWith, LIBVIRT_TEST_URI, probeLibvirt } from '../../support/services.js';

/**
 * Completion's callback (`vm-provisioner __complete`) against the real libvirtd: the names of our
 * VMs, templates and a VM's snapshots, never a foreign domain's, from the --connect/-c of the line;
 * and the bash and fish scripts offering them where a VM, template or snapshot is expected.
 */
const prefix = testVmName('comp');
const vm = `${prefix}-vm`;
const template = `${prefix}-tpl`;
const foreign = `${prefix}-foreign`;

function domainXml(name: string, disk: string, metadata: string): string {
  return `<domain type='qemu'><name>${name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  ${metadata ? `<metadata>${metadata}</metadata>` : ''}
  <os><type arch='x86_64'>hvm</type></os>
  <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${disk}'/>
  <target dev='vda' bus='virtio'/></disk></devices></domain>`;
}

describeWith(probeLibvirt(), 'libvirtd')('completion names from libvirt', () => {
  let dir: string;
  const env = (): NodeJS.ProcessEnv => ({
    PATH: `${dir}:${process.env.PATH}`,
    HOME: dir,
    LIBVIRT_DEFAULT_URI: LIBVIRT_TEST_URI,
  });

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-comp-'));
    fs.chmodSync(dir, 0o755);
    fs.writeFileSync(
      path.join(dir, 'vm-provisioner'),
      `#!/bin/sh\nexec '${process.execPath}' '${CLI}' "$@"\n`,
      { mode: 0o755 },
    );
    for (const [name, metadata] of [
      [vm, `<vmp:vm xmlns:vmp='${VMP_XML_NAMESPACE}' version='0.1.0'/>`],
      [template, `<vmp:vm xmlns:vmp='${VMP_XML_NAMESPACE}' version='0.1.0' role='template'/>`],
      [foreign, ''],
    ] as const) {
      const disk = path.join(dir, `${name}.qcow2`);
      qemuImgCreate(disk, '16M');
      const xml = path.join(dir, `${name}.xml`);
      fs.writeFileSync(xml, domainXml(name, disk, metadata));
      virsh('define', xml);
    }
    virsh('snapshot-create-as', vm, 'before-update');
    virsh('snapshot-create-as', vm, 'clean');
    virsh('snapshot-create-as', foreign, 'theirs');
  }, 120_000);

  afterAll(() => {
    for (const name of [vm, template, foreign]) removeDomain(name);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  const names = async (...args: string[]): Promise<string[]> => {
    const r = await runCli(['__complete', ...args], env());
    expect(r).toMatchObject({ code: 0, stderr: '' });
    return r.stdout.split('\n').filter(Boolean);
  };

  test('vms lists our VMs, not templates or foreign domains; templates lists the templates', async () => {
    const vms = await names('vms');
    expect(vms).toContain(vm);
    expect(vms).not.toContain(template);
    expect(vms).not.toContain(foreign);
    const templates = await names('templates', '--connect', LIBVIRT_TEST_URI);
    expect(templates).toContain(template);
    expect(templates).not.toContain(vm);
  });

  test("snapshots lists a VM's snapshots; a foreign domain's, an unknown or a bad name give nothing", async () => {
    expect(await names('snapshots', vm)).toEqual(['before-update', 'clean']);
    expect(await names('snapshots', foreign)).toEqual([]);
    expect(await names('snapshots', `${prefix}-nope`)).toEqual([]);
    expect(await names('snapshots', 'bad;name')).toEqual([]);
  });

  test('it asks the libvirt of --connect / -c, and prints nothing when that libvirtd is not there', async () => {
    // The test driver's stock domain is not ours; our VM is on the other connection.
    expect(await names('vms', '-c', 'test:///default')).toEqual([]);
    expect(await names('vms', '--connect', `qemu+unix:///system?socket=${dir}/no.sock`)).toEqual([]);
  });

  const bash = (line: string): string[] =>
    execFileSync(
      'bash',
      [
        '-c',
        `source <(vm-provisioner completion bash); COMP_LINE="$1"; COMP_POINT=\${#1}; _vm_provisioner; printf '%s\\n' "\${COMPREPLY[@]}"`,
        'bash',
        line,
      ],
      { encoding: 'utf8', env: env(), timeout: 30_000 },
    )
      .split('\n')
      .filter(Boolean);

  test('bash completes VM, template and snapshot names where each is expected', () => {
    expect(bash(`vm-provisioner start ${prefix}`)).toEqual([vm]);
    expect(bash(`vm-provisioner snapshot revert ${prefix}`)).toEqual([vm]);
    expect(bash(`vm-provisioner snapshot delete ${vm} `)).toEqual(['before-update', 'clean']);
    expect(bash(`vm-provisioner create --template ${prefix}`)).toEqual([template]);
    expect(bash(`vm-provisioner template destroy ${prefix}`)).toEqual([template]);
    expect(bash(`vm-provisioner -c test:///default start ${prefix}`)).toEqual([]);
    expect(bash(`vm-provisioner start --connect test:///default ${prefix}`)).toEqual([]);
  });

  const fishOk = ((): boolean => {
    try {
      execFileSync('fish', ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();
  (fishOk || process.env.CI === 'true' ? test : test.skip)('fish completes them too', () => {
    const fish = (line: string): string[] =>
      execFileSync('fish', ['-c', 'vm-provisioner completion fish | source; complete -C $argv[1]', line], {
        encoding: 'utf8',
        env: env(),
        timeout: 30_000,
      })
        .split('\n')
        .filter(Boolean);
    expect(fish(`vm-provisioner stop ${prefix}`)).toEqual([vm]);
    expect(fish(`vm-provisioner snapshot revert ${vm} c`)).toEqual(['clean']);
    expect(fish(`vm-provisioner template update ${prefix}`)).toEqual([template]);
  });
});
