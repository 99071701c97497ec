import type { CommandModule } from 'yargs';
import { applyCommand } from './apply.js';
import { clipboardCommand } from './clipboard.js';
import { completeCallbackCommand, completionCommand } from './completion.js';
import { consoleCommand } from './console.js';
import { createCommand } from './create.js';
import { destroyCommand } from './destroy.js';
import { gcCommand } from './gc.js';
import { getCommand } from './get.js';
import { listCommand } from './list.js';
import { pauseCommand } from './pause.js';
import { passwordsCommand } from './passwords.js';
import { proxyCommand } from './proxy.js';
import { resumeCommand } from './resume.js';
import { setCommand } from './set.js';
import { snapshotCommand } from './snapshot.js';
import { startCommand } from './start.js';
import { stopCommand } from './stop.js';
import { templateCommand } from './template.js';
import { windowsCommand } from './windows.js';
import { helpCommand, versionCommand } from './version.js';

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
  getCommand,
  setCommand,
  applyCommand,
  destroyCommand,
  gcCommand,
  consoleCommand,
  passwordsCommand,
  proxyCommand,
  windowsCommand,
  clipboardCommand,
  completionCommand,
  helpCommand,
  versionCommand,
  completeCallbackCommand,
];
