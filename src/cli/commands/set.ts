import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { parsePrefWords, prefValue, PREF_KEYS, setPrefs } from '../../service/prefs.js';
import { hostResources } from '../../spec/build.js';
import { FileConfigStore } from '../../spec/store.js';
import { vmName, withConnectOption, withHypervisor } from '../hypervisor.js';
import { prefsDeps } from '../prefs-deps.js';

interface SetArgs {
  name: string;
  key: string;
  value: string[] | undefined;
  force: boolean;
  connect: string | undefined;
}

const shown = (value: unknown): string =>
  Array.isArray(value) ? `[${value.map((v) => JSON.stringify(v)).join(', ')}]` : String(value);

export const setCommand: CommandModule<object, SetArgs> = {
  command: 'set <name> <key> [value..]',
  describe: `Change a VM's or template's setting: ${PREF_KEYS.join(', ')}`,
  builder: (yargs: Argv<object>) =>
    withConnectOption(yargs)
      .positional('name', { type: 'string', demandOption: true, describe: 'VM or template name' })
      .positional('key', {
        type: 'string',
        demandOption: true,
        describe: 'the setting, named as in the TOML config',
      })
      .positional('value', {
        type: 'string',
        array: true,
        describe: "the new value; for a list (auto_launch_apps) one argument per entry, '' for none",
      })
      .option('force', {
        type: 'boolean',
        default: false,
        describe: 'allow more memory or vCPUs than this host has',
      })
      .example('$0 set work-web memory_mb 2048', 'at its next boot if it is running')
      .example('$0 set work-web label red', '')
      .example("$0 set work-web auto_launch_apps xterm 'flatpak run org.mozilla.firefox'", 'two apps')
      .example("$0 set work-web auto_launch_apps ''", 'no apps') as unknown as Argv<SetArgs>,
  handler: async (argv: ArgumentsCamelCase<SetArgs>) => {
    const name = vmName(argv.name);
    const host = hostResources();
    const limits = { force: argv.force, hostMb: host.memoryMb, hostCpus: host.cpus };
    // Checked before libvirt or the keyring is touched.
    const value = parsePrefWords(argv.key, (argv.value ?? []).map(String), limits);
    const key = argv.key as (typeof PREF_KEYS)[number];
    const configStore = new FileConfigStore();
    const before = await configStore.read(name).catch(() => undefined);
    // A Ctrl+C between two of its writes would leave them apart until the next set; each write is short, so it is finished.
    const finishFirst = (): void =>
      void process.stderr.write(`set: finishing the change of '${name}' first\n`);
    process.on('SIGINT', finishFirst);
    const result = await withHypervisor(argv.connect, (hypervisor) =>
      setPrefs(prefsDeps(hypervisor, configStore), name, { [key]: value }, { limits }),
    ).finally(() => process.off('SIGINT', finishFirst));
    if (result.changed.length === 0) {
      process.stdout.write(
        `${name}: ${key} is already ${shown(value)}${result.notes.length > 0 ? '' : '; no changes'}\n`,
      );
    } else {
      const was = before ? ` (was ${shown(prefValue(before, key))})` : '';
      process.stdout.write(`${name}: ${key} set to ${shown(value)}${was}\n`);
    }
    for (const note of result.notes) process.stdout.write(`${name}: ${note}\n`);
  },
};
