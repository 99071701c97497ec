import fs from 'node:fs';
// Static: loaded with this module, so `list --json` starts opening libvirt without waiting for another file.
import { dropEarlyProbe, openEarly, probeEarly } from '../libvirt/early-open.js';
import { commands } from './commands/index.js';
import { lookUpHelp, mayAskForHelp, yargsSpeaksEnglish, type HelpBook } from './help-book.js';

/**
 * Command lines answered without loading yargs (about 50 ms of start-up on its
 * own) or any command but the one asked for (docs/architecture.md, "Start-up"):
 *
 * - help: `--help`, `-h`, `help`, `help CMD`, `CMD --help`, `--version`, from
 *   the text yargs printed at build time (help.json beside the built CLI; a
 *   unit test keeps it equal to yargs' own output, page by page), where yargs
 *   would print English;
 * - the plainest lines of the commands people run most, `list --json` and
 *   `start NAME` (SIMPLE_LINES): the command's own yargs handler runs with the
 *   arguments yargs would have given it, and errors are reported as the yargs
 *   path reports them.
 *
 * Anything else, or any variation of these (another flag, a flag twice, a
 * narrow terminal), returns undefined and goes through yargs as before.
 */
export async function fastPath(argv: readonly string[]): Promise<number | undefined> {
  const help = yargsSpeaksEnglish(process.env) && mayAskForHelp(argv) ? readHelpBook() : undefined;
  if (help) {
    const text = lookUpHelp(help, argv, process.stdout.isTTY ? process.stdout.columns : undefined);
    if (text !== undefined) {
      process.stdout.write(text);
      return 0;
    }
  }
  const simple = simpleLine(argv);
  if (!simple) return undefined;
  try {
    const entry = commands.find((c) => c.name === simple.command)!;
    const connect = simple.args.connect as string | undefined;
    if (simple.command === 'list') {
      // libvirt opens (a test:/// file is parsed) on a libuv thread while the command's modules load.
      openEarly(connect);
    }
    // The daemon's probe runs as a process meanwhile (src/libvirt/early-open.ts).
    probeEarly(connect);
    const module = await entry.load();
    await module.handler({ _: [simple.command], $0: 'vm-provisioner', ...simple.args });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    const { reportError } = await import('./run.js');
    return reportError(err);
  } finally {
    dropEarlyProbe();
  }
}

function readHelpBook(): HelpBook | undefined {
  try {
    return JSON.parse(fs.readFileSync(new URL('./help.json', import.meta.url), 'utf8')) as HelpBook;
  } catch {
    // Not built (run from source): yargs prints the help.
    return undefined;
  }
}

interface SimpleShape {
  /** Positional names, each required, in order. */
  positionals: string[];
  /** Boolean flags with their defaults (`--x` sets, `--no-x` clears; undefined: no default). */
  booleans: Record<string, boolean | undefined>;
  /** Number flags, never given on a simple line: the handler gets their defaults. */
  numbers?: Record<string, number>;
  /** String flags (`--x VALUE` or `--x=VALUE`), absent unless given. */
  strings: string[];
  /** Booleans that must be given as true for the line to be simple. */
  required?: string[];
}

/** The lines taken without yargs: each shape must match the command's yargs options exactly (a test checks). */
export const SIMPLE_LINES: Record<string, SimpleShape> = {
  list: {
    positionals: [],
    booleans: { json: false, disposables: false },
    strings: ['connect'],
    required: ['json'],
  },
  start: {
    positionals: ['name'],
    booleans: { viewer: true, seamless: undefined },
    strings: ['connect'],
    numbers: { 'seamless-timeout': 300 },
  },
};

/**
 * The command and the arguments yargs would hand its handler, for a line made
 * only of the shape's positionals (not starting with '-') and flags, each flag
 * at most once; undefined for any other line.
 */
export function simpleLine(
  argv: readonly string[],
): { command: string; args: Record<string, string | number | boolean | undefined> } | undefined {
  const command = argv[0];
  if (command === undefined || !Object.prototype.hasOwnProperty.call(SIMPLE_LINES, command)) return undefined;
  const shape = SIMPLE_LINES[command]!;
  const args: Record<string, string | number | boolean | undefined> = { ...shape.booleans };
  for (const flag of shape.strings) args[flag] = undefined;
  // yargs hands a handler each dashed flag under its camel-case name too.
  for (const [flag, value] of Object.entries(shape.numbers ?? {})) {
    args[flag] = value;
    args[flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())] = value;
  }
  const seen = new Set<string>();
  const positionals: string[] = [];
  for (let i = 1; i < argv.length; i++) {
    const word = argv[i]!;
    if (!word.startsWith('-')) {
      positionals.push(word);
      continue;
    }
    const [flag, value] = word.startsWith('--') ? splitFlag(word.slice(2)) : ['', undefined];
    const bare = flag.startsWith('no-') ? flag.slice(3) : flag;
    if (seen.has(bare)) return undefined;
    seen.add(bare);
    if (value === undefined && Object.prototype.hasOwnProperty.call(shape.booleans, bare)) {
      args[bare] = flag === bare;
    } else if (flag === bare && shape.strings.includes(flag)) {
      const given = value ?? argv[++i];
      if (given === undefined || (value === undefined && given.startsWith('-'))) return undefined;
      args[flag] = given;
    } else return undefined;
  }
  if (positionals.length !== shape.positionals.length) return undefined;
  shape.positionals.forEach((name, i) => (args[name] = positionals[i]));
  if ((shape.required ?? []).some((flag) => args[flag] !== true)) return undefined;
  return { command, args };
}

function splitFlag(text: string): [string, string | undefined] {
  const eq = text.indexOf('=');
  return eq < 0 ? [text, undefined] : [text.slice(0, eq), text.slice(eq + 1)];
}
