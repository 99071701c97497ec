import type { CommandModule } from 'yargs';
import { clipboardCommand } from './clipboard.js';
import { createCommand } from './create.js';
import { passwordsCommand } from './passwords.js';
import { proxyCommand } from './proxy.js';
import { windowsCommand } from './windows.js';

/**
 * Every CLI command, in the order `--help` lists them. Each module is a thin
 * front end over src/service; add new commands here.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [
  createCommand,
  passwordsCommand,
  proxyCommand,
  windowsCommand,
  clipboardCommand,
];
