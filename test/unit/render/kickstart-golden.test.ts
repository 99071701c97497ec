import { renderKickstart } from '../../../src/render/kickstart.js';
import { renderI3Config } from '../../../src/render/i3config.js';
import { renderLightdmConf } from '../../../src/render/lightdm.js';
import { renderAgentConf } from '../../../src/render/agent-config.js';
import { renderAgentUnit, renderAppUnits, renderSessionTarget } from '../../../src/render/units.js';
import { expectGolden } from '../../support/golden.js';
import { GOLDEN_INPUTS, GOLDEN_SPECS } from '../../support/render-fixtures.js';

describe('golden kickstarts', () => {
  for (const [name, spec] of Object.entries(GOLDEN_SPECS)) {
    test(`${name}.ks`, () => {
      expectGolden(`kickstart/${name}.ks`, renderKickstart(spec, GOLDEN_INPUTS[name]!));
    });
  }
});

describe('golden config files', () => {
  test('i3 config', () => {
    expectGolden('render/i3config', renderI3Config(GOLDEN_SPECS['firefox-vm']!));
  });
  test('LightDM drop-in with and without auto-login', () => {
    expectGolden('render/lightdm-autologin.conf', renderLightdmConf(GOLDEN_SPECS['firefox-vm']!));
    expectGolden('render/lightdm-greeter.conf', renderLightdmConf(GOLDEN_SPECS['office-vm']!));
  });
  test('agent.conf', () => {
    expectGolden(
      'render/agent.conf',
      renderAgentConf({
        vmName: 'firefox-vm',
        proxyHost: '192.168.122.1',
        proxyPort: 9999,
        secretFile: '/etc/vm-provisioner/agent.secret',
      }),
    );
  });
  test('units', () => {
    for (const unit of [
      renderSessionTarget(),
      renderAgentUnit(),
      ...renderAppUnits(GOLDEN_SPECS['comms-vm']!),
    ]) {
      expectGolden(`render/units/${unit.fileName}`, unit.content);
    }
  });
});
