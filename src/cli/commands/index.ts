import type { CommandModule } from 'yargs';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyCommand = CommandModule<any, any>;

/**
 * One CLI command: its name (the first word of its `command` string), its
 * aliases, and how to load its module. A command's module and everything it
 * imports are loaded only when that command runs (docs/architecture.md,
 * "Start-up"): `vm-provisioner list` never loads create's kickstart renderer.
 */
export interface CommandEntry {
  name: string;
  aliases?: string[];
  load: () => Promise<AnyCommand>;
}

/**
 * Every CLI command, in the order `--help` lists them. Each module is a thin
 * front end over src/service; add a command with one line here (a unit test
 * checks that every entry loads and that its name and aliases match the module).
 */
export const commands: CommandEntry[] = [
  { name: 'create', load: async () => (await import('./create.js')).createCommand },
  { name: 'template', load: async () => (await import('./template.js')).templateCommand },
  { name: 'start', load: async () => (await import('./start.js')).startCommand },
  { name: 'stop', load: async () => (await import('./stop.js')).stopCommand },
  { name: 'pause', load: async () => (await import('./pause.js')).pauseCommand },
  { name: 'resume', load: async () => (await import('./resume.js')).resumeCommand },
  { name: 'run', load: async () => (await import('./run.js')).runCommand },
  { name: 'open', load: async () => (await import('./files.js')).openCommand },
  { name: 'copy-to-vm', load: async () => (await import('./files.js')).copyToVmCommand },
  { name: 'snapshot', load: async () => (await import('./snapshot.js')).snapshotCommand },
  { name: 'list', load: async () => (await import('./list.js')).listCommand },
  { name: 'get', load: async () => (await import('./get.js')).getCommand },
  { name: 'set', load: async () => (await import('./set.js')).setCommand },
  { name: 'apply', load: async () => (await import('./apply.js')).applyCommand },
  { name: 'destroy', load: async () => (await import('./destroy.js')).destroyCommand },
  { name: 'gc', load: async () => (await import('./gc.js')).gcCommand },
  { name: 'console', load: async () => (await import('./console.js')).consoleCommand },
  { name: 'logs', load: async () => (await import('./logs.js')).logsCommand },
  { name: 'passwords', load: async () => (await import('./passwords.js')).passwordsCommand },
  { name: 'proxy', load: async () => (await import('./proxy.js')).proxyCommand },
  { name: 'service', load: async () => (await import('./service.js')).serviceCommand },
  { name: 'windows', load: async () => (await import('./windows.js')).windowsCommand },
  { name: 'clipboard', load: async () => (await import('./clipboard.js')).clipboardCommand },
  { name: 'launchers', load: async () => (await import('./launchers.js')).launchersCommand },
  { name: 'completion', load: async () => (await import('./completion.js')).completionCommand },
  { name: 'help', load: async () => (await import('./version.js')).helpCommand },
  { name: 'version', load: async () => (await import('./version.js')).versionCommand },
  { name: '__complete', load: async () => (await import('./completion.js')).completeCallbackCommand },
];

/**
 * The modules a command line needs: only the named command's when its first
 * word names one, else all of them (no command, a typo that yargs answers with
 * "did you mean", or an option before the command, which takes the slow path).
 */
export function commandsFor(argv: readonly string[]): CommandEntry[] {
  const first = argv[0];
  const named = commands.find((c) => c.name === first || (c.aliases ?? []).includes(first ?? ''));
  return named ? [named] : commands;
}

/** Every command's module, for what describes the whole CLI (completion scripts, man pages, help text). */
export async function loadAllCommands(): Promise<AnyCommand[]> {
  return loadCommands(commands);
}

/** Loads the modules, keeping the manifest's order; one after another (jest's module loader races otherwise). */
export async function loadCommands(entries: readonly CommandEntry[]): Promise<AnyCommand[]> {
  const loaded: AnyCommand[] = [];
  for (const entry of entries) loaded.push(await entry.load());
  return loaded;
}
