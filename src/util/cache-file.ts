import fs from 'node:fs';
import path from 'node:path';

/**
 * The caches `list` keeps under $XDG_CACHE_HOME/vm-provisioner (src/spec/list-settings.ts,
 * src/libvirt/listing-cache.ts): a JSON file each, read whole and replaced whole. A cache only
 * ever costs speed: one that cannot be read is absent, one that cannot be written is skipped.
 */

/** The file's JSON, or undefined when it is missing or does not parse (rebuilt by this run). */
export function readCacheJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Atomically (a private temp file renamed over it, mode 0600); a failure leaves the old cache or none. */
export function writeCacheJson(file: string, content: unknown): void {
  // Unique to this process (and created exclusively): node:crypto would cost a few ms to load.
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    fs.writeFileSync(tmp, `${JSON.stringify(content)}\n`, { mode: 0o600, flag: 'wx' });
    fs.renameSync(tmp, file);
  } catch {
    // A read-only or full cache directory, or a file in its place: list works, only slower next time.
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // Nothing was written there.
    }
  }
}
