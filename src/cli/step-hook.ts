/**
 * A test hook, off unless VMP_TEST_PAUSE_AT names a step: before that step
 * the CLI prints `VMP-TEST-PAUSED <step>` on stderr and waits (up to 60 s, or
 * until interrupted) so a test can send Ctrl+C or SIGKILL at exactly that
 * point. Documented in docs/templates.md; harmless in production (unset).
 */
export function stepHookFromEnv(
  signal: AbortSignal,
  env: NodeJS.ProcessEnv = process.env,
): ((step: string) => Promise<void>) | undefined {
  const wanted = env.VMP_TEST_PAUSE_AT;
  if (!wanted) return undefined;
  return async (step: string) => {
    if (step !== wanted) return;
    process.stderr.write(`VMP-TEST-PAUSED ${step}\n`);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 60_000);
      signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  };
}
