import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { getVmPassword, keyringCredentialStores } from '../../secrets/credentials.js';
import { vmPasswordReport, type VmPasswordRow } from '../../service/passwords.js';
import { PASSWORD_SERVICE } from '../../service/ports.js';

interface PasswordsFlags {
  name?: string;
  json?: boolean;
}

export const MISSING_PASSWORD = '(not in keyring)';

/** `NAME  PASSWORD` columns, names padded to the longest. */
export function formatPasswordTable(rows: readonly VmPasswordRow[]): string {
  const width = Math.max('NAME'.length, ...rows.map((r) => r.name.length));
  const line = (a: string, b: string): string => `${a.padEnd(width)}  ${b}\n`;
  return line('NAME', 'PASSWORD') + rows.map((r) => line(r.name, r.password ?? MISSING_PASSWORD)).join('');
}

export const NOT_A_TERMINAL_WARNING =
  'warning: standard output is not a terminal; the passwords go to a file or another program, do not keep them there\n';

/**
 * `passwords [NAME]`: the VMs' login passwords from the OS keyring (needed on
 * the text console; the graphical session logs in by itself).
 */
export const passwordsCommand: CommandModule<object, PasswordsFlags> = {
  command: 'passwords [name]',
  describe: 'Show the login password of every VM, or of one VM, from the OS keyring',
  builder: (yargs: Argv<object>) =>
    yargs
      .positional('name', { type: 'string', describe: 'only this VM' })
      .option('json', {
        type: 'boolean',
        describe: 'print JSON: [{"name","password"}], or one object with NAME',
      })
      .example('$0 passwords', 'every VM and its password')
      .example('$0 passwords firefox-vm', "firefox-vm's password only")
      .strictOptions() as unknown as Argv<PasswordsFlags>,
  handler: async (argv: ArgumentsCamelCase<PasswordsFlags>) => {
    const stores = keyringCredentialStores();
    let text: string;
    if (argv.name !== undefined) {
      const password = await getVmPassword(argv.name, stores);
      text = argv.json ? `${JSON.stringify({ name: argv.name, password })}\n` : `${password}\n`;
    } else {
      const rows = await vmPasswordReport({ stores });
      if (argv.json) text = `${JSON.stringify(rows, null, 2)}\n`;
      else if (rows.length === 0) {
        process.stderr.write(
          `no VMs: no passwords in the keyring (service ${PASSWORD_SERVICE}) and no VM configs\n`,
        );
        return;
      } else text = formatPasswordTable(rows);
    }
    if (!process.stdout.isTTY) process.stderr.write(NOT_A_TERMINAL_WARNING);
    process.stdout.write(text);
  },
};
