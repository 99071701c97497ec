import { describeDomain } from '../../../src/libvirt/inspect.js';
import {
  ATTACHED_LINE,
  clientFailure,
  LABEL_RGB,
  XPRA_CLIENT_LOCKDOWN,
  xpraClientCommand,
  xpraClientEnv,
} from '../../../src/seamless/client.js';
import { LABELS } from '../../../src/spec/validate.js';
import { InputError } from '../../../src/util/errors.js';

describe('the xpra client command', () => {
  test('attaches to the socket with the [NAME] title, the label border and every lockdown flag', () => {
    const { file, args } = xpraClientCommand('work-vm', 'orange', '/vms/work-vm-display.sock');
    expect(file).toBe('xpra');
    expect(args.slice(0, 2)).toEqual(['attach', 'socket:///vms/work-vm-display.sock']);
    expect(args).toContain('--title=[work-vm] @title@');
    expect(args).toContain('--border=#f57900,5');
    for (const flag of XPRA_CLIENT_LOCKDOWN) expect(args).toContain(flag);
    for (const closed of [
      'clipboard',
      'file-transfer',
      'open-url',
      'open-files',
      'printing',
      'notifications',
      'webcam',
      'mmap',
      'remote-logging',
      'opengl',
    ]) {
      expect(args).toContain(`--${closed}=no`);
    }
    expect(args).toContain('--encodings=rgb,png');
  });

  test('every one of the eight labels has a colour', () => {
    for (const label of LABELS) expect(LABEL_RGB[label]).toMatch(/^#[0-9a-f]{6}$/);
  });

  test('refuses a bad name or socket path', () => {
    expect(() => xpraClientCommand('bad name', 'red', '/x.sock')).toThrow(InputError);
    expect(() => xpraClientCommand('vm', 'red', 'relative.sock')).toThrow(InputError);
    expect(() => xpraClientCommand('vm', 'red', '/x\n.sock')).toThrow(InputError);
  });

  test('the environment carries the display and nothing of the session: no D-Bus, no agents, no xpra config', () => {
    const env = xpraClientEnv(
      {
        DISPLAY: ':5',
        XAUTHORITY: '/home/u/.Xauthority',
        DBUS_SESSION_BUS_ADDRESS: 'unix:path=/run/user/1000/bus',
        SSH_AUTH_SOCK: '/run/user/1000/ssh',
        GPG_AGENT_INFO: 'x',
        HOME: '/home/u',
      },
      '/run/user/1000/vm-provisioner/seamless/vm/home',
    );
    expect(env.DISPLAY).toBe(':5');
    expect(env.XAUTHORITY).toBe('/home/u/.Xauthority');
    expect(env.HOME).toBe('/run/user/1000/vm-provisioner/seamless/vm/home');
    expect(env).not.toHaveProperty('DBUS_SESSION_BUS_ADDRESS');
    expect(env).not.toHaveProperty('SSH_AUTH_SOCK');
    expect(env).not.toHaveProperty('GPG_AGENT_INFO');
    expect(env.XPRA_SYSTEM_CONF_DIRS).toBe('');
    expect(env.XPRA_USER_CONF_DIRS).toBe('');
  });
});

describe('reading the client log', () => {
  test('the attached line', () => {
    expect(ATTACHED_LINE.test('2026-12-04 23:19:59,391 Attached to socket:///x.sock\n')).toBe(true);
    expect(ATTACHED_LINE.test('connecting to socket:///x.sock\n')).toBe(false);
  });

  test('a failure is one short printable line, whatever the guest sent', () => {
    const log = [
      '2026-12-04 23:20:19,043  keyboard settings: rules=evdev',
      '2026-12-04 23:20:19,050 Error: failed to query sound subsystem:',
      `2026-12-04 23:20:19,104 Error: received uninterpretable nonsense: invalid packet header byte b'\\xdc\u0007\u001b[31m${'x'.repeat(500)}'`,
      '2026-12-04 23:20:19,106 Error: printing disabled:',
    ].join('\n');
    const line = clientFailure(log);
    expect(line).toMatch(/^Error: received uninterpretable nonsense/);
    expect(line.length).toBeLessThanOrEqual(163);

    expect(line).not.toMatch(/[^\x20-\x7e]/);
    expect(clientFailure('')).toBe('no output');
  });
});

describe('the display channel in domain XML', () => {
  const xml = (state: string): string => `<domain type='qemu'><name>vm</name><devices>
    <channel type='unix'><source mode='bind' path='/vms/vm-display.sock'/>
    <target type='virtio' name='org.vm-provisioner.display.0'${state}/></channel></devices></domain>`;

  test('its socket, and whether the guest has the port open (live XML)', () => {
    expect(describeDomain(xml('')).display).toEqual({ socket: '/vms/vm-display.sock' });
    expect(describeDomain(xml(" state='connected'")).display).toEqual({
      socket: '/vms/vm-display.sock',
      guestConnected: true,
    });
    expect(describeDomain(xml(" state='disconnected'")).display?.guestConnected).toBe(false);
  });
});
