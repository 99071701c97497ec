import { spawn } from 'node:child_process';
import os from 'node:os';
import type { ExecEndInfo, ExecPort } from './agent.js';

/**
 * Starting a command the host asked for (EXEC, docs/protocol.md): an argv
 * (never a shell string) in the user's graphical session, with the user's home
 * as its working directory and an environment built here from a short
 * allow-list of the agent's own: nothing of it comes from the host.
 */

/** The variables a started command inherits from the agent; DISPLAY is the display the agent watches. */
export const EXEC_ENV_ALLOWED = [
  'HOME',
  'USER',
  'LOGNAME',
  'PATH',
  'LANG',
  'XAUTHORITY',
  'XDG_RUNTIME_DIR',
  'DBUS_SESSION_BUS_ADDRESS',
] as const;
export const DEFAULT_EXEC_PATH = '/usr/local/bin:/usr/bin:/bin';

/** The started command's environment: the allow-listed variables the agent has, and DISPLAY. */
export function execEnvironment(agentEnv: NodeJS.ProcessEnv, display: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of EXEC_ENV_ALLOWED) {
    const value = agentEnv[key];
    if (value !== undefined && value !== '') env[key] = value;
  }
  env.PATH ??= DEFAULT_EXEC_PATH;
  env.DISPLAY = display;
  return env;
}

export class SessionExec implements ExecPort {
  constructor(
    private readonly display: string,
    private readonly agentEnv: NodeJS.ProcessEnv = process.env,
    private readonly home: string = os.homedir(),
  ) {}

  start(argv: string[], onExit?: (end: ExecEndInfo) => void): Promise<number> {
    const [program, ...args] = argv;
    return new Promise((resolve, reject) => {
      // Its own session and process group: a restart of the agent's link or a signal to the
      // agent's group does not reach it, and nothing of it is read or waited for.
      const child = spawn(program!, args, {
        cwd: this.home,
        env: execEnvironment(this.agentEnv, this.display),
        stdio: 'ignore',
        detached: true,
        shell: false,
      });
      child.once('spawn', () => {
        child.unref();
        resolve(child.pid!);
      });
      // Its exit is reported (EXEC_EXITED), nothing more: the agent never waits on or reads it.
      child.once('exit', (code, signal) => {
        if (!onExit) return;
        if (code !== null) onExit({ how: 'exited', code });
        else onExit({ how: 'signalled', signal: signal ? (os.constants.signals[signal] ?? 255) : 255 });
      });
      child.once('error', (err) => reject(err));
    });
  }
}
