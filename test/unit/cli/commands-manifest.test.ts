import { commands, commandsFor, loadCommands } from '../../../src/cli/commands/index.js';

/**
 * The command manifest: every entry loads a module whose command string
 * starts with the entry's name and whose aliases are the entry's, and a
 * command line loads only the command it names.
 */
test.each(commands.map((entry) => [entry.name, entry] as const))(
  '%s loads and matches its entry',
  async (name, entry) => {
    const module = await entry.load();
    const command = Array.isArray(module.command) ? module.command[0] : module.command;
    expect(String(command).split(' ')[0]).toBe(name);
    const aliases = module.aliases === undefined ? [] : [module.aliases].flat();
    expect(aliases).toEqual(entry.aliases ?? []);
    expect(typeof module.handler).toBe('function');
    // A hidden command (the completion scripts' callback) has describe: false.
    expect(typeof module.describe === 'string' || module.describe === false).toBe(true);
  },
);

test('names are unique', () => {
  const names = commands.flatMap((c) => [c.name, ...(c.aliases ?? [])]);
  expect(new Set(names).size).toBe(names.length);
});

test('a command line loads the command its first word names, and only that one', async () => {
  expect(commandsFor(['list', '--json']).map((c) => c.name)).toEqual(['list']);
  expect(commandsFor(['start', 'list']).map((c) => c.name)).toEqual(['start']);
  expect((await loadCommands(commandsFor(['snapshot', 'list', 'a'])))[0]!.command).toBe('snapshot <command>');
});

test('no command, an unknown one or an option first: all of them (help, "did you mean", yargs decides)', () => {
  for (const argv of [[], ['lst'], ['--connect', 'test:///default', 'list'], ['--version']]) {
    expect(commandsFor(argv)).toBe(commands);
  }
});

test("the global --connect's help names libvirt's default URI as src/libvirt does", async () => {
  const { CONNECT_OPTION } = await import('../../../src/cli/connect-option.js');
  const { DEFAULT_URI } = await import('../../../src/libvirt/index.js');
  expect(CONNECT_OPTION.defaultDescription).toMatch(new RegExp(`, else ${DEFAULT_URI}$`));
});
