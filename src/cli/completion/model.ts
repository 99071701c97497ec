import type { CommandModule } from 'yargs';
import { CONNECT_OPTION } from '../connect-option.js';

/**
 * The command tree as data, read from the same CommandModules yargs runs (and
 * prints --help from): each builder is run against a recorder that notes its
 * options, positionals, examples and subcommands. Completion scripts, man
 * pages and the CLI's own usage checks are generated from it, so none of them
 * keeps a second list of commands or flags by hand.
 */

/** What a value completes to: names from libvirt, paths, or a fixed list. */
export type ValueKind = 'vm' | 'template' | 'snapshot' | 'file' | 'dir' | 'none';

export interface OptionInfo {
  name: string;
  aliases: string[];
  type: 'string' | 'number' | 'boolean' | 'count';
  array: boolean;
  describe: string;
  choices: string[];
  /** Shown as "default:" in help: the defaultDescription, else the default. */
  defaultText?: string;
  /** A boolean that defaults to true, so --no-NAME is the useful spelling. */
  negatable: boolean;
  hidden: boolean;
  completes: ValueKind;
}

export interface PositionalInfo {
  name: string;
  required: boolean;
  variadic: boolean;
  describe: string;
  choices: string[];
  completes: ValueKind;
}

export interface CommandInfo {
  /** The words that name it, e.g. ['snapshot', 'revert']. */
  path: string[];
  describe: string;
  hidden: boolean;
  /** The usage line's tail as the command declares it, e.g. '<name> <snapshot>'. */
  args: string;
  positionals: PositionalInfo[];
  options: OptionInfo[];
  examples: Array<[string, string]>;
  subcommands: CommandInfo[];
}

/** Options every command takes (yargs adds them): --help everywhere, --version at the top. */
const HELP: OptionInfo = {
  name: 'help',
  aliases: ['h'],
  type: 'boolean',
  array: false,
  describe: 'Show help',
  choices: [],
  negatable: false,
  hidden: false,
  completes: 'none',
};

const FILE_OPTIONS: Record<string, ValueKind> = {
  config: 'file',
  import: 'file',
  kernel: 'file',
  initrd: 'file',
  socket: 'file',
  output: 'dir',
  'vm-dir': 'dir',
};

/**
 * Which libvirt names a positional or option value is: `name` is a VM, or a
 * template under `template` (but a new name for `template create|import`);
 * `snapshot` is one of the VM's snapshots, except the new one of `snapshot create`.
 */
function positionalKind(path: string[], name: string): ValueKind {
  const where = path.join(' ');
  if (name === 'name') {
    if (where === 'template create' || where === 'template import') return 'none';
    return path[0] === 'template' ? 'template' : 'vm';
  }
  if (name === 'snapshot') return where === 'snapshot create' ? 'none' : 'snapshot';
  if (name === 'disk' || name === 'file') return 'file';
  return 'none';
}

function optionKind(name: string): ValueKind {
  if (name === 'template') return 'template';
  return FILE_OPTIONS[name] ?? 'none';
}

/** Parses yargs' command string: 'snapshot revert <name> <snapshot>' minus the path. */
function parseCommandString(command: string): { name: string; aliases: string[]; args: string } {
  const [head = '', ...rest] = command.trim().split(/\s+/);
  return { name: head, aliases: [], args: rest.join(' ') };
}

interface Recorded {
  options: Map<string, Record<string, unknown>>;
  positionals: Map<string, Record<string, unknown>>;
  examples: Array<[string, string]>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  commands: CommandModule<any, any>[];
}

/** Runs a builder against a stand-in for yargs that records instead of parsing. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function record(builder: CommandModule<any, any>['builder']): Recorded {
  const recorded: Recorded = { options: new Map(), positionals: new Map(), examples: [], commands: [] };
  if (builder === undefined) return recorded;
  const recorder: unknown = new Proxy(
    {},
    {
      get(_target, method) {
        return (...args: unknown[]) => {
          if (method === 'option' || method === 'options') {
            if (typeof args[0] === 'string') {
              const prev = recorded.options.get(args[0]) ?? {};
              recorded.options.set(args[0], { ...prev, ...(args[1] as object) });
            } else {
              for (const [k, v] of Object.entries(args[0] as object)) recorded.options.set(k, v as never);
            }
          } else if (method === 'positional') {
            recorded.positionals.set(args[0] as string, args[1] as Record<string, unknown>);
          } else if (method === 'example') {
            recorded.examples.push([String(args[0]), String(args[1] ?? '')]);
          } else if (method === 'command') {
            recorded.commands.push(args[0] as CommandModule);
          }
          return recorder;
        };
      },
    },
  );
  if (typeof builder === 'function') {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    (builder as (y: any) => unknown)(recorder);
  } else {
    for (const [k, v] of Object.entries(builder)) recorded.options.set(k, v as Record<string, unknown>);
  }
  return recorded;
}

function toOption(name: string, o: Record<string, unknown>): OptionInfo {
  const rawType = o.type ?? (o.boolean ? 'boolean' : o.number ? 'number' : o.count ? 'count' : 'string');
  const type = (
    ['string', 'number', 'boolean', 'count'].includes(rawType as string) ? rawType : 'string'
  ) as OptionInfo['type'];
  const alias = o.alias === undefined ? [] : Array.isArray(o.alias) ? o.alias.map(String) : [String(o.alias)];
  const defaultText =
    o.defaultDescription !== undefined
      ? String(o.defaultDescription)
      : o.default !== undefined
        ? JSON.stringify(o.default)
        : undefined;
  return {
    name,
    aliases: alias,
    type,
    array: o.array === true || o.type === 'array',
    describe:
      typeof o.describe === 'string' ? o.describe : typeof o.description === 'string' ? o.description : '',
    choices: Array.isArray(o.choices) ? o.choices.map(String) : [],
    ...(defaultText !== undefined ? { defaultText } : {}),
    negatable:
      type === 'boolean' &&
      (o.default === true || (typeof o.describe === 'string' && o.describe.includes(`--no-${name}`))),
    hidden: o.hidden === true,
    completes: type === 'boolean' || type === 'count' ? 'none' : optionKind(name),
  };
}

function toPositionals(path: string[], args: string, recorded: Recorded): PositionalInfo[] {
  const found: PositionalInfo[] = [];
  for (const match of args.matchAll(/([<[])([^\]>]+)[\]>]/g)) {
    const required = match[1] === '<';
    const variadic = match[2]!.endsWith('..');
    const name = match[2]!.replace(/\.\.$/, '').split('|')[0]!;
    const o = recorded.positionals.get(name) ?? {};
    found.push({
      name,
      required,
      variadic,
      describe: typeof o.describe === 'string' ? o.describe : '',
      choices: Array.isArray(o.choices) ? o.choices.map(String) : [],
      completes: positionalKind(path, name),
    });
  }
  return found;
}

/** One command (and its subcommands) as data. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function describeCommand(module: CommandModule<any, any>, parent: string[] = []): CommandInfo {
  const { name, args } = parseCommandString(String(module.command ?? ''));
  const path = [...parent, name];
  const recorded = record(module.builder);
  const subcommands = recorded.commands.map((sub) => describeCommand(sub, path));
  const options = [...recorded.options.entries()].map(([key, o]) => toOption(key, o));
  // run.ts declares --connect/-c once, globally: every command takes it, as virsh's -c.
  if (!options.some((o) => o.name === 'connect')) options.push(connectOption());
  options.push(HELP);
  return {
    path,
    describe: typeof module.describe === 'string' ? module.describe : '',
    hidden: module.describe === false,
    // A command with subcommands declares '<command>': the subcommand, not a positional of its own.
    args: subcommands.length > 0 ? '' : args,
    positionals: subcommands.length > 0 ? [] : toPositionals(path, args, recorded),
    options,
    examples: recorded.examples,
    subcommands,
  };
}

function connectOption(): OptionInfo {
  return toOption('connect', CONNECT_OPTION as Record<string, unknown>);
}

/** The whole tool: the top level holds the commands and the options yargs adds there. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function describeCli(commands: CommandModule<any, any>[]): CommandInfo {
  return {
    path: [],
    describe: 'One hardware-isolated libvirt VM per application.',
    hidden: false,
    args: '',
    positionals: [],
    options: [
      connectOption(),
      HELP,
      { ...HELP, name: 'version', aliases: [], describe: 'Show version number' },
    ],
    examples: [],
    subcommands: commands.map((c) => describeCommand(c)),
  };
}

/** The spellings of an option on a command line: --name, -a, and --no-name for a negatable one. */
export function flagSpellings(option: OptionInfo): string[] {
  return [
    `--${option.name}`,
    ...(option.negatable ? [`--no-${option.name}`] : []),
    ...option.aliases.map((a) => (a.length === 1 ? `-${a}` : `--${a}`)),
  ];
}

/** Whether the option consumes the next word as its value. */
export function takesValue(option: OptionInfo): boolean {
  return option.type === 'string' || option.type === 'number';
}

/** Every command, depth first, the tool itself first. */
export function allCommands(root: CommandInfo): CommandInfo[] {
  return [root, ...root.subcommands.flatMap(allCommands)];
}
