import yargs from 'yargs';
import { commands } from '../../../src/cli/commands/index.js';
import { CONNECT_OPTION } from '../../../src/cli/connect-option.js';
import { simpleLine, SIMPLE_LINES } from '../../../src/cli/fast-path.js';

/**
 * The command lines the CLI runs without yargs must be read as yargs reads
 * them: each shape names exactly its command's positionals, boolean flags
 * (with their defaults) and string flags, and anything else goes to yargs.
 */
test.each(Object.keys(SIMPLE_LINES))('the %s shape is its yargs definition', async (name) => {
  const module = await commands.find((c) => c.name === name)!.load();
  const shape = SIMPLE_LINES[name]!;
  // The global options run.ts declares for every command (--connect/-c).
  const parser = yargs([]).option('connect', CONNECT_OPTION);
  (module.builder as (y: typeof parser) => unknown)(parser);
  // getOptions is yargs' own (untyped) view of what the builder declared.
  const options = (
    parser as unknown as {
      getOptions(): {
        boolean: string[];
        string: string[];
        number: string[];
        default: Record<string, unknown>;
      };
    }
  ).getOptions();
  // Short aliases (-c) are not simple: a line with one takes the yargs path (tested below).
  const own = (keys: string[]): string[] =>
    keys.filter((k) => !['help', 'version'].includes(k) && k.length > 1).sort();
  expect(own(options.boolean)).toEqual(Object.keys(shape.booleans).sort());
  expect(own(options.string).filter((k) => !shape.positionals.includes(k))).toEqual(
    [...shape.strings].sort(),
  );
  for (const [flag, value] of Object.entries(shape.booleans)) expect(options.default[flag]).toBe(value);
  for (const flag of shape.strings) expect(options.default[flag]).toBeUndefined();
  expect(own(options.number)).toEqual(Object.keys(shape.numbers ?? {}).sort());
  for (const [flag, value] of Object.entries(shape.numbers ?? {})) expect(options.default[flag]).toBe(value);
  const positionals = String(module.command).split(' ').slice(1);
  expect(positionals).toEqual(shape.positionals.map((p) => `<${p}>`));
});

/** What yargs gives start's handler for the flags a simple line leaves out. */
const startDefaults = { seamless: undefined, 'seamless-timeout': 300, seamlessTimeout: 300 };

test.each([
  [['list', '--json'], { command: 'list', args: { json: true, disposables: false, connect: undefined } }],
  [
    ['list', '--json', '--disposables'],
    { command: 'list', args: { json: true, disposables: true, connect: undefined } },
  ],
  [
    ['list', '--connect', 'test:///x', '--json'],
    { command: 'list', args: { json: true, disposables: false, connect: 'test:///x' } },
  ],
  [
    ['list', '--json', '--connect=test:///x'],
    { command: 'list', args: { json: true, disposables: false, connect: 'test:///x' } },
  ],
  [
    ['start', 'vm-a'],
    { command: 'start', args: { name: 'vm-a', viewer: true, connect: undefined, ...startDefaults } },
  ],
  [
    ['start', '--no-viewer', 'vm-a', '--connect', 'qemu:///system'],
    { command: 'start', args: { name: 'vm-a', viewer: false, connect: 'qemu:///system', ...startDefaults } },
  ],
  [
    ['start', 'vm-a', '--seamless'],
    {
      command: 'start',
      args: { name: 'vm-a', viewer: true, connect: undefined, ...startDefaults, seamless: true },
    },
  ],
])('%j runs without yargs as %j', (argv, expected) => {
  expect(simpleLine(argv)).toEqual(expected);
});

test.each([
  [['list']], // the table: colours, left to yargs
  [['list', '--json', '--json']],
  [['list', '--json', '-c', 'test:///default']], // a short alias: yargs reads it
  [['list', '--json=true']],
  [['list', '--json', '--connect']],
  [['list', '--json', '--connect', '--x']],
  [['list', '--json', 'extra']],
  [['list', '--json', '-h']],
  [['start']],
  [['start', 'a', 'b']],
  [['start', 'a', '--viewer', '--no-viewer']],
  [['start', 'a', '--no-connect']],
  [['start', 'a', '--force']],
  [['start', 'a', '--']],
  [['stop', 'a']],
  [['--connect', 'x', 'list', '--json']],
])('%j goes to yargs', (argv) => {
  expect(simpleLine(argv)).toBeUndefined();
});
