import { parseDominfo } from '../../../src/libvirt/virsh.js';

/** `virsh dominfo` as the virsh adapter reads it: state, memory, vCPUs and (running) CPU time. */
describe('parseDominfo', () => {
  const running = [
    'Id:             1',
    'Name:           test',
    'State:          running',
    'CPU(s):         2',
    'CPU time:       12.5s',
    'Max memory:     8388608 KiB',
    'Used memory:    2097152 KiB',
  ].join('\n');

  test('a running domain: its CPU time in ns beside the rest', () => {
    expect(parseDominfo('test', running)).toEqual({
      name: 'test',
      state: 'running',
      maxMemoryKiB: 8388608,
      memoryKiB: 2097152,
      vcpus: 2,
      cpuTimeNs: 12_500_000_000,
    });
  });

  test('a shut-off domain has no CPU time line: none is made up', () => {
    const off = running
      .replace('State:          running', 'State:          shut off')
      .replace(/^CPU time.*\n/m, '');
    expect(parseDominfo('test', off)).not.toHaveProperty('cpuTimeNs');
  });
});
