import type { CommandModule } from 'yargs';
import { clipboardCommand } from './clipboard.js';
import { consoleCommand } from './console.js';
import { createCommand } from './create.js';
import { destroyCommand } from './destroy.js';
import { gcCommand } from './gc.js';
import { launchersCommand } from './launchers.js';
import { listCommand } from './list.js';
import { pauseCommand } from './pause.js';
import { passwordsCommand } from './passwords.js';
import { proxyCommand } from './proxy.js';
import { resumeCommand } from './resume.js';
import { runCommand } from './run.js';
import { snapshotCommand } from './snapshot.js';
import { startCommand } from './start.js';
import { stopCommand } from './stop.js';
import { templateCommand } from './template.js';
import { windowsCommand } from './windows.js';

/**
 * Every CLI command, in the order `--help` lists them. Each module is a thin
 * front end over src/service; add new commands here.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [
  createCommand,
  templateCommand,
  startCommand,
  stopCommand,
  pauseCommand,
  resumeCommand,
  snapshotCommand,
  listCommand,
  destroyCommand,
  gcCommand,
  consoleCommand,
  passwordsCommand,
  proxyCommand,
  windowsCommand,
  clipboardCommand,
  runCommand,
  launchersCommand,
];
