import fs from 'node:fs';
import { lookUpHelp, yargsSpeaksEnglish, type HelpBook } from './help-book.js';

/**
 * Command lines answered without loading yargs (about 50 ms of start-up on its
 * own) or any command but the one asked for (docs/architecture.md, "Start-up"):
 *
 * - help: `--help`, `-h`, `help`, `help CMD`, `CMD --help`, `--version`, from
 *   the text yargs printed at build time (help.json beside the built CLI; a
 *   unit test keeps it equal to yargs' own output, page by page), where yargs
 *   would print English;
 * - `list --json` with at most `--connect URI`: the same function the yargs
 *   command runs, with the same output and errors.
 *
 * Anything else, or any variation of these (another flag, a flag twice, a
 * narrow terminal), returns undefined and goes through yargs as before.
 */
export async function fastPath(argv: readonly string[]): Promise<number | undefined> {
  const help = yargsSpeaksEnglish(process.env) ? readHelpBook() : undefined;
  if (help) {
    const text = lookUpHelp(help, argv, process.stdout.isTTY ? process.stdout.columns : undefined);
    if (text !== undefined) {
      process.stdout.write(text);
      return 0;
    }
  }
  const list = listJsonArgs(argv);
  if (list) {
    try {
      const { listedVms, printVms } = await import('./commands/list.js');
      printVms(await listedVms(list.connect), true);
      return 0;
    } catch (err) {
      // Reported exactly as the yargs path reports it.
      const { reportError } = await import('./run.js');
      return reportError(err);
    }
  }
  return undefined;
}

function readHelpBook(): HelpBook | undefined {
  try {
    return JSON.parse(fs.readFileSync(new URL('./help.json', import.meta.url), 'utf8')) as HelpBook;
  } catch {
    // Not built (run from source): yargs prints the help.
    return undefined;
  }
}

/** `list --json [--connect URI | --connect=URI]` in any order, each once; undefined for any other line. */
export function listJsonArgs(argv: readonly string[]): { connect: string | undefined } | undefined {
  if (argv[0] !== 'list') return undefined;
  let json = false;
  let connect: string | undefined;
  for (let i = 1; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--json' && !json) json = true;
    else if (
      word === '--connect' &&
      connect === undefined &&
      i + 1 < argv.length &&
      !argv[i + 1]!.startsWith('-')
    )
      connect = argv[++i];
    else if (word.startsWith('--connect=') && connect === undefined)
      connect = word.slice('--connect='.length);
    else return undefined;
  }
  return json ? { connect } : undefined;
}
