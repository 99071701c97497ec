import {
  bridgeAddressesFromNetworkXml,
  formatAddress,
  isWildcard,
  parseListenAddress,
} from '../../../src/proxy/listen-addresses.js';
import { InputError } from '../../../src/util/errors.js';

describe('parseListenAddress', () => {
  test.each([
    ['192.168.122.1', { host: '192.168.122.1', port: 9999 }],
    ['127.0.0.1:0', { host: '127.0.0.1', port: 0 }],
    ['127.0.0.1:12345', { host: '127.0.0.1', port: 12345 }],
    ['::1', { host: '::1', port: 9999 }],
    ['[fe80::1]:8000', { host: 'fe80::1', port: 8000 }],
  ])('%s', (spec, expected) => {
    expect(parseListenAddress(spec)).toEqual(expected);
  });

  test.each([
    'localhost',
    'example.com:9999',
    '1.2.3',
    '127.0.0.1:99999',
    '127.0.0.1:',
    '[::1',
    '',
    '127.0.0.1:-1',
  ])('refuses %j with a one-line error naming it', (spec) => {
    expect(() => parseListenAddress(spec)).toThrow(InputError);
    try {
      parseListenAddress(spec);
    } catch (err) {
      expect((err as Error).message).toContain(JSON.stringify(spec).slice(1, -1));
      expect((err as Error).message).not.toContain('\n');
    }
  });

  test('formatAddress brackets IPv6', () => {
    expect(formatAddress({ host: '::1', port: 1 })).toBe('[::1]:1');
    expect(formatAddress({ host: '10.0.0.1', port: 2 })).toBe('10.0.0.1:2');
  });

  test('isWildcard spots the any-addresses', () => {
    expect(isWildcard('0.0.0.0')).toBe(true);
    expect(isWildcard('::')).toBe(true);
    expect(isWildcard('0:0::0')).toBe(true);
    expect(isWildcard('127.0.0.1')).toBe(false);
    expect(isWildcard('::1')).toBe(false);
  });
});

describe('bridgeAddressesFromNetworkXml', () => {
  test("reads the default network's bridge addresses, IPv4 and IPv6", () => {
    const xml = `<network>
  <name>default</name>
  <uuid>0f3b0b3e-4a4e-4c1c-9d3b-2d6f0e0f1a2b</uuid>
  <forward mode='nat'><nat><port start='1024' end='65535'/></nat></forward>
  <bridge name='virbr0' stp='on' delay='0'/>
  <mac address='52:54:00:12:34:56'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp><range start='192.168.122.2' end='192.168.122.254'/></dhcp>
  </ip>
  <ip family="ipv6" address="fd00:1::1" prefix="64"/>
</network>`;
    expect(bridgeAddressesFromNetworkXml(xml)).toEqual(['192.168.122.1', 'fd00:1::1']);
  });

  test('a network without an address gives none', () => {
    expect(
      bridgeAddressesFromNetworkXml("<network><name>isolated</name><bridge name='virbr9'/></network>"),
    ).toEqual([]);
  });
});
