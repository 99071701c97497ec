import type { VmSpec } from '../spec/types.js';
import { checkVmName } from './grammar.js';
import { renderPackagedTemplate } from './template.js';

/** The guest's login user (docs/guest-interface.md). */
export const GUEST_USER = 'user';
export const LIGHTDM_CONF_PATH = '/etc/lightdm/lightdm.conf.d/50-vm-provisioner.conf';

/**
 * LightDM drop-in: the i3 session for everyone, and (unless the spec turns it
 * off) auto-login of `user` straight into i3 with no delay.
 */
export function renderLightdmConf(spec: Pick<VmSpec, 'name' | 'enableAutoLogin'>): string {
  const autologin = spec.enableAutoLogin
    ? [`autologin-user=${GUEST_USER}`, 'autologin-user-timeout=0', 'autologin-session=i3'].join('\n')
    : '# Auto-login is off for this VM (enableAutoLogin = false): log in at the greeter.';
  return renderPackagedTemplate('templates/lightdm.conf.tmpl', {
    VM_NAME: checkVmName(spec.name),
    AUTOLOGIN: autologin,
  });
}
