import { configDiskFiles, CONFIG_DISK_FORMAT, type ConfigDiskFile } from '../../../src/configdisk/layout.js';
import { renderAgentConf } from '../../../src/render/agent-config.js';
import { renderI3Config } from '../../../src/render/i3config.js';
import { renderLightdmConf } from '../../../src/render/lightdm.js';
import { renderAppUnits } from '../../../src/render/units.js';
import { InputError } from '../../../src/util/errors.js';
import { expectGolden } from '../../support/golden.js';
import { FAKE_HASH, FAKE_PASSWORD, FAKE_SECRET, GOLDEN_SPECS } from '../../support/render-fixtures.js';

const credentials = { passwordHash: FAKE_HASH, agentSecret: FAKE_SECRET };

/** One text file per golden: every file's path, mode and content, in the disk's order. */
function listing(files: ConfigDiskFile[]): string {
  return files
    .map((f) => `==> ${f.path} (${f.mode.toString(8).padStart(4, '0')}) <==\n${f.content}`)
    .join('\n');
}

describe('configDiskFiles', () => {
  test.each(Object.keys(GOLDEN_SPECS))('the config disk of %s matches its golden file', (name) => {
    const files = configDiskFiles({
      spec: GOLDEN_SPECS[name]!,
      credentials,
      proxyHost: '10.0.2.2',
      proxyPort: 9999,
    });
    expectGolden(`configdisk/${name}.txt`, listing(files));
  });

  test("each file is the project's renderer output, the secrets are 0600 and the password is only hashed", () => {
    const spec = GOLDEN_SPECS['office-vm']!;
    const files = configDiskFiles({ spec, credentials, proxyHost: '192.168.122.1', proxyPort: 9999 });
    const byPath = new Map(files.map((f) => [f.path, f]));
    expect(byPath.get('format')!.content).toBe(`${CONFIG_DISK_FORMAT}\n`);
    expect(byPath.get('hostname')!.content).toBe('office-vm\n');
    expect(byPath.get('agent.conf')!.content).toBe(
      renderAgentConf({
        vmName: 'office-vm',
        proxyHost: '192.168.122.1',
        proxyPort: 9999,
        secretFile: '/etc/vm-provisioner/agent.secret',
      }),
    );
    expect(byPath.get('agent.secret')).toEqual({ path: 'agent.secret', mode: 0o600, content: FAKE_SECRET });
    expect(byPath.get('password.sha512')).toEqual({
      path: 'password.sha512',
      mode: 0o600,
      content: `${FAKE_HASH}\n`,
    });
    expect(byPath.get('i3/config')!.content).toBe(renderI3Config(spec));
    expect(byPath.get('lightdm/50-vm-provisioner.conf')!.content).toBe(renderLightdmConf(spec));
    const units = renderAppUnits(spec);
    expect(units).toHaveLength(2);
    for (const unit of units) expect(byPath.get(`units/${unit.fileName}`)!.content).toBe(unit.content);
    for (const file of files) expect(file.content).not.toContain(FAKE_PASSWORD);
  });

  test.each([
    [{ passwordHash: 'plaintext-password', agentSecret: FAKE_SECRET }, /invalid password hash/],
    [{ passwordHash: FAKE_HASH, agentSecret: 'short' }, /invalid agent secret/],
  ])('refuses bad credentials with a one-line InputError that does not echo them', (creds, message) => {
    const run = (): unknown =>
      configDiskFiles({
        spec: GOLDEN_SPECS['firefox-vm']!,
        credentials: creds,
        proxyHost: '10.0.2.2',
        proxyPort: 9999,
      });
    expect(run).toThrow(InputError);
    expect(run).toThrow(message);
    expect(run).not.toThrow(/plaintext-password|short/);
  });

  test('refuses a bad proxy host or port', () => {
    const spec = GOLDEN_SPECS['firefox-vm']!;
    expect(() => configDiskFiles({ spec, credentials, proxyHost: 'a b', proxyPort: 9999 })).toThrow(
      /invalid proxy host/,
    );
    expect(() => configDiskFiles({ spec, credentials, proxyHost: '10.0.2.2', proxyPort: 0 })).toThrow(
      /invalid proxy port/,
    );
  });
});
