/**
 * One virsh command line against `uri` (no shell). VirshHypervisor.virsh and the early probe
 * (early-open.ts) run the same line, so the probe is the very call it stands in for.
 */
export function virshArgv(uri: string, args: readonly string[]): string[] {
  return ['--connect', uri, '--quiet', ...args];
}
