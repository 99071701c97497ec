/**
 * Phase stamps for benchmarks: with VMP_TRACE=1 in its environment the CLI
 * writes `vmp-trace MS LABEL` to stderr at each phase of a start, MS being
 * milliseconds since the process began (performance.now()). A bench reads
 * them to split a figure into its parts (docs/benchmarks.md); without the
 * variable nothing is written and nothing is measured.
 */

const enabled = process.env.VMP_TRACE === '1';

export function trace(label: string): void {
  if (enabled) process.stderr.write(`vmp-trace ${performance.now().toFixed(0)} ${label}\n`);
}

/** The stamps in a CLI's stderr, in order: label and milliseconds since its process began. */
export function parseTrace(stderr: string): Array<{ label: string; ms: number }> {
  const stamps: Array<{ label: string; ms: number }> = [];
  for (const m of stderr.matchAll(/^vmp-trace (\d+) (.+)$/gm))
    stamps.push({ label: m[2]!, ms: Number(m[1]) });
  return stamps;
}
