/**
 * The help text of every command, as yargs prints it, collected at build time
 * (scripts/gen-help.mjs writes it beside the built CLI) so that `--help`,
 * `help CMD`, `CMD --help` and `--version` print it without loading yargs or
 * any command (docs/architecture.md, "Start-up"). A unit test checks that the
 * collected text is what yargs prints, page by page.
 */

/** The width run.ts wraps help at when stdout is not a narrower terminal. */
export const HELP_WIDTH = 110;

export interface HelpBook {
  /** What `--version` prints. */
  version: string;
  /** Help pages by command path ('' for the top level, 'template create' for a subcommand). */
  pages: Record<string, string>;
  /** Alias paths to the canonical ones ('ls' -> 'list'). */
  aliases: Record<string, string>;
}

export type Run = (argv: string[]) => Promise<number>;

/** Runs the CLI in-process and returns what it printed to stdout (help goes there) and its exit code. */
export async function capture(run: Run, argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const saved = {
    stdout: process.stdout.write,
    stderr: process.stderr.write,
    log: console.log,
    error: console.error,
    warn: console.warn,
  };
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    err += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  // yargs prints through console; a test runner replaces console with its own.
  console.log = (...args: unknown[]) => void (out += `${args.join(' ')}\n`);
  console.error = (...args: unknown[]) => void (err += `${args.join(' ')}\n`);
  console.warn = console.error;
  try {
    const code = await run(argv);
    return { code, out, err };
  } finally {
    process.stdout.write = saved.stdout;
    process.stderr.write = saved.stderr;
    console.log = saved.log;
    console.error = saved.error;
    console.warn = saved.warn;
  }
}

/** The subcommands a help page lists under "Commands:", each with its aliases. */
export function listedCommands(page: string, path: string[]): { name: string; aliases: string[] }[] {
  const found: { name: string; aliases: string[] }[] = [];
  const lines = page.split('\n');
  const start = lines.indexOf('Commands:');
  if (start < 0) return found;
  for (const line of lines.slice(start + 1)) {
    if (line.trim() === '') break;
    const aliases = /\[aliases: ([^\]]+)\]/.exec(line)?.[1]?.split(', ') ?? [];
    const entry = /^ {2}vm-provisioner ((?:[^ <[\]-][^ ]* )*)/.exec(`${line} `);
    if (entry) {
      const words = entry[1]!.trim().split(' ');
      if (words.length !== path.length + 1 || words.slice(0, path.length).join(' ') !== path.join(' '))
        continue;
      found.push({ name: words[path.length]!, aliases });
    } else if (aliases.length > 0 && found.length > 0) {
      // A wrapped description: its aliases belong to the command above.
      found[found.length - 1]!.aliases.push(...aliases);
    }
  }
  return found;
}

/** Every help page yargs prints, found by walking the command tree from the top-level help. */
export async function collectHelp(run: Run): Promise<HelpBook> {
  const version = await capture(run, ['--version']);
  if (version.code !== 0) throw new Error(`--version exited ${version.code}: ${version.err}`);
  const book: HelpBook = { version: version.out, pages: {}, aliases: {} };
  const walk = async (path: string[]): Promise<void> => {
    const help = await capture(run, [...path, '--help']);
    if (help.code !== 0) throw new Error(`${[...path, '--help'].join(' ')} exited ${help.code}: ${help.err}`);
    book.pages[path.join(' ')] = help.out;
    for (const { name, aliases } of listedCommands(help.out, path)) {
      for (const alias of aliases) book.aliases[[...path, alias].join(' ')] = [...path, name].join(' ');
      await walk([...path, name]);
    }
  };
  await walk([]);
  return book;
}

/**
 * False for a line that lookUpHelp answers with undefined whatever the book
 * holds (no help asked for), so the fast path need not read the book at all.
 */
export function mayAskForHelp(argv: readonly string[]): boolean {
  return (
    (argv.length === 1 && argv[0] === '--version') ||
    argv[0] === 'help' ||
    argv.at(-1) === '--help' ||
    argv.at(-1) === '-h'
  );
}

/**
 * What the book says to print for this command line, or undefined when yargs
 * must answer it (any other flag or word, an unknown command, a terminal too
 * narrow for the collected width).
 */
export function lookUpHelp(
  book: HelpBook,
  argv: readonly string[],
  columns: number | undefined,
): string | undefined {
  if (!mayAskForHelp(argv) || (columns !== undefined && columns < HELP_WIDTH)) return undefined;
  if (argv.length === 1 && argv[0] === '--version') return book.version;
  // run.ts reads `help CMD...` as `CMD... --help`; so does the book.
  const words = argv[0] === 'help' ? [...argv.slice(1), '--help'] : [...argv];
  if (words.length === 0 || (words.at(-1) !== '--help' && words.at(-1) !== '-h')) return undefined;
  let path = words.slice(0, -1);
  while (path.length > 0 && (path.at(-1) === '--help' || path.at(-1) === '-h')) path = path.slice(0, -1);
  if (path.some((word) => word.startsWith('-'))) return undefined;
  const key = path.join(' ');
  return book.pages[book.aliases[key] ?? key];
}

/**
 * Whether yargs would print its own words (Commands:, Options:, Show help) in
 * English, as the book holds them: it takes the locale from the first of these
 * variables that is set, and has translations for other languages.
 */
export function yargsSpeaksEnglish(env: NodeJS.ProcessEnv): boolean {
  const locale = env.LC_ALL || env.LC_MESSAGES || env.LANG || env.LANGUAGE || 'en_US';
  const language = locale.replace(/[.:].*/, '').split('_')[0]!;
  return ['', 'en', 'C', 'POSIX'].includes(language);
}
