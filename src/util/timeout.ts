import { TimeoutError } from './errors.js';

/**
 * Deadlines for calls that cannot be cancelled (a native binding blocked on a
 * dead socket, a D-Bus call that never answers). The promise is abandoned, not
 * stopped: its work may still hold a thread, so the CLI checks
 * `abandonedWork()` and exits explicitly instead of waiting for the event loop.
 */

const abandoned: string[] = [];

/** Descriptions of calls abandoned after their deadline, oldest first. */
export function abandonedWork(): readonly string[] {
  return abandoned;
}

export function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      abandoned.push(what);
      reject(
        new TimeoutError(
          `${what} did not finish within ${ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`}; abandoned`,
        ),
      );
    }, ms);
    // The deadline alone must not keep the process alive.
    timer.unref();
  });
  // Settle quietly if the abandoned call fails later; nobody is waiting for it.
  work.catch(() => undefined);
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
