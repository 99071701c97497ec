import { AlreadyExistsError, InputError } from '../util/errors.js';
import { validateVmName } from './validate.js';

/**
 * Automatic VM names, as the predecessor made them: the first Flatpak ID with
 * dots turned into dashes (`org.mozilla.firefox` → `org-mozilla-firefox-vm`),
 * else the first system package (`git` → `git-vm`), else `app-vm-<unix time>`.
 */

const SUFFIX = '-vm';
const MAX_NAME = 63;

/** Lower-cases and maps every run of characters outside [a-z0-9] to one '-'. */
function slug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/** Trims a stem so that stem + tail fits the 63-character name limit, never ending in '-'. */
function fit(stem: string, tail: string): string {
  return stem.slice(0, MAX_NAME - tail.length).replace(/-+$/g, '') + tail;
}

export interface NameSources {
  flatpakPackages: readonly string[];
  systemPackages: readonly string[];
}

/** The generated name for a VM that was given none. Always a valid VM name. */
export function autoName(sources: NameSources, now: Date = new Date()): string {
  for (const candidate of [sources.flatpakPackages[0], sources.systemPackages[0]]) {
    if (candidate === undefined) continue;
    const stem = slug(candidate);
    if (stem !== '') return validateVmName(fit(stem, SUFFIX));
  }
  return validateVmName(`app-vm-${Math.floor(now.getTime() / 1000)}`);
}

/** `base`, `base-2`, `base-3`, … trimmed to stay a valid name. */
export function suffixedName(base: string, n: number): string {
  if (n <= 1) return base;
  return validateVmName(fit(base, `-${n}`));
}

export const MAX_SUFFIX = 999;

/**
 * Picks the name a new VM gets. A name the user chose must be free (else
 * AlreadyExistsError); a generated one gets the first free numeric suffix.
 */
export async function chooseFreeName(
  name: string,
  generated: boolean,
  isTaken: (name: string) => boolean | Promise<boolean>,
): Promise<string> {
  if (!generated) {
    if (await isTaken(name)) {
      throw new AlreadyExistsError(`a VM named "${name}" already exists; choose another --name`);
    }
    return name;
  }
  for (let n = 1; n <= MAX_SUFFIX; n++) {
    const candidate = suffixedName(name, n);
    if (!(await isTaken(candidate))) return candidate;
  }
  throw new InputError(`no free name from "${name}" to "${suffixedName(name, MAX_SUFFIX)}"; give --name`);
}
