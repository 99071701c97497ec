import fs from 'node:fs';
import { configDiskFiles } from '../../../src/configdisk/layout.js';
import { describeDomain } from '../../../src/libvirt/inspect.js';
import {
  extractPostScripts,
  renderKickstart,
  SEAMLESS_PACKAGES,
  TEMPLATE_GUEST_FILES,
} from '../../../src/render/kickstart.js';
import { renderDomainXml } from '../../../src/render/domain-xml.js';
import { appVmPaths } from '../../../src/service/templates.js';
import { parseVolumeXml, poolNameFor } from '../../../src/storage/volumes.js';
import { InputError } from '../../../src/util/errors.js';
import { FAKE_HASH, FAKE_SECRET } from '../../support/render-fixtures.js';
import { testSpec } from '../../support/spec-fixture.js';

/** The pure parts of templates: what the domain records, what libvirt reports, what the guest receives. */

describe('the domain metadata of templates and app VMs reads back', () => {
  test('an app VM on a template: its template, backing disk, pending Flatpaks and direct boot', () => {
    const d = describeDomain(fs.readFileSync('test/golden/libvirt/app-on-template.xml', 'utf8'));
    expect(d.ours).toBe(true);
    expect(d.role).toBeUndefined();
    expect(d.template).toEqual({ name: 'debian-base', disk: '/var/lib/vm-provisioner/debian-base.qcow2' });
    expect(d.pendingFlatpaks).toEqual(['org.mozilla.firefox']);
    expect(d.boot).toEqual({
      kernel: '/var/lib/vm-provisioner/debian-base-vmlinuz',
      initrd: '/var/lib/vm-provisioner/debian-base-initrd.img',
      cmdline: 'root=/dev/vda rw console=ttyS0',
    });
    // The backing store is nested in the system disk: it is never one of the VM's own disks.
    expect(d.disks.map((x) => x.file)).toEqual([
      '/var/lib/vm-provisioner/firefox/firefox-root.qcow2',
      '/var/lib/vm-provisioner/firefox/firefox-config.img',
      '/var/lib/vm-provisioner/firefox/firefox-private.qcow2',
    ]);
    expect(d.disks.map((x) => x.serial)).toEqual([undefined, 'vmp-config', 'vmp-private']);
  });

  test('a sealed template: role and seal', () => {
    const d = describeDomain(fs.readFileSync('test/golden/libvirt/template-sealed.xml', 'utf8'));
    expect(d.role).toBe('template');
    expect(d.seal).toEqual({ mtimeNs: '1796416023764538841', sizeBytes: 1141374976, origin: 'import' });
    expect(d.template).toBeUndefined();
  });

  test('as libvirt hands it back (its own prefix and quoting)', () => {
    const xml = renderDomainXml(testSpec(), {
      diskPath: '/v/a-root.qcow2',
      template: { name: 'base', disk: '/v/base.qcow2', privateDisk: '/v/a-private.qcow2' },
      version: '0.1.0',
    })
      .replace(/vmp:/g, 'x:')
      .replace('xmlns:vmp=', 'xmlns:x=')
      .replace(/"/g, "'");
    expect(describeDomain(xml).template).toEqual({ name: 'base', disk: '/v/base.qcow2' });
  });

  test('its UUID, which sealing must keep when it defines the template again', () => {
    const uuid = '2c4f6064-2b14-4387-b18a-ee89d52b8631';
    const xml = renderDomainXml(testSpec(), { diskPath: '/v/t.qcow2', version: '0.1.0', uuid });
    expect(describeDomain(xml).uuid).toBe(uuid);
    expect(describeDomain(renderDomainXml(testSpec(), { diskPath: '/v/t.qcow2', version: '0.1.0' })).uuid).toBeUndefined();
  });
});

describe('volumes as libvirt reports them', () => {
  const xml = `<volume type='file'>
  <name>base.qcow2</name>
  <key>/tmp/ptest/base.qcow2</key>
  <capacity unit='bytes'>1073741824</capacity>
  <allocation unit='bytes'>200704</allocation>
  <physical unit='bytes'>196624</physical>
  <target>
    <path>/tmp/ptest/base.qcow2</path>
    <format type='qcow2'/>
    <permissions><mode>0444</mode><owner>0</owner><group>0</group></permissions>
    <timestamps>
      <atime>1796416023.768538841</atime>
      <mtime>1796416023.7645</mtime>
    </timestamps>
  </target>
  <backingStore><path>/tmp/ptest/tmpl.qcow2</path><format type='qcow2'/></backingStore>
</volume>`;

  test('sizes, mode, an exact modification time and the backing file', () => {
    expect(parseVolumeXml(xml)).toEqual({
      path: '/tmp/ptest/base.qcow2',
      format: 'qcow2',
      capacityBytes: 1073741824,
      allocationBytes: 200704,
      physicalBytes: 196624,
      mode: 0o444,
      // Nanoseconds as a string: a double would round the last digits.
      mtimeNs: '1796416023764500000',
      backingPath: '/tmp/ptest/tmpl.qcow2',
    });
  });

  test('one pool name per directory, stable and safe for libvirt', () => {
    expect(poolNameFor('/var/lib/libvirt/images')).toBe(poolNameFor('/var/lib/libvirt/images/'));
    expect(poolNameFor('/a')).not.toBe(poolNameFor('/b'));
    expect(poolNameFor('/a')).toMatch(/^vmp-[0-9a-f]{12}$/);
  });
});

describe('what an app VM on a template receives', () => {
  test('its files sit in its VM directory, named after it', () => {
    expect(appVmPaths({ name: 'web', vmDir: '/v' })).toEqual({
      root: '/v/web-root.qcow2',
      private: '/v/web-private.qcow2',
      configDisk: '/v/web-config.img',
    });
  });

  const input = {
    spec: testSpec(),
    credentials: { passwordHash: FAKE_HASH, agentSecret: FAKE_SECRET },
    proxyHost: '10.0.2.2',
    proxyPort: 9999,
  };

  test('the config disk lists pending Flatpaks, one per line, only when there are some', () => {
    expect(configDiskFiles(input).find((f) => f.path === 'flatpaks')).toBeUndefined();
    const file = configDiskFiles({ ...input, pendingFlatpaks: ['org.a.B', 'org.c.D'] }).find(
      (f) => f.path === 'flatpaks',
    );
    expect(file).toEqual({ path: 'flatpaks', mode: 0o644, content: 'org.a.B\norg.c.D\n' });
    expect(() => configDiskFiles({ ...input, pendingFlatpaks: ['x; rm -rf /'] })).toThrow(InputError);
  });

  test('a template kickstart installs the config-disk loader and the Flatpak installer; an app VM kickstart does not', () => {
    const common = {
      passwordHash: FAKE_HASH,
      agentSecret: FAKE_SECRET,
      agentBundle: 'console.log(1)\n',
      proxyHost: '192.168.122.1',
      proxyPort: 9999,
    };
    const template = renderKickstart(testSpec(), { ...common, template: true });
    const app = renderKickstart(testSpec(), common);
    for (const [from, to] of TEMPLATE_GUEST_FILES) {
      expect(template).toContain(`cat > ${to} << 'VMP_FILE_END'\n${fs.readFileSync(from, 'utf8')}VMP_FILE_END`);
      expect(app).not.toContain(`cat > ${to} `);
    }
    expect(template).toContain('systemctl enable vm-provisioner-config.service');
    expect(template).toContain('systemctl enable vmp-apply-identity.path');
    expect(template).toContain('systemctl --global enable vm-flatpak-install.service');
    expect(template).toContain('systemctl --global enable vm-display-bridge.service');
    for (const pkg of SEAMLESS_PACKAGES) {
      expect(template).toMatch(new RegExp(`^${pkg}$`, 'm'));
      expect(app).not.toMatch(new RegExp(`^${pkg}$`, 'm'));
    }
    expect(extractPostScripts(template)).toHaveLength(2);
  });
});
