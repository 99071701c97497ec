import type { VmSpec } from '../spec/types.js';
import { checkCommand, checkFlatpakId } from './grammar.js';
import { loadTemplate, renderPackagedTemplate, renderTemplate } from './template.js';

export interface UnitFile {
  /** Unit file name, e.g. `vm-app-org.mozilla.firefox.service`. */
  fileName: string;
  content: string;
}

/** User units go here, for every user (`systemctl --global enable` links them). */
export const USER_UNIT_DIR = '/etc/systemd/user';
export const AGENT_UNIT_NAME = 'vm-guest-agent.service';
export const SESSION_TARGET_NAME = 'vm-session.target';

/**
 * The ExecStart words for one auto-launch entry. A bare Flatpak ID that the
 * spec installs becomes `/usr/bin/flatpak run ID`; anything else is a command
 * line run as given (systemd finds a bare program name in /usr/bin etc.).
 */
function execWords(app: string, flatpaks: ReadonlySet<string>): string[] {
  const words = checkCommand(app);
  if (words.length === 1 && flatpaks.has(app)) return ['/usr/bin/flatpak', 'run', checkFlatpakId(app)];
  return words;
}

/** A readable unit-name stem: the Flatpak ID for `flatpak run ID`, else the program's base name. */
function unitStem(words: string[]): string {
  const head = words[0] as string;
  const base = head.slice(head.lastIndexOf('/') + 1);
  if (base === 'flatpak' && words[1] === 'run') {
    const id = words.slice(2).find((w) => !w.startsWith('-'));
    if (id && /^[A-Za-z0-9_.-]+$/.test(id)) return id;
  }
  return base.replace(/\+/g, '_');
}

/**
 * One systemd user unit per auto-launched app, started with the graphical
 * session and restarted if the app crashes. Names are unique and stable for a
 * given spec (a repeated stem gets `-2`, `-3`, …).
 */
export function renderAppUnits(spec: Pick<VmSpec, 'autoLaunchApps' | 'flatpakPackages'>): UnitFile[] {
  const flatpaks = new Set(spec.flatpakPackages.map(checkFlatpakId));
  const seen = new Map<string, number>();
  return spec.autoLaunchApps.map((app) => {
    const words = execWords(app, flatpaks);
    const stem = unitStem(words);
    const count = (seen.get(stem) ?? 0) + 1;
    seen.set(stem, count);
    const fileName = `vm-app-${stem}${count > 1 ? `-${count}` : ''}.service`;
    const content = renderPackagedTemplate('systemd/vm-app.service.tmpl', {
      APP_COMMAND: app,
      EXEC_START: words.join(' '),
    });
    return { fileName, content };
  });
}

/** The guest agent's user unit (systemd/vm-guest-agent.service, shipped as is). */
export function renderAgentUnit(): UnitFile {
  const path = `systemd/${AGENT_UNIT_NAME}`;
  return { fileName: AGENT_UNIT_NAME, content: renderTemplate(loadTemplate(path), {}, path) };
}

/** The target i3 starts to bring up graphical-session.target (see docs/kickstart.md). */
export function renderSessionTarget(): UnitFile {
  const path = `systemd/${SESSION_TARGET_NAME}`;
  return { fileName: SESSION_TARGET_NAME, content: renderTemplate(loadTemplate(path), {}, path) };
}
