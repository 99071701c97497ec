import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import {
  bridgeAddressesFromNetworkXml,
  defaultListenAddresses,
} from '../../../src/proxy/listen-addresses.js';
import { describeWith, LIBVIRT_TEST_URI, probeLibvirt, type Probe } from '../../support/services.js';

const virsh = (...args: string[]): string =>
  execFileSync('virsh', ['-c', LIBVIRT_TEST_URI, ...args], { encoding: 'utf8', timeout: 15_000 });

describeWith(probeLibvirt(), 'default listen addresses from libvirt')('default listen addresses', () => {
  test("are the default network's bridge addresses when it is active, plus 127.0.0.1, never a wildcard", async () => {
    const log: string[] = [];
    const addrs = await defaultListenAddresses({
      connectUri: LIBVIRT_TEST_URI,
      network: 'default',
      port: 0,
      log: (l) => log.push(l),
    });
    const active = /^Active:\s*yes/im.test(virsh('net-info', 'default'));
    const bridge = active ? bridgeAddressesFromNetworkXml(virsh('net-dumpxml', 'default')) : [];
    expect(addrs.map((a) => a.host)).toEqual([...bridge.filter((h) => h !== '127.0.0.1'), '127.0.0.1']);
    expect(addrs.every((a) => a.port === 0)).toBe(true);
    expect(addrs.some((a) => a.host === '0.0.0.0' || a.host === '::')).toBe(false);
    if (!active) expect(log).toEqual(['libvirt network default is not active; not listening on its bridge']);
  });

  test('a network that does not exist falls back to 127.0.0.1 with a logged reason', async () => {
    const log: string[] = [];
    const addrs = await defaultListenAddresses({
      connectUri: LIBVIRT_TEST_URI,
      network: 'vmp-t-proto-nosuch',
      port: 9,
      log: (l) => log.push(l),
    });
    expect(addrs).toEqual([{ host: '127.0.0.1', port: 9 }]);
    expect(log[0]).toMatch(
      /^cannot read libvirt network vmp-t-proto-nosuch at .*listening on 127\.0\.0\.1 only$/,
    );
  });
});

function probeSystemdAnalyze(): Probe {
  try {
    execFileSync('systemd-analyze', ['--version'], { stdio: 'ignore', timeout: 10_000 });
    return { available: true, reason: '' };
  } catch (err) {
    return { available: false, reason: `systemd-analyze not runnable: ${(err as Error).message}` };
  }
}

describeWith(probeSystemdAnalyze(), 'proxy systemd unit')('systemd/vm-provisioner-proxy.service', () => {
  const unit = 'systemd/vm-provisioner-proxy.service';

  test('runs the proxy by absolute paths (no PATH lookup), restarts on failure, and passes systemd-analyze verify', () => {
    const text = readFileSync(unit, 'utf8');
    expect(text).toMatch(
      /^ExecStart=\/usr\/bin\/node \/usr\/local\/lib\/node_modules\/vm-provisioner\/dist\/src\/cli\/main\.js proxy$/m,
    );
    expect(text).toMatch(/^Restart=on-failure$/m);
    expect(text).toMatch(/^WantedBy=default\.target$/m);
    // Unknown keys are only warned about on stderr (exit 0), so stderr must be empty too.
    const r = spawnSync('systemd-analyze', ['verify', `./${unit}`], { encoding: 'utf8', timeout: 20_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
