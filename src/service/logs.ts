import fs from 'node:fs/promises';
import { consoleLogPath, followFile, installLogPath } from '../install/index.js';
import { NotFoundError, VmpError } from '../util/errors.js';

/**
 * `logs NAME`: a VM's install log (the installer's serial console, written
 * during `create`) and its console log (the installed VM's serial console,
 * appended to by virtlogd at every boot). Both live in
 * $XDG_STATE_HOME/vm-provisioner/logs (src/install/logs.ts).
 */

export type LogKind = 'install' | 'console';

export interface LogChoice {
  kind: LogKind;
  file: string;
}

export interface LogPaths {
  install: string;
  console: string;
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

const WHEN: Record<LogKind, string> = {
  console: 'it is written from the first start of a VM made by this version',
  install: 'only a VM installed by create has one (not one imported or on a template)',
};

/**
 * Which log to show: the one asked for, else the console log if there is
 * one, else the install log. `vmKnown` is asked only when no log is found, so
 * a failed create's install log (no VM left) can still be read.
 */
export async function chooseLog(
  name: string,
  kind: LogKind | undefined,
  vmKnown: () => Promise<boolean>,
  paths: LogPaths = { install: installLogPath(name), console: consoleLogPath(name) },
): Promise<LogChoice> {
  const order: LogKind[] = kind ? [kind] : ['console', 'install'];
  for (const k of order) if (await exists(paths[k])) return { kind: k, file: paths[k] };
  if (!(await vmKnown())) {
    throw new NotFoundError(
      `logs: no VM named '${name}' (and no ${kind ? `${kind} log` : 'logs'} for that name)`,
    );
  }
  if (kind) throw new NotFoundError(`logs: '${name}' has no ${kind} log (${paths[kind]}): ${WHEN[kind]}`);
  throw new NotFoundError(
    `logs: '${name}' has no console or install log yet (${paths.console}, ${paths.install}); ${WHEN.console}`,
  );
}

/**
 * A guest writes what it likes to its serial console, terminal escape
 * sequences included, and the host's terminal must not obey them: only text,
 * newlines and tabs pass; a carriage return starts a new line. Stateful, as an
 * escape sequence may be split between two reads.
 */
export class ConsoleText {
  private held = '';

  push(chunk: string): string {
    let text = this.held + chunk;
    this.held = '';
    // An escape sequence cut off at the end of this chunk: keep it for the next.
    // eslint-disable-next-line no-control-regex
    const partial = /\x1b(?:\[[0-9;?]*|\][^\x07\x1b]*)?$/.exec(text);
    if (partial) {
      this.held = partial[0];
      text = text.slice(0, partial.index);
    }
    return clean(text);
  }

  end(): string {
    const rest = clean(this.held);
    this.held = '';
    return rest;
  }
}

function clean(text: string): string {
  return (
    text
      // CSI (colours, cursor moves), OSC (titles, hyperlinks, clipboard writes), and two-character escapes.
      // eslint-disable-next-line no-control-regex
      .replace(/\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?/g, '')
      .replace(/\r\n/g, '\n')
      .replace(/\r/g, '\n')
      // eslint-disable-next-line no-control-regex
      .replace(/[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]/g, '')
  );
}

/**
 * Writes the log through `write`: all of it, and with `follow` what is added
 * later, until `signal` aborts (then what is left is read and the call returns).
 */
export async function showLog(
  file: string,
  options: { follow: boolean; signal?: AbortSignal; write: (text: string) => Promise<void> | void },
): Promise<void> {
  try {
    await (await fs.open(file, 'r')).close();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES') {
      throw new VmpError(
        `logs: cannot read ${file}: permission denied (virtlogd re-creates a log it rotates as root; read it with sudo)`,
      );
    }
    throw new VmpError(`logs: cannot read ${file}: ${code ?? (err as Error).message}`);
  }
  // Without --follow: a signal that is already aborted reads what is there and stops.
  const stop = options.follow ? options.signal : AbortSignal.abort();
  const text = new ConsoleText();
  for await (const chunk of followFile(file, { ...(stop ? { signal: stop } : {}) })) {
    const out = text.push(chunk);
    if (out) await options.write(out);
  }
  const rest = text.end();
  if (rest) await options.write(rest);
}
