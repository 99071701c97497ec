import {
  allCommands,
  flagSpellings,
  takesValue,
  type CommandInfo,
  type OptionInfo,
} from '../completion/model.js';

/**
 * Man pages (roff, man(7) macros) from the command tree that --help prints
 * from (completion/model.ts): vm-provisioner(1) for the tool and
 * vm-provisioner-CMD(1) for each command and subcommand, as git does.
 * `npm run build` writes them with scripts/gen-man.mjs.
 */

export interface ManPage {
  /** File name, e.g. vm-provisioner-snapshot-revert.1 */
  file: string;
  text: string;
}

/** Text as roff shows it literally: backslashes, and a leading . or ' that would be a request. */
function esc(text: string): string {
  return text
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .replace(/^([.'])/gm, '\\&$1');
}

function pageName(command: CommandInfo): string {
  return ['vm-provisioner', ...command.path].join('-');
}

const PLACEHOLDERS: Record<string, string> = { connect: 'URI', name: 'NAME', template: 'NAME' };

function placeholder(option: OptionInfo): string {
  if (option.choices.length > 0) return option.choices.join('|');
  if (option.completes === 'file') return 'FILE';
  if (option.completes === 'dir') return 'DIR';
  return PLACEHOLDERS[option.name] ?? (option.type === 'number' ? 'N' : 'VALUE');
}

function optionItem(option: OptionInfo): string {
  const spellings = flagSpellings(option)
    .map((f) => `\\fB${esc(f)}\\fR${takesValue(option) ? ` \\fI${esc(placeholder(option))}\\fR` : ''}`)
    .join(', ');
  const text = `${option.describe}${option.array ? ' (repeatable)' : ''}`;
  const dflt = option.defaultText !== undefined ? ` Default: ${esc(option.defaultText)}.` : '';
  return `.TP\n${spellings}\n${esc(/[.)]$/.test(text) ? text : `${text}.`)}${dflt}`;
}

function synopsis(command: CommandInfo): string {
  const words = ['vm-provisioner', ...command.path].join(' ');
  const args = command.positionals
    .map((p) => {
      const name = `\\fI${esc(p.name.toUpperCase())}\\fR${p.variadic ? '...' : ''}`;
      return p.required ? name : `[${name}]`;
    })
    .join(' ');
  const tail = command.subcommands.some((c) => !c.hidden) ? '\\fICOMMAND\\fR' : `${args} [\\fIoptions\\fR]`;
  return `.B ${esc(words)}\n${tail.trim()}`;
}

/** Ends with a full stop, so a following sentence reads as one. */
function sentence(text: string): string {
  return /\.$/.test(text) ? text : `${text}.`;
}

function commandList(commands: CommandInfo[]): string {
  return commands
    .filter((c) => !c.hidden)
    .map(
      (c) =>
        `.TP\n\\fB${esc(c.path.join(' '))}\\fR\n${esc(sentence(c.describe))}\nSee \\fB\\%${esc(pageName(c))}\\fR(1).`,
    )
    .join('\n');
}

export function manPage(command: CommandInfo, version: string): ManPage {
  const name = pageName(command);
  const sections = [
    `.TH ${esc(name.toUpperCase())} 1 "" "vm-provisioner ${esc(version)}" "vm-provisioner manual"`,
    '.SH NAME',
    `${esc(name)} \\- ${esc(command.describe)}`,
    '.SH SYNOPSIS',
    synopsis(command),
    '.SH DESCRIPTION',
    esc(command.describe) + (command.path.length === 0 ? '\nEvery command takes \\fB\\-\\-help\\fR.' : ''),
  ];
  const visible = command.subcommands.filter((c) => !c.hidden);
  if (visible.length > 0) sections.push('.SH COMMANDS', commandList(visible));
  if (command.positionals.length > 0) {
    sections.push(
      '.SH ARGUMENTS',
      command.positionals
        .map(
          (p) =>
            `.TP\n\\fI${esc(p.name.toUpperCase())}\\fR\n${esc(p.describe || p.name)}` +
            (p.choices.length > 0 ? `: ${esc(p.choices.join(', '))}` : '') +
            (p.required ? '' : ' (optional)'),
        )
        .join('\n'),
    );
  }
  const options = command.options.filter((o) => !o.hidden);
  if (options.length > 0) sections.push('.SH OPTIONS', options.map(optionItem).join('\n'));
  if (command.examples.length > 0) {
    sections.push(
      '.SH EXAMPLES',
      command.examples
        .map(([cmd, what]) => {
          const line = cmd.replace(/^\$0/, 'vm-provisioner');
          return `.PP\n${what ? `${esc(what)}:\n` : ''}.RS 4\n.nf\n${esc(line)}\n.fi\n.RE`;
        })
        .join('\n'),
    );
  }
  if (command.path.length === 0) {
    sections.push(
      '.SH ENVIRONMENT',
      '.TP\n.B LIBVIRT_DEFAULT_URI\nThe libvirt URI when \\fB\\-\\-connect\\fR is not given (else qemu:///system).',
      '.TP\n.B NO_COLOR\nWhen set and not empty, nothing is printed in colour (https://no\\-color.org).',
      '.SH EXIT STATUS',
      '0 on success, 1 when an operation failed, 2 for bad input or usage, 130 when interrupted.',
    );
  }
  const parent =
    command.path.length > 1 ? pageName({ ...command, path: command.path.slice(0, -1) }) : undefined;
  sections.push(
    '.SH SEE ALSO',
    [
      ...(command.path.length > 0 ? ['\\fB\\%vm\\-provisioner\\fR(1)'] : []),
      ...(parent ? [`\\fB\\%${esc(parent)}\\fR(1)`] : []),
      '\\fBvirsh\\fR(1)',
    ].join(', '),
  );
  return { file: `${name}.1`, text: `${sections.join('\n')}\n` };
}

/** Every page: the tool's and one per visible command and subcommand. */
export function manPages(root: CommandInfo, version: string): ManPage[] {
  return allCommands(root)
    .filter((c) => !c.hidden)
    .map((c) => manPage(c, version));
}
