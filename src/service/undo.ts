import fs from 'node:fs/promises';
import { CancelledError, VmpError } from '../util/errors.js';

/**
 * What `create` and `create --import` share to leave nothing behind: the list
 * of things made so far, each with the step that removes it again, run in
 * reverse when a later step fails.
 */
export interface UndoStep {
  what: string;
  run: () => Promise<unknown>;
}

export interface UndoOptions {
  /** Tries per step (a lost libvirt or keyring call should not leave half a VM); default 1. */
  attempts?: number;
  /** Pause before try n+1 is `retryDelayMs * n`; default 500. */
  retryDelayMs?: number;
  /** Told each step's outcome, in the order the steps run. */
  onStep?: (what: string, error: string | undefined) => void;
}

/**
 * Runs every undo step in reverse; a step that still fails after its tries is
 * named in the returned error, and the rest still run. Returns `error` itself
 * when everything was undone, otherwise an error of the same class that says
 * what to remove by hand.
 */
export async function undoAll(undo: UndoStep[], error: unknown, options: UndoOptions = {}): Promise<unknown> {
  const attempts = options.attempts ?? 1;
  const retryDelayMs = options.retryDelayMs ?? 500;
  const failures: string[] = [];
  for (const step of [...undo].reverse()) {
    let message: string | undefined;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        await step.run();
        message = undefined;
        break;
      } catch (err) {
        message = err instanceof Error ? err.message : String(err);
        if (attempt < attempts) await new Promise((r) => setTimeout(r, retryDelayMs * attempt));
      }
    }
    options.onStep?.(step.what, message);
    if (message !== undefined) failures.push(`${step.what}: ${message}`);
  }
  if (failures.length === 0) return error;
  const original = error instanceof Error ? error.message : String(error);
  const Ctor = error instanceof VmpError ? (error.constructor as typeof VmpError) : VmpError;
  return new Ctor(`${original}\nremoving what was made also failed; remove by hand: ${failures.join('; ')}`, {
    cause: error,
  });
}

/** True if `file` exists (a dangling symlink counts); errors other than ENOENT are thrown. */
export async function pathExists(file: string): Promise<boolean> {
  try {
    await fs.lstat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * A journaled create that failed or was interrupted: removes what it made, and
 * its journal once nothing is left (a journal is kept for `gc` when something
 * could not be removed). A libvirt call or keyring helper that failed because
 * the same Ctrl+C reached it is reported as the interrupt. Returns the error to
 * throw.
 */
export async function abandonCreate(
  err: unknown,
  context: { name: string; undo: UndoStep[]; journal: { finish(): Promise<void> }; signal?: AbortSignal },
): Promise<unknown> {
  const error =
    context.signal?.aborted && !(err instanceof CancelledError)
      ? new CancelledError(`creating VM '${context.name}' was interrupted`, { cause: err })
      : err;
  const result = await undoAll(context.undo, error, { attempts: 3 });
  if (result === error) await context.journal.finish();
  return result;
}
