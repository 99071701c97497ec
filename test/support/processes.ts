import fs from 'node:fs';

/**
 * Test-side helpers for CLIs that stop themselves at a `VMP_TEST_STOP_AT`
 * point (SIGSTOP, see the create journal's test hook) so a test can kill
 * them mid-step.
 */

/** The state letter of process `pid` (`R`, `S`, `T` for stopped, ...), from /proc; undefined once it is gone. */
export function procState(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/** Resolves once the CLI has stopped itself at its VMP_TEST_STOP_AT point; fails if it exited instead. */
export async function waitStopped(pid: number, exited: Promise<unknown>): Promise<void> {
  let exit: unknown;
  void exited.then((e) => (exit = e));
  const deadline = Date.now() + 120_000;
  while (procState(pid) !== 'T') {
    if (exit) throw new Error(`the CLI exited before its stop point: ${JSON.stringify(exit)}`);
    if (Date.now() > deadline) throw new Error('the CLI never reached its stop point');
    await new Promise((r) => setTimeout(r, 50));
  }
}
