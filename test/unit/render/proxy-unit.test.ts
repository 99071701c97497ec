import fs from 'node:fs';
import { renderProxyUnit, SHIPPED_PROXY_UNIT_INPUT } from '../../../src/render/proxy-unit.js';
import { InputError } from '../../../src/util/errors.js';
import { expectGolden } from '../../support/golden.js';

describe('the proxy user unit', () => {
  test('the shipped systemd/vm-provisioner-proxy.service is the unit for a global npm install', () => {
    expect(fs.readFileSync('systemd/vm-provisioner-proxy.service', 'utf8')).toBe(
      renderProxyUnit(SHIPPED_PROXY_UNIT_INPUT),
    );
  });

  test('runs node and the CLI by absolute path, quoting and escaping for systemd (golden)', () => {
    const text = renderProxyUnit({
      node: '/opt/node v20/bin/node',
      cli: '/home/ann/50%$off/vm-provisioner/dist/src/cli/main.js',
      connect: 'qemu+ssh://ann@vmhost/system?keyfile=%2Fk',
      documentation: ['man:vm-provisioner(1)', '/home/ann/50%$off/vm-provisioner/README.md'],
    });
    expectGolden('systemd/proxy-unit-quoted.service', text);
    expect(text).toContain(
      'ExecStart="/opt/node v20/bin/node" /home/ann/50%%$$off/vm-provisioner/dist/src/cli/main.js proxy --connect qemu+ssh://ann@vmhost/system?keyfile=%%2Fk\n',
    );
    expect(text).toContain(
      'Documentation=man:vm-provisioner(1) file:///home/ann/50%%25$off/vm-provisioner/README.md\n',
    );
  });

  test.each([
    [{ node: 'node' }, /node binary "node" must be an absolute path/],
    [
      { cli: '/a/"b"/main.js' },
      /CLI entry file .* must be an absolute path of printable ASCII without quotes/,
    ],
    [{ cli: '/a/b\nExecStartPre=/bin/rm' }, /CLI entry file/],
    [{ cli: '/a/../etc/main.js' }, /CLI entry file/],
    [{ connect: 'qemu:///system --x y' }, /invalid libvirt URI/],
    [{ documentation: [] }, /needs a Documentation= entry/],
    [{ documentation: ['http://example.org/x\n'] }, /documentation file/],
  ])('refuses %p with one line', (change, expected) => {
    const attempt = (): string => renderProxyUnit({ ...SHIPPED_PROXY_UNIT_INPUT, ...change });
    expect(attempt).toThrow(InputError);
    expect(attempt).toThrow(expected);
    try {
      attempt();
    } catch (err) {
      expect((err as Error).message).not.toContain('\n');
    }
  });
});
