import fs from 'node:fs';
import path from 'node:path';
import { readCacheJson, writeCacheJson } from '../util/cache-file.js';
import { InputError } from '../util/errors.js';
import { cacheDir, configDir } from '../util/paths.js';
import { mapPooled } from '../util/pool.js';
import type { DisplayMode, Label, OnStop } from './types.js';
import { DEFAULT_DISPLAY, DEFAULT_LABEL, DISPLAY_MODES, LABELS, ON_STOP_MODES } from './validate.js';

/**
 * The settings `list` shows from each VM's config file (on_stop, label,
 * display), with a cache that spares it parsing and validating every TOML file
 * on each run: about 100 ms for 200 VMs in a cold process, most of `list`'s
 * time (docs/architecture.md, "Start-up").
 *
 * The cache never answers for a file that may have changed. An entry is keyed
 * by the file's device, inode, size, mtime and ctime (nanoseconds), read with
 * one stat per config file on every run; any difference and the file is read again.
 * As in git's index, a file whose mtime or ctime lies within RACY_MS of the
 * moment it was read is not cached at all: the kernel stamps files with a
 * coarse clock (and some file systems with whole seconds), so an edit of the
 * same size within the same tick would otherwise keep its old stamp.
 *
 * It holds the three settings and the stamps only: no other config value, and
 * a config never holds a password (those are in the keyring). A cache that
 * cannot be read or does not have exactly the expected shape is ignored and
 * rewritten; one that cannot be written costs the next run its speed only.
 */

export interface ListSettings {
  onStop: OnStop;
  label: Label;
  display: DisplayMode;
}

/** What a VM without a readable config shows. */
export const DEFAULT_LIST_SETTINGS: Readonly<ListSettings> = {
  onStop: 'shutdown',
  label: DEFAULT_LABEL,
  display: DEFAULT_DISPLAY,
};

export const LIST_SETTINGS_CACHE_FILE = 'list-settings.json';
const CACHE_VERSION = 1;
/** A file stamped this close to the moment it was read may still change within its stamp (see above). */
export const RACY_MS = 2000;
/** Config files read at once on a cache miss. */
const READS_IN_FLIGHT = 8;

interface CacheEntry extends ListSettings {
  /** `dev:ino:size:mtimeNs:ctimeNs` of the file the settings were read from. */
  stamp: string;
}

interface CacheFile {
  version: number;
  /** The config directory the entries describe: a cache for another one is ignored. */
  dir: string;
  entries: Record<string, CacheEntry>;
}

export interface ListSettingsOptions {
  configDir?: string;
  cacheFile?: string;
  /** The clock the racy check compares stamps with (tests). */
  now?: () => number;
}

export function defaultCacheFile(): string {
  return path.join(cacheDir(), LIST_SETTINGS_CACHE_FILE);
}

/** The config directory's `*.toml` files as stat saw them, with the cache: what listSettings compares. */
export interface ConfigStamps {
  dir: string;
  cacheFile: string;
  cached: CacheFile | undefined;
  /** Per VM name (the file name without `.toml`), its file's stamp and when it was last changed. */
  files: Map<string, { stamp: string; stampedMs: number }>;
}

/**
 * Stats every config file and reads the cache; it needs no VM names, so `list` runs it while libvirt
 * opens the connection on libuv's threads (src/cli/commands/list.ts).
 */
export function stampConfigs(options: ListSettingsOptions = {}): ConfigStamps {
  const dir = options.configDir ?? configDir();
  const cacheFile = options.cacheFile ?? defaultCacheFile();
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    entries = [];
  }
  const files = new Map<string, { stamp: string; stampedMs: number }>();
  // Synchronous stats: one short syscall each, where a promise per file costs more than the call.
  for (const entry of entries) {
    if (!entry.endsWith('.toml')) continue;
    const stat = fs.statSync(path.join(dir, entry), { bigint: true, throwIfNoEntry: false });
    if (!stat) continue;
    files.set(entry.slice(0, -'.toml'.length), {
      stamp: `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}`,
      stampedMs: Number((stat.mtimeNs > stat.ctimeNs ? stat.mtimeNs : stat.ctimeNs) / 1_000_000n),
    });
  }
  return { dir, cacheFile, cached: readCache(cacheFile, dir), files };
}

/**
 * The settings of each named VM, from its config file when it has a readable
 * one, the defaults otherwise: what FileConfigStore.read would give, without
 * reading files that have not changed since the last run (`stamps`: taken now
 * unless given).
 */
export async function listSettings(
  names: readonly string[],
  options: ListSettingsOptions = {},
  stamps: ConfigStamps = stampConfigs(options),
): Promise<Map<string, ListSettings>> {
  const { dir, cacheFile, cached } = stamps;
  const now = options.now ?? Date.now;
  const result = new Map<string, ListSettings>();
  // No prototype: a key is a VM name, whatever it is.
  const kept: Record<string, CacheEntry> = Object.create(null) as Record<string, CacheEntry>;
  const misses: Array<{ name: string; stamp: string; stampedMs: number }> = [];
  for (const name of names) {
    const file = stamps.files.get(name);
    if (!file) {
      result.set(name, { ...DEFAULT_LIST_SETTINGS });
      continue;
    }
    const hit = cached && Object.hasOwn(cached.entries, name) ? cached.entries[name] : undefined;
    if (hit && hit.stamp === file.stamp) {
      result.set(name, { onStop: hit.onStop, label: hit.label, display: hit.display });
      kept[name] = hit;
      continue;
    }
    misses.push({ name, ...file });
  }
  if (misses.length > 0) {
    // Loaded on a miss only: the TOML parser and the config validation are most of what this spares.
    const { FileConfigStore } = await import('./store.js');
    const store = new FileConfigStore(dir);
    await mapPooled(misses, READS_IN_FLIGHT, async ({ name, stamp, stampedMs }) => {
      const readAtMs = now();
      let settings: ListSettings;
      let cacheable: boolean;
      try {
        const spec = await store.read(name);
        settings = {
          onStop: spec.onStop ?? DEFAULT_LIST_SETTINGS.onStop,
          label: spec.label ?? DEFAULT_LIST_SETTINGS.label,
          display: spec.display ?? DEFAULT_LIST_SETTINGS.display,
        };
        cacheable = true;
      } catch (err) {
        settings = { ...DEFAULT_LIST_SETTINGS };
        // A file that is not a valid config stays invalid until it changes; anything else
        // (it vanished, an I/O or permission error) may pass, so it is asked again next time.
        cacheable = err instanceof InputError;
      }
      result.set(name, settings);
      if (cacheable && readAtMs - stampedMs >= RACY_MS) kept[name] = { stamp, ...settings };
    });
  }
  const unchanged =
    cached !== undefined &&
    Object.keys(kept).length === Object.keys(cached.entries).length &&
    Object.keys(kept).every((name) => cached.entries[name] === kept[name]);
  if (!unchanged) writeCacheJson(cacheFile, { version: CACHE_VERSION, dir, entries: kept });
  return result;
}

function readCache(file: string, dir: string): CacheFile | undefined {
  const parsed = readCacheJson(file);
  return isCacheFile(parsed, dir) ? parsed : undefined;
}

function isCacheFile(value: unknown, dir: string): value is CacheFile {
  if (typeof value !== 'object' || value === null) return false;
  const { version, dir: cachedDir, entries } = value as Partial<CacheFile>;
  if (version !== CACHE_VERSION || cachedDir !== dir) return false;
  if (typeof entries !== 'object' || entries === null || Array.isArray(entries)) return false;
  return Object.values(entries).every(
    (entry: Partial<CacheEntry>) =>
      typeof entry === 'object' &&
      entry !== null &&
      Object.keys(entry).length === 4 &&
      typeof entry.stamp === 'string' &&
      (ON_STOP_MODES as readonly unknown[]).includes(entry.onStop) &&
      (LABELS as readonly unknown[]).includes(entry.label) &&
      (DISPLAY_MODES as readonly unknown[]).includes(entry.display),
  );
}
