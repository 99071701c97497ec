import type { CommandModule } from 'yargs';
import { createCommand } from './create.js';

/**
 * Every CLI command, in the order `--help` lists them. Each module is a thin
 * front end over src/service; add new commands here.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [createCommand];
