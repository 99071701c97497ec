import type { Label } from '../spec/types.js';

/**
 * Launchers (docs/launchers.md): one freedesktop .desktop entry per
 * auto-launched app of a VM, and its icon, an SVG in the VM's label colour.
 * Pure: the service decides where the files go (src/service/launchers.ts).
 * Everything that reaches a file is checked against a grammar first and then
 * escaped as the Desktop Entry Specification 1.5 says.
 */

import { LABEL_COLOURS } from './label-colours.js';
export { LABEL_COLOURS } from './label-colours.js';

/** Every file we write starts with this; sync touches only files that do. */
export const LAUNCHER_PREFIX = 'vm-provisioner-';
/** A key only our entries carry: a file with our prefix but without it is someone else's, and is left alone. */
export const LAUNCHER_MARKER_KEY = 'X-VM-Provisioner-Launcher';
export const ICON_MARKER = '<!-- vm-provisioner launcher icon -->';

/** `vm-provisioner-<vm>_<app>`: `_` is in no VM name and no app slug, so the split is unambiguous. */
export const LAUNCHER_ID =
  /^vm-provisioner-([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)_([a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?)$/;

export class LauncherError extends Error {
  override readonly name = 'LauncherError';
}

/** A word that needs no quoting in any of our files: the auto-launch grammar's characters (src/spec/validate.ts). */
const APP_WORD = /^[A-Za-z0-9_@+=:,./~-]+$/;
/** Absolute paths of the CLI's node and script: ASCII, no spaces or quotes (Exec is ASCII, and we keep it plain). */
const HOST_PATH = /^(?:\/[A-Za-z0-9_.+@,=~-]+)+$/;

/** The app's words: the auto-launch command split at its single spaces, each checked again. */
export function appArgv(command: string): string[] {
  const words = command.split(' ');
  if (words.length === 0 || words.length > 64 || !words.every((w) => APP_WORD.test(w))) {
    throw new LauncherError(
      `auto-launch command ${JSON.stringify(command)} is not a word list of A-Z a-z 0-9 _ @ + = : , . / ~ -`,
    );
  }
  return words;
}

/**
 * What the menu calls the app: the Flatpak ID's last element for `flatpak run
 * [OPTIONS] ID`, else the program's base name.
 */
export function appDisplayName(argv: string[]): string {
  const [program = '', ...rest] = argv;
  const base = program.slice(program.lastIndexOf('/') + 1);
  if (base === 'flatpak' && rest[0] === 'run') {
    const id = rest.slice(1).find((w) => !w.startsWith('-'));
    if (id) return id.slice(id.lastIndexOf('.') + 1);
  }
  return base;
}

/** The app part of file names: lower-case letters, digits and '-', at most 40 characters. */
export function appSlug(displayName: string): string {
  const slug = displayName
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .slice(0, 40)
    .replace(/^-+|-+$/g, '');
  return slug === '' ? 'app' : slug;
}

/** Reserved characters of the Exec key: an argument holding any of them must be quoted. */
const EXEC_RESERVED = /[ \t\n"'\\><~|&;$*?#()`]/;

/**
 * One Exec argument, escaped as the Desktop Entry Specification says: quoted
 * when it holds a reserved character, with `"`, `` ` ``, `$` and `\` escaped
 * inside the quotes; `%` doubled (field codes); then the string escaping of
 * every value (a backslash doubled again), which readers undo first.
 */
export function quoteExecArg(arg: string): string {
  // eslint-disable-next-line no-control-regex
  if (arg === '' || /[\u0000-\u001f\u007f-\uffff]/.test(arg)) {
    throw new LauncherError(`Exec argument ${JSON.stringify(arg)} is empty or not printable ASCII`);
  }
  const noFieldCodes = arg.replace(/%/g, '%%');
  const quoted = EXEC_RESERVED.test(arg) ? `"${noFieldCodes.replace(/["`$\\]/g, '\\$&')}"` : noFieldCodes;
  return quoted.replace(/\\/g, '\\\\');
}

/** The Exec value for an argv. */
export function execLine(argv: string[]): string {
  return argv.map(quoteExecArg).join(' ');
}

/** Undoes execLine (what a launcher does before it runs the command); for tests and checks. */
export function parseExecLine(value: string): string[] {
  const unescaped = value.replace(/\\(.)/g, (_m, c: string) =>
    c === 's' ? ' ' : c === 'n' ? '\n' : c === 't' ? '\t' : c === 'r' ? '\r' : c === '\\' ? '\\' : `\\${c}`,
  );
  const args: string[] = [];
  let i = 0;
  while (i < unescaped.length) {
    if (unescaped[i] === ' ') {
      i++;
      continue;
    }
    let arg = '';
    if (unescaped[i] === '"') {
      i++;
      while (i < unescaped.length && unescaped[i] !== '"') {
        if (unescaped[i] === '\\' && i + 1 < unescaped.length) i++;
        arg += unescaped[i++];
      }
      if (unescaped[i] !== '"')
        throw new LauncherError(`unterminated quote in Exec ${JSON.stringify(value)}`);
      i++;
    } else {
      while (i < unescaped.length && unescaped[i] !== ' ') arg += unescaped[i++];
    }
    args.push(arg.replace(/%%/g, '%'));
  }
  return args;
}

export interface LauncherInput {
  vm: string;
  label: Label;
  /** The auto-launch command as the VM's config has it (`firefox`, `flatpak run org.mozilla.firefox`). */
  command: string;
  /** How to run this install's CLI: absolute paths of node and of the CLI's main script. */
  cli: { node: string; script: string };
  /** Absolute path of the launcher's icon. */
  iconPath: string;
}

export interface Launcher {
  /** `vm-provisioner-<vm>_<app>` (the file names add .desktop and .svg). */
  id: string;
  name: string;
  argv: string[];
  desktopEntry: string;
}

function checkHostPath(what: string, value: string): string {
  if (!HOST_PATH.test(value) || value.split('/').some((s) => s === '.' || s === '..')) {
    throw new LauncherError(
      `${what} ${JSON.stringify(value)} must be an absolute path of A-Z a-z 0-9 _ . + @ , = ~ - (no spaces or quotes)`,
    );
  }
  return value;
}

/** The .desktop entry of one app of one VM; `slug` is made unique among the VM's apps by the caller. */
export function renderLauncher(input: LauncherInput, slug: string): Launcher {
  const app = appArgv(input.command);
  const name = appDisplayName(app);
  const id = `${LAUNCHER_PREFIX}${input.vm}_${slug}`;
  if (!LAUNCHER_ID.test(id)) throw new LauncherError(`launcher id ${JSON.stringify(id)} is not valid`);
  const argv = [
    checkHostPath('node', input.cli.node),
    checkHostPath('CLI script', input.cli.script),
    'run',
    input.vm,
    '--',
    ...app,
  ];
  const colour = LABEL_COLOURS[input.label];
  if (!colour) throw new LauncherError(`label ${JSON.stringify(input.label)} is not a label`);
  const lines = [
    '[Desktop Entry]',
    'Type=Application',
    // 1.4: what desktop-file-validate 0.26 (Debian 12) knows; nothing here is newer than 1.0.
    'Version=1.4',
    `Name=${input.vm}: ${name}`,
    `Comment=${name} in the VM ${input.vm} (label ${input.label}), started or resumed as needed`,
    `Icon=${checkHostPath('icon', input.iconPath)}`,
    `Exec=${execLine(argv)}`,
    'Terminal=false',
    'StartupNotify=false',
    'Categories=Utility;',
    `${LAUNCHER_MARKER_KEY}=true`,
    `X-VM-Provisioner-VM=${input.vm}`,
    '',
  ];
  return { id, name, argv, desktopEntry: lines.join('\n') };
}

/** The launcher's icon: a rounded square in the label colour with the app's initial, 48x48, scalable. */
export function renderLauncherIcon(label: Label, appName: string): string {
  const colour = LABEL_COLOURS[label];
  if (!colour) throw new LauncherError(`label ${JSON.stringify(label)} is not a label`);
  const initial = (/[A-Za-z0-9]/.exec(appName)?.[0] ?? '?').toUpperCase();
  // Light labels get dark text; the others white (contrast on yellow, green and orange).
  const text = ['yellow', 'green', 'orange'].includes(label) ? '#2e3436' : '#ffffff';
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    ICON_MARKER,
    '<svg xmlns="http://www.w3.org/2000/svg" width="48" height="48" viewBox="0 0 48 48">',
    `  <rect x="2" y="2" width="44" height="44" rx="8" ry="8" fill="${colour}" stroke="#2e3436" stroke-width="1"/>`,
    `  <text x="24" y="33" font-family="sans-serif" font-size="26" font-weight="bold" text-anchor="middle" fill="${text}">${initial}</text>`,
    '</svg>',
    '',
  ].join('\n');
}
