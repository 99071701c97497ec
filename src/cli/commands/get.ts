import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { getPrefs, isPrefKey, PREF_KEYS } from '../../service/prefs.js';
import { FileConfigStore } from '../../spec/store.js';
import { describeValue } from '../../spec/validate.js';
import { InputError } from '../../util/errors.js';
import { formatColumns } from '../../util/table.js';
import { vmName, withConnectOption, withHypervisor } from '../hypervisor.js';

interface GetArgs {
  name: string;
  key: string | undefined;
  json: boolean;
  connect: string | undefined;
}

/** A list shown in a table: as TOML writes it, since an entry may hold spaces and commas. */
function shown(value: unknown): string {
  return Array.isArray(value) ? `[${value.map((v) => JSON.stringify(v)).join(', ')}]` : String(value);
}

export const getCommand: CommandModule<object, GetArgs> = {
  command: 'get <name> [key]',
  describe: `Show a VM's or template's settings (${PREF_KEYS.join(', ')})`,
  builder: (yargs: Argv<object>) =>
    withConnectOption(yargs)
      .positional('name', { type: 'string', demandOption: true, describe: 'VM or template name' })
      .positional('key', { type: 'string', describe: 'one setting, named as in the TOML config' })
      .option('json', { type: 'boolean', default: false, describe: 'print JSON' })
      .example('$0 get work-web', 'every setting, one per line')
      .example('$0 get work-web memory_mb', 'one value')
      .example('$0 get work-web auto_launch_apps', 'a list: one entry per line') as unknown as Argv<GetArgs>,
  handler: async (argv: ArgumentsCamelCase<GetArgs>) => {
    const name = vmName(argv.name);
    const key = argv.key;
    if (key !== undefined && !isPrefKey(key)) {
      throw new InputError(`get: unknown key ${describeValue(key)}: use one of ${PREF_KEYS.join(', ')}`);
    }
    const view = await withHypervisor(argv.connect, (hypervisor) =>
      getPrefs({ hypervisor, configStore: new FileConfigStore() }, name),
    );
    for (const problem of view.disagreements) {
      process.stderr.write(
        `warning: ${name}: the config and the libvirt definition disagree (${problem}); run vm-provisioner set ${name} with the value to write both again\n`,
      );
    }
    if (key !== undefined) {
      const value = view.values[key];
      if (argv.json) process.stdout.write(`${JSON.stringify(value)}\n`);
      else if (Array.isArray(value)) process.stdout.write(value.map((v) => `${v}\n`).join(''));
      else process.stdout.write(`${String(value)}\n`);
      return;
    }
    if (argv.json) {
      process.stdout.write(`${JSON.stringify({ name, role: view.role, ...view.values }, null, 2)}\n`);
      return;
    }
    const rows = [['KEY', 'VALUE'], ...PREF_KEYS.map((k) => [k, shown(view.values[k])])];
    process.stdout.write(`${formatColumns(rows)}\n`);
  },
};
