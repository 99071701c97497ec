import yargs from 'yargs';
import chalk from 'chalk';
import { VmpError } from '../util/errors.js';
import { commandsFor, loadCommands } from './commands/index.js';
import { restoreTypedNumbers } from './raw-numbers.js';
import { usageProblem } from './usage.js';
import { CONNECT_OPTION } from './connect-option.js';

/**
 * Parses argv and runs one command. Returns the exit code instead of calling
 * process.exit so tests can drive the CLI in-process.
 */
export async function runCli(argv: string[]): Promise<number> {
  // https://no-color.org: set and not empty means no colour at all, whatever the terminal says.
  if (process.env.NO_COLOR) chalk.level = 0;
  // `help CMD...` is `CMD... --help`, so the two can never differ.
  if (argv[0] === 'help') argv = [...argv.slice(1), '--help'];
  // Only the command being run is loaded (with what it imports): see docs/architecture.md, "Start-up".
  const commands = await loadCommands(commandsFor(argv));
  let usageFailure = usageProblem(argv, commands);
  if (usageFailure !== undefined) {
    process.stderr.write(`${chalk.red('error:')} ${usageFailure}\n`);
    return 2;
  }
  const parser = yargs(argv)
    .scriptName('vm-provisioner')
    .usage('$0 <command> [options]\n\nOne hardware-isolated libvirt VM per application.')
    .strict()
    .option('connect', CONNECT_OPTION)
    .demandCommand(1, 'Name a command; see --help.')
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version()
    .wrap(Math.min(110, process.stdout.columns ?? 110))
    // yargs would print the whole help on a typo; a one-line error is kinder and greppable.
    // It must throw: if it returned, yargs would go on to run the command's
    // handler despite an unknown or bad option.
    .fail((msg, err) => {
      if (err) throw err;
      usageFailure = (msg ?? 'invalid usage; see --help').replace(/\s*\n\s*/g, ' ');
      throw new UsageFailure(usageFailure);
    })
    .exitProcess(false)
    .middleware(restoreNumbers(argv) as never, true);
  for (const command of commands) parser.command(command);
  try {
    await parser.parseAsync();
  } catch (err) {
    if (!(err instanceof UsageFailure)) return reportError(err);
  }
  if (usageFailure !== undefined) {
    process.stderr.write(`${chalk.red('error:')} ${usageFailure}\n`);
    return 2;
  }
  return typeof process.exitCode === 'number' ? process.exitCode : 0;
}

class UsageFailure extends Error {}

/** yargs calls middleware with the command's own instance, whose options say which are numbers. */
function restoreNumbers(tokens: readonly string[]) {
  return (args: Record<string, unknown>, y?: { getOptions(): { number: string[] } }): void =>
    restoreTypedNumbers(args, tokens, y?.getOptions().number ?? []);
}

export function reportError(err: unknown): number {
  // The fast path (src/cli/fast-path.ts) reports errors without runCli, so NO_COLOR is honoured here too.
  if (process.env.NO_COLOR) chalk.level = 0;
  if (err instanceof VmpError) {
    process.stderr.write(`${chalk.red('error:')} ${err.message}\n`);
    return err.exitCode;
  }
  const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(`${chalk.red('internal error:')} ${message}\n`);
  return 1;
}
