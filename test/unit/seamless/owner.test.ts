import { displayOwnerOption, localDisplayOwner } from '../../../src/seamless/owner.js';
import { agentChannel, displayChannel } from '../../../src/render/domain-xml.js';

/**
 * The display socket belongs to the CLI's user when libvirt runs on this host
 * (docs/seamless.md, "Transport"): on qemu:///system QEMU's user would own it
 * and only root could attach.
 */
const ids = { uid: () => 1000, gid: () => 1001 };

test.each([
  ['qemu:///system', { uid: 1000, gid: 1001 }],
  ['qemu:///session', { uid: 1000, gid: 1001 }],
  ['qemu+unix:///system?socket=/run/libvirt/libvirt-sock', { uid: 1000, gid: 1001 }],
  ['qemu+ssh://root@host/system', undefined],
  ['qemu+tcp://host/system', undefined],
  ['test:///default', undefined],
])('%s: owner %j', (uri, owner) => {
  expect(localDisplayOwner(uri, ids)).toEqual(owner);
});

test('no owner where the platform has no uids', () => {
  expect(localDisplayOwner('qemu:///system', {})).toBeUndefined();
});

test('the options are absent without an owner', () => {
  expect(displayOwnerOption('qemu+ssh://host/system')).toEqual({});
});

test("a local libvirt's VMs also get the proxy's socket for the agent link (docs/protocol.md, Transport)", () => {
  const uid = process.getuid!();
  expect(displayOwnerOption('qemu:///system')).toEqual({
    displayOwner: { uid, gid: process.getgid!() },
    agentSocket: `/tmp/vm-provisioner-agents-${uid}/agent.sock`,
  });
});

test('the agent channel: QEMU connects to the socket, reconnects after a second, and never relabels it', () => {
  expect(agentChannel('/tmp/vm-provisioner-agents-1000/agent.sock').node).toEqual({
    '@type': 'unix',
    source: {
      '@mode': 'connect',
      '@path': '/tmp/vm-provisioner-agents-1000/agent.sock',
      reconnect: { '@enabled': 'yes', '@timeout': 1 },
      seclabel: { '@model': 'dac', '@relabel': 'no' },
    },
    target: { '@type': 'virtio', '@name': 'org.vm-provisioner.agent.0' },
  });
});

test("the channel's source carries a DAC seclabel naming the owner, and only with one", () => {
  const owned = displayChannel('/vms/a-display.sock', { uid: 1000, gid: 1001 });
  expect(owned.node).toMatchObject({
    source: {
      '@mode': 'bind',
      '@path': '/vms/a-display.sock',
      seclabel: { '@model': 'dac', '@relabel': 'yes', label: '+1000:+1001' },
    },
  });
  expect(displayChannel('/vms/a-display.sock').node).toEqual({
    '@type': 'unix',
    source: { '@mode': 'bind', '@path': '/vms/a-display.sock' },
    target: { '@type': 'virtio', '@name': 'org.vm-provisioner.display.0' },
  });
  for (const bad of [-1, 1.5, Number.NaN]) {
    expect(() => displayChannel('/vms/a-display.sock', { uid: bad, gid: 0 })).toThrow(
      /^display socket owner .* is invalid: must be a uid or gid \(a whole number\)$/,
    );
  }
});
