/**
 * Fedora releases the kickstart generator targets: the one list every other
 * module (validation, kickstart, install media) consults.
 */
export const FEDORA_RELEASES = [41, 42, 43] as const;
export type FedoraRelease = (typeof FEDORA_RELEASES)[number];
/** The default: the newest release in the list. */
export const DEFAULT_FEDORA_RELEASE: FedoraRelease = 43;

export function isSupportedRelease(value: number): value is FedoraRelease {
  return (FEDORA_RELEASES as readonly number[]).includes(value);
}
