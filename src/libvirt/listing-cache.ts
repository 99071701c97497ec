import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DISPLAY_CHANNEL_NAME, VMP_XML_NAMESPACE, WAKE_CHANNEL_NAME } from '../render/xml-names.js';
import { readCacheJson, writeCacheJson } from '../util/cache-file.js';
import { cacheDir } from '../util/paths.js';
import { describeDomain, DESCRIBE_MODULES, listingText, type DomainDescription } from './inspect.js';

/**
 * describeListing's results from the last `list`, so that an unchanged domain is not parsed again:
 * describing 200 definitions is about 5 ms of a cold process, most of what `list` does itself
 * after libvirt answers (docs/architecture.md, "Start-up").
 *
 * describeListing is describeDomain of a short text cut from the definition (listingText: the
 * domain's `<name>` and `<metadata>`), a pure function of that text. So an entry is keyed by the
 * whole text, never by a name: a changed definition has another key and is parsed. The results are
 * good only for the code that made them: the cache names the files of that code (inspect.ts and
 * xml-object.ts, or the bundle chunk holding them) with their device, inode, size and times, and the
 * constants it compares with; any difference and the cache is ignored (and rewritten). A cache file
 * that does not parse, has another version or holds anything describeDomain of such a text could not
 * return is ignored too. It holds what `list` shows of each domain, nothing else.
 */

export const LISTING_CACHE_FILE = 'listing.json';
const CACHE_VERSION = 1;
/** Code changed this recently may change again within its file's time stamp: no cache is written for it. */
const RACY_MS = 2000;

interface CacheFile {
  version: number;
  code: string;
  entries: Record<string, DomainDescription>;
}

export interface ListingCache {
  /** describeListing(xml), from the cache when it holds the same text. */
  describe(xml: string): DomainDescription;
  /** Writes the entries this run used, when they differ from what was read. */
  save(): void;
}

export function defaultListingCacheFile(): string {
  return path.join(cacheDir(), LISTING_CACHE_FILE);
}

/** Reads the cache (a missing or unusable one is empty; never throws); `list` runs this while libvirt opens. */
export function openListingCache(
  file: string = defaultListingCacheFile(),
  now: () => number = Date.now,
): ListingCache {
  const code = codeIdentity();
  const read = readCacheJson(file);
  const cached = code !== undefined && isCacheFile(read, code.id) ? read.entries : undefined;
  // No prototype: a key is a definition's text, whatever it is.
  const used: Record<string, DomainDescription> = Object.create(null) as Record<string, DomainDescription>;
  let missed = false;
  return {
    describe(xml: string): DomainDescription {
      const text = listingText(xml);
      if (text === undefined) return describeDomain(xml);
      const hit = cached && Object.hasOwn(cached, text) ? cached[text] : undefined;
      if (hit) {
        used[text] = hit;
        return hit;
      }
      const description = describeDomain(text);
      // What JSON cannot carry back exactly (a NaN size) is described again next time.
      if (isListingDescription(description)) {
        used[text] = description;
        missed = true;
      }
      return description;
    },
    save(): void {
      if (code === undefined || now() - code.changedMs < RACY_MS) return;
      const unchanged =
        !missed && cached !== undefined && Object.keys(used).length === Object.keys(cached).length;
      if (!unchanged) writeCacheJson(file, { version: CACHE_VERSION, code: code.id, entries: used });
    },
  };
}

/** The describing code's files as stat sees them, and its constants; undefined when a file cannot be seen. */
function codeIdentity(): { id: string; changedMs: number } | undefined {
  try {
    return statCode();
  } catch {
    // A file we cannot stat: no cache.
    return undefined;
  }
}

function statCode(): { id: string; changedMs: number } | undefined {
  const parts = [VMP_XML_NAMESPACE, DISPLAY_CHANNEL_NAME, WAKE_CHANNEL_NAME];
  let changedMs = 0;
  for (const url of new Set(DESCRIBE_MODULES)) {
    if (!url.startsWith('file:')) return undefined;
    const file = fileURLToPath(url);
    const stat = fs.statSync(file, { bigint: true, throwIfNoEntry: false });
    if (!stat) return undefined;
    parts.push(`${file}:${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}`);
    const stamped = Number((stat.mtimeNs > stat.ctimeNs ? stat.mtimeNs : stat.ctimeNs) / 1_000_000n);
    changedMs = Math.max(changedMs, stamped);
  }
  return { id: parts.join('\n'), changedMs };
}

function isCacheFile(value: unknown, code: string): value is CacheFile {
  if (typeof value !== 'object' || value === null) return false;
  const { version, code: cachedCode, entries } = value as Partial<CacheFile>;
  if (version !== CACHE_VERSION || cachedCode !== code) return false;
  if (typeof entries !== 'object' || entries === null || Array.isArray(entries)) return false;
  return Object.values(entries).every(isListingDescription);
}

const strings = (value: unknown): boolean =>
  Array.isArray(value) && value.every((v) => typeof v === 'string');
const optional = (value: unknown, check: (v: unknown) => boolean): boolean =>
  value === undefined || check(value);
const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const hasKeys = (value: Record<string, unknown>, keys: string[]): boolean =>
  Object.keys(value).every((key) => keys.includes(key));

/** What describeDomain returns for a listing text (no devices, boot or UUID), in types JSON carries exactly. */
function isListingDescription(value: unknown): value is DomainDescription {
  if (!isObject(value)) return false;
  const d = value;
  const keys = [
    'name',
    'ours',
    'version',
    'phase',
    'apps',
    'files',
    'disks',
    'pendingFlatpaks',
    'unsaveableDevices',
    'role',
    'disposableOwner',
    'seal',
    'template',
  ];
  return (
    hasKeys(d, keys) &&
    typeof d.name === 'string' &&
    typeof d.ours === 'boolean' &&
    optional(d.version, (v) => typeof v === 'string') &&
    optional(d.phase, (v) => typeof v === 'string') &&
    strings(d.apps) &&
    strings(d.files) &&
    strings(d.pendingFlatpaks) &&
    Array.isArray(d.disks) &&
    d.disks.length === 0 &&
    Array.isArray(d.unsaveableDevices) &&
    d.unsaveableDevices.length === 0 &&
    optional(d.role, (v) => v === 'template' || v === 'disposable') &&
    optional(
      d.disposableOwner,
      (v) =>
        isObject(v) &&
        hasKeys(v, ['pid', 'startTicks', 'bootId']) &&
        Number.isSafeInteger(v.pid) &&
        (v.startTicks === null || typeof v.startTicks === 'string') &&
        (v.bootId === null || typeof v.bootId === 'string'),
    ) &&
    optional(
      d.seal,
      (v) =>
        isObject(v) &&
        hasKeys(v, ['mtimeNs', 'sizeBytes', 'origin']) &&
        typeof v.mtimeNs === 'string' &&
        typeof v.sizeBytes === 'number' &&
        Number.isFinite(v.sizeBytes) &&
        !Object.is(v.sizeBytes, -0) &&
        (v.origin === 'install' || v.origin === 'import'),
    ) &&
    optional(
      d.template,
      (v) =>
        isObject(v) &&
        hasKeys(v, ['name', 'disk']) &&
        typeof v.name === 'string' &&
        typeof v.disk === 'string',
    )
  );
}
