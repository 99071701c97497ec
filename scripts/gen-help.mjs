// Writes every help page yargs prints for the built CLI (and what --version
// prints) to dist/src/cli/help.json, so that `--help`, `help CMD`, `CMD --help`
// and `--version` are answered without loading yargs or any command
// (docs/architecture.md, "Start-up"). Runs after tsc, from its output.
import fs from 'node:fs';

// The text must be what yargs prints where the fast path uses it: English, at run.ts's widest wrap.
process.env.LC_ALL = 'C';
const { HELP_WIDTH, collectHelp } = await import('../dist/src/cli/help-book.js');
const { runCli } = await import('../dist/src/cli/run.js');
Object.defineProperty(process.stdout, 'columns', { value: HELP_WIDTH, configurable: true });

const book = await collectHelp(runCli);
fs.writeFileSync('dist/src/cli/help.json', `${JSON.stringify(book, null, 1)}\n`);
