import type { VmSpec } from '../spec/types.js';
import { checkVmName } from './grammar.js';
import { renderPackagedTemplate } from './template.js';

/** Where the kickstart installs the i3 config: system-wide, so it applies before any user config exists. */
export const I3_CONFIG_PATH = '/etc/i3/config';

/**
 * The guest's i3 config: borderless windows, kitty on Mod+Return, dmenu on
 * Mod+d, and the `exec` lines i3 needs because it ignores XDG autostart
 * (spice-vdagent, the systemd session target that starts apps and the agent).
 */
export function renderI3Config(spec: Pick<VmSpec, 'name'>): string {
  return renderPackagedTemplate('templates/i3config.tmpl', { VM_NAME: checkVmName(spec.name) });
}
