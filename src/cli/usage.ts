import type { CommandModule } from 'yargs';
import {
  describeCli,
  describeCommand,
  flagSpellings,
  takesValue,
  type CommandInfo,
} from './completion/model.js';

/**
 * Usage mistakes yargs would report in its own words ("Not enough non-option
 * arguments: got 0, need at least 1", a bare "Did you mean list?"), checked
 * first so the user reads which command or argument is wrong.
 */

/** What to tell a user who left out a positional; other commands get the generic "missing NAME". */
const MISSING: Record<string, string> = {
  'start name': 'name the VM to start',
  'stop name': 'name the VM to stop',
  'pause name': 'name the VM to pause',
  'resume name': 'name the VM to resume',
  'destroy name': 'name the VM to destroy',
  'console name': 'name the VM whose console to attach to',
  'snapshot create name': 'name the VM to snapshot',
  'snapshot create snapshot': 'name the snapshot to create',
  'snapshot list name': 'name the VM whose snapshots to list',
  'snapshot revert name': 'name the VM to revert',
  'snapshot revert snapshot': 'name the snapshot to revert to',
  'snapshot delete name': 'name the VM whose snapshot to delete',
  'snapshot delete snapshot': 'name the snapshot to delete',
  'template create name': 'name the template to create',
  'template import name': 'name the template to import',
  'template import disk': 'name the disk image to import',
  'template update name': 'name the template to update',
  'template destroy name': 'name the template to destroy',
  'clipboard action': 'say copy or paste',
  'clipboard name': 'name the VM whose clipboard to use',
  'completion shell': 'name the shell: bash, zsh or fish',
  'get name': 'name the VM or template whose settings to show',
  'set name': 'name the VM or template to change',
  'set key': 'name the setting to change (see vm-provisioner get NAME)',
  'apply file': 'name the TOML file that declares the VMs',
  'logs name': 'name the VM whose log to show',
  'run name': 'name the VM to run the command in',
  'open name': 'name the VM to open the file in',
  'copy-to-vm name': 'name the VM to copy the files into',
  'copy-to-vm files': 'name the host files to copy',
  'launchers action': 'say sync',
};

export function missingMessage(command: CommandInfo, positional: string): string {
  const where = command.path.join(' ');
  return `${where}: ${MISSING[`${where} ${positional}`] ?? `missing ${positional.toUpperCase()}; see vm-provisioner ${where} --help`}`;
}

/** Optimal string alignment distance: a swapped pair of letters counts as one typo. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
      }
    }
  }
  return d[a.length]![b.length]!;
}

/** The one close command name, if any: a typo or two (one in a short word), or a unique prefix. */
export function suggest(word: string, names: readonly string[]): string | undefined {
  const allowed = word.length <= 4 ? 1 : 2;
  const scored = names
    .map((name) => ({ name, d: editDistance(word, name) }))
    .filter(({ d }) => d <= allowed)
    .sort((x, y) => x.d - y.d);
  if (scored.length > 0) return scored[0]!.name;
  const prefixed = names.filter((n) => word.length >= 2 && n.startsWith(word));
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

function visible(command: CommandInfo): CommandInfo[] {
  return command.subcommands.filter((c) => !c.hidden);
}

/**
 * The usage error in argv, if there is one this check can name: an unknown
 * command or subcommand, or a missing positional. Anything else (bad options,
 * --help anywhere, a leading option) is left to yargs.
 */
export function usageProblem(
  argv: readonly string[],
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  commands: CommandModule<any, any>[],
): string | undefined {
  // `lst --help` (and so `help lst`) is still an unknown command; `start --help` needs no name.
  const helpOnly = argv.some((a) => a === '--help' || a === '-h' || a === '--version');
  // Only the command being run is described (its builder run against a recorder), not all of them.
  const first = argv[0];
  const chosen = commands.find((c) => String(c.command ?? '').split(/\s+/)[0] === first);
  let command = chosen
    ? { ...describeCli([]), subcommands: [describeCommand(chosen)] }
    : describeCli(commands);
  let i = 0;
  // The command words come first, as in every example and the synopsis.
  while (command.subcommands.length > 0) {
    const word = argv[i];
    if (word === undefined || word.startsWith('-')) return undefined;
    const next = command.subcommands.find((c) => c.path[c.path.length - 1] === word);
    if (next === undefined) {
      const typed = [...command.path, word].join(' ');
      const close = suggest(
        word,
        visible(command).map((c) => c.path[c.path.length - 1]!),
      );
      const prefix = command.path.length > 0 ? `${command.path.join(' ')} ` : '';
      return `unknown command '${typed}'${close ? ` (did you mean ${prefix}${close}?)` : ''}`;
    }
    command = next;
    i++;
  }
  if (helpOnly) return undefined;
  let given = 0;
  const valueFlags = new Set(command.options.filter(takesValue).flatMap(flagSpellings));
  for (; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--') break;
    if (word.startsWith('-') && word !== '-') {
      if (valueFlags.has(word)) i++;
      continue;
    }
    given++;
  }
  const missing = command.positionals.filter((p) => p.required)[given];
  return missing ? missingMessage(command, missing.name) : undefined;
}
