import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConfigError,
  loadAgentConfig,
  parseAgentConf,
  readSecret,
  resolveAgentConfig,
} from '../../../guest-agent/src/config.js';

/** Scratch directories, removed after each test. */
const scratch: string[] = [];
const scratchDir = (prefix: string): string => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  scratch.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const CONF = `# written by the kickstart
VMP_VM_NAME=firefox-vm
VMP_PROXY_HOST=192.168.122.1
VMP_PROXY_PORT=9999
VMP_SECRET_FILE=/etc/vm-provisioner/agent.secret
`;

describe('agent.conf', () => {
  test('the documented example parses to the agent settings', () => {
    expect(resolveAgentConfig(parseAgentConf(CONF), {})).toEqual({
      vmName: 'firefox-vm',
      proxyHost: '192.168.122.1',
      proxyPort: 9999,
      secretFile: '/etc/vm-provisioner/agent.secret',
      display: ':0',
      awaitIdentity: false,
    });
  });

  test('VMP_AWAIT_IDENTITY=1 makes a clone source; anything but 0 or 1 is refused', () => {
    expect(resolveAgentConfig(parseAgentConf(`${CONF}VMP_AWAIT_IDENTITY=1\n`), {}).awaitIdentity).toBe(true);
    expect(() => resolveAgentConfig(parseAgentConf(`${CONF}VMP_AWAIT_IDENTITY=yes\n`), {})).toThrow(
      'VMP_AWAIT_IDENTITY "yes" must be 0 or 1',
    );
  });

  test('VMP_* environment variables override the file; DISPLAY is the fallback display', () => {
    const cfg = resolveAgentConfig(parseAgentConf(CONF), {
      VMP_PROXY_PORT: '40000',
      VMP_PROXY_HOST: '127.0.0.1',
      DISPLAY: ':5',
    });
    expect(cfg.proxyPort).toBe(40000);
    expect(cfg.proxyHost).toBe('127.0.0.1');
    expect(cfg.display).toBe(':5');
    expect(resolveAgentConfig(parseAgentConf(CONF), { VMP_DISPLAY: ':7', DISPLAY: ':5' }).display).toBe(':7');
  });

  test('the port defaults to 9999', () => {
    const text = CONF.replace('VMP_PROXY_PORT=9999\n', '');
    expect(resolveAgentConfig(parseAgentConf(text), {}).proxyPort).toBe(9999);
  });

  test.each([
    ['VMP_PROXY_PORT=70000', /VMP_PROXY_PORT "70000" must be an integer from 1 to 65535/],
    ['VMP_PROXY_PORT=0', /VMP_PROXY_PORT "0" must be/],
    ['VMP_VM_NAME=bad name;rm', /VMP_VM_NAME "bad name;rm" must be/],
    ['VMP_PROXY_HOST=$(reboot)', /VMP_PROXY_HOST "\$\(reboot\)" must be an IP address or host name/],
    ['VMP_SECRET_FILE=relative/secret', /VMP_SECRET_FILE "relative\/secret" must be an absolute path/],
  ])('a bad value (%s) is a one-line error naming the value and the rule', (line, message) => {
    const key = line.split('=')[0] as string;
    const text = CONF.split('\n')
      .filter((l) => !l.startsWith(`${key}=`))
      .concat(line)
      .join('\n');
    const err = (() => {
      try {
        resolveAgentConfig(parseAgentConf(text), {});
      } catch (e) {
        return e as Error;
      }
      throw new Error('accepted');
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toMatch(message);
    expect(err.message).not.toContain('\n');
  });

  test('unknown keys, lines without "=" and missing keys are errors with the line number', () => {
    expect(() => parseAgentConf('VMP_VM_NAME=a\nVMP_TYPO=1', 'x.conf')).toThrow(
      'x.conf:2: unknown key "VMP_TYPO"',
    );
    expect(() => parseAgentConf('just text', 'x.conf')).toThrow('x.conf:1: "just text" is not KEY=value');
    expect(() => resolveAgentConfig(parseAgentConf('VMP_VM_NAME=a'), {}, 'x.conf')).toThrow(
      'x.conf: VMP_PROXY_HOST is missing',
    );
  });

  test('loadAgentConfig reads VMP_AGENT_CONFIG, and works from the environment alone when the default file is absent', () => {
    const dir = scratchDir('vmp-agent-conf-');
    const file = join(dir, 'agent.conf');
    writeFileSync(file, CONF);
    expect(loadAgentConfig({ VMP_AGENT_CONFIG: file }).vmName).toBe('firefox-vm');
    expect(() => loadAgentConfig({ VMP_AGENT_CONFIG: join(dir, 'nope.conf') })).toThrow(
      /config file .*nope\.conf/,
    );
    const envOnly = {
      VMP_VM_NAME: 'env-vm',
      VMP_PROXY_HOST: '10.0.2.2',
      VMP_SECRET_FILE: '/run/s',
    };
    // The default path does not exist on the test machine; the environment suffices.
    expect(loadAgentConfig(envOnly)).toMatchObject({
      vmName: 'env-vm',
      proxyHost: '10.0.2.2',
      proxyPort: 9999,
    });
  });

  test('readSecret returns the hex-decoded 32-byte key and refuses anything but 64 hex digits', () => {
    const dir = scratchDir('vmp-agent-secret-');
    const hex = '0123456789abcdef'.repeat(4);
    writeFileSync(join(dir, 'ok'), `${hex}\n`);
    writeFileSync(join(dir, 'short'), 'abc\n');
    writeFileSync(join(dir, 'upper'), hex.toUpperCase());
    expect(readSecret(join(dir, 'ok'))).toEqual(Buffer.from(hex, 'hex'));
    expect(readSecret(join(dir, 'ok'))).toHaveLength(32);
    expect(() => readSecret(join(dir, 'short'))).toThrow(/must be 64 lower-case hex digits/);
    expect(() => readSecret(join(dir, 'upper'))).toThrow(/must be 64 lower-case hex digits/);
    expect(() => readSecret(join(dir, 'missing'))).toThrow(/secret file .*missing/);
  });
});
