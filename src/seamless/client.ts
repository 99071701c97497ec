import type { Label } from '../spec/types.js';
import { checkVmName } from '../render/grammar.js';
import { LABEL_COLOURS } from '../render/label-colours.js';
import { InputError } from '../util/errors.js';

/**
 * The host side of seamless windows (docs/seamless.md): the command line and
 * environment of the xpra client that draws a VM's app windows as host
 * windows. Pure; ./launch.ts runs it.
 */

/** The label colour xpra draws as a 5-pixel border inside every window of the VM, at xpra 3.1's fixed 60 % opacity. */
export const LABEL_RGB = LABEL_COLOURS;

export const BORDER_WIDTH = 5;
/** xpra 3.1's WindowBorder alpha: the border is the label colour at this opacity over the window. */
export const BORDER_ALPHA = 0.6;

/**
 * Every client option that narrows what the guest can make the host do. The
 * client reads no configuration file (see `xpraClientEnv`), so xpra's built-in
 * defaults are the base and these override them. What each one closes is in
 * docs/seamless.md.
 */
export const XPRA_CLIENT_LOCKDOWN: readonly string[] = [
  '--clipboard=no',
  '--file-transfer=no',
  '--open-files=no',
  '--open-url=no',
  '--printing=no',
  '--notifications=no',
  '--tray=no',
  '--system-tray=no',
  '--webcam=no',
  '--speaker=disabled',
  '--microphone=disabled',
  '--av-sync=no',
  '--bell=no',
  '--xsettings=no',
  '--sharing=no',
  '--mdns=no',
  '--mmap=no',
  '--remote-logging=no',
  '--opengl=no',
  '--input-method=none',
  '--encodings=rgb,png',
  '--compressors=none',
  '--packet-encoders=rencode',
];

export interface ClientCommand {
  file: string;
  args: string[];
}

/** `xpra attach socket://PATH` with the VM's title prefix, its label's border and the lockdown flags. */
export function xpraClientCommand(name: string, label: Label, socketPath: string): ClientCommand {
  checkVmName(name);
  const colour = LABEL_RGB[label];
  if (colour === undefined)
    throw new InputError(`label '${String(label)}' is invalid: not one of Qubes' eight`);
  // eslint-disable-next-line no-control-regex
  if (!socketPath.startsWith('/') || /[\u0000-\u001f\u007f]/.test(socketPath)) {
    throw new InputError(
      `display socket '${socketPath}' is invalid: must be absolute with no control characters`,
    );
  }
  return {
    file: 'xpra',
    args: [
      'attach',
      `socket://${socketPath}`,
      // @title@ is the guest's title, substituted by the client: whatever the guest sets, the VM's name comes first.
      `--title=[${name}] @title@`,
      `--border=${colour},${BORDER_WIDTH}`,
      ...XPRA_CLIENT_LOCKDOWN,
    ],
  };
}

/**
 * The client's whole environment: the X display it draws on and nothing of
 * the user's session it could be talked into using (no D-Bus session bus, no
 * SSH or GPG agent, no XDG dirs), HOME a private directory, and no xpra
 * configuration files, so the system's /etc/xpra (clipboard on, printing on,
 * ...) never applies.
 */
export function xpraClientEnv(hostEnv: NodeJS.ProcessEnv, privateHome: string): Record<string, string> {
  const env: Record<string, string> = {
    PATH: '/usr/bin:/bin',
    HOME: privateHome,
    XDG_RUNTIME_DIR: privateHome,
    XDG_CONFIG_HOME: `${privateHome}/config`,
    XDG_CACHE_HOME: `${privateHome}/cache`,
    LANG: 'C.UTF-8',
    XPRA_SYSTEM_CONF_DIRS: '',
    XPRA_USER_CONF_DIRS: '',
    XPRA_DEFAULT_CONF_DIRS: '',
  };
  if (hostEnv.DISPLAY) env.DISPLAY = hostEnv.DISPLAY;
  if (hostEnv.XAUTHORITY) env.XAUTHORITY = hostEnv.XAUTHORITY;
  return env;
}

/** What the client prints once its connection to the guest's server is up. */
export const ATTACHED_LINE = /^.*Attached to socket:\/\/.*$/m;

/**
 * The line of the client's log that says why it stopped, cut to one short
 * printable line: the log repeats what the guest sent (a garbage stream shows
 * up there verbatim), and that must not reach the user's terminal as is.
 */
export function clientFailure(log: string): string {
  const lines = log
    .split('\n')
    .map((l) => l.replace(/^\d{4}-\d\d-\d\d [\d:,]+ /, '').trim())
    .filter((l) => l && !/^Warning: running as root/.test(l));
  const last = (re: RegExp): string | undefined => lines.filter((l) => re.test(l)).at(-1);
  const line =
    last(
      /nonsense|invalid packet|connection (timed out|failed|lost|refused|closed)|disconnected|initialization error/i,
    ) ??
    last(/^Error: /) ??
    lines.at(-1) ??
    'no output';

  const printable = line.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > 160 ? `${printable.slice(0, 160)}...` : printable;
}
