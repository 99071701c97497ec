import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defaultSpec } from '../../../src/spec/defaults.js';
import { DEFAULT_LIST_SETTINGS, listSettings, RACY_MS } from '../../../src/spec/list-settings.js';
import { specToToml } from '../../../src/spec/toml.js';
import type { VmSpec } from '../../../src/spec/types.js';

/**
 * The settings `list` shows from each VM's config, through the cache that spares it parsing
 * unchanged files: always what the files say now, on real files in a temporary directory.
 */
let dir: string;
let configs: string;
let cacheFile: string;
/** A clock well after every file here was written, so that none is "racy" unless a test says so. */
const later = (): number => Date.now() + 10 * RACY_MS;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-listset-'));
  configs = path.join(dir, 'config');
  cacheFile = path.join(dir, 'cache', 'list-settings.json');
  fs.mkdirSync(configs);
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function writeConfig(name: string, overrides: Partial<VmSpec>): string {
  const file = path.join(configs, `${name}.toml`);
  fs.writeFileSync(file, specToToml(defaultSpec(name, overrides)));
  return file;
}

const read = (names: string[], now = later) =>
  listSettings(names, { configDir: configs, cacheFile, now }).then((m) => Object.fromEntries(m));

function cached(): { entries: Record<string, Record<string, unknown>> } & Record<string, unknown> {
  return JSON.parse(fs.readFileSync(cacheFile, 'utf8'));
}

test('settings from each config, the defaults without a readable one; the cache holds the readable ones', async () => {
  writeConfig('vm-a', { label: 'green', onStop: 'save', display: 'seamless' });
  fs.writeFileSync(path.join(configs, 'vm-bad.toml'), 'label = "green"\nnot toml at all [');
  const got = await read(['vm-a', 'vm-none', 'vm-bad']);
  expect(got).toEqual({
    'vm-a': { onStop: 'save', label: 'green', display: 'seamless' },
    'vm-none': DEFAULT_LIST_SETTINGS,
    'vm-bad': DEFAULT_LIST_SETTINGS,
  });
  expect(Object.keys(cached().entries).sort()).toEqual(['vm-a', 'vm-bad']);
  // The same answer from the cache.
  expect(await read(['vm-a', 'vm-none', 'vm-bad'])).toEqual(got);
});

test('an unchanged file is answered from the cache, not read again', async () => {
  writeConfig('vm-a', { label: 'green' });
  await read(['vm-a']);
  // Edit the cache alone: a run that believed it must have used it.
  const cache = cached();
  cache.entries['vm-a']!.label = 'purple';
  fs.writeFileSync(cacheFile, JSON.stringify(cache));
  expect((await read(['vm-a']))['vm-a']!.label).toBe('purple');
});

test('a changed config shows at once, even with the same size and a restored mtime', async () => {
  const file = writeConfig('vm-a', { label: 'green' });
  expect((await read(['vm-a']))['vm-a']!.label).toBe('green');
  const before = fs.statSync(file);
  // Same length (blue/gray/...), written in place, its mtime set back: only the ctime tells.
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('label = "green"', 'label = "black"'));
  fs.utimesSync(file, before.atime, before.mtime);
  expect(fs.statSync(file).size).toBe(before.size);
  expect((await read(['vm-a']))['vm-a']!.label).toBe('black');
  // Replaced by rename, as the store writes.
  const tmp = path.join(configs, '.vm-a.tmp');
  fs.writeFileSync(tmp, specToToml(defaultSpec('vm-a', { label: 'red', onStop: 'save' })));
  fs.renameSync(tmp, file);
  expect((await read(['vm-a']))['vm-a']).toEqual({ label: 'red', onStop: 'save', display: 'spice' });
});

test('a file stamped within RACY_MS of its reading is not cached, and so is read again next time', async () => {
  writeConfig('vm-a', { label: 'green' });
  expect((await read(['vm-a'], Date.now))['vm-a']!.label).toBe('green');
  expect(cached().entries).toEqual({});
});

test('a deleted config gives the defaults and leaves the cache; a VM no longer listed leaves it too', async () => {
  const file = writeConfig('vm-a', { label: 'green' });
  writeConfig('vm-b', { label: 'blue' });
  await read(['vm-a', 'vm-b']);
  fs.rmSync(file);
  expect(await read(['vm-a', 'vm-b'])).toEqual({
    'vm-a': DEFAULT_LIST_SETTINGS,
    'vm-b': { ...DEFAULT_LIST_SETTINGS, label: 'blue' },
  });
  expect(Object.keys(cached().entries)).toEqual(['vm-b']);
  await read(['vm-a']);
  expect(cached().entries).toEqual({});
});

test.each([
  ['not JSON', '{"version":1,'],
  ['another version', (c: string) => c.replace('"version":1', '"version":99')],
  ['a label no config may have', (c: string) => c.replace('"label":"green"', '"label":"pink"')],
  ['an extra key in an entry', (c: string) => c.replace('"label":"green"', '"label":"green","password":"x"')],
  ['another config directory', (c: string) => c.replace(JSON.stringify(configs), '"/elsewhere"')],
])('a cache with %s is ignored and rebuilt', async (_, corrupt) => {
  writeConfig('vm-a', { label: 'green' });
  await read(['vm-a']);
  const text = fs.readFileSync(cacheFile, 'utf8');
  const bad = typeof corrupt === 'string' ? corrupt : corrupt(text);
  expect(bad).not.toBe(text);
  fs.writeFileSync(cacheFile, bad);
  expect((await read(['vm-a']))['vm-a']!.label).toBe('green');
  expect(fs.readFileSync(cacheFile, 'utf8')).toBe(text);
});

test('the cache is private and holds the three settings and the stamps, nothing else of a config', async () => {
  writeConfig('vm-a', {
    label: 'green',
    systemPackages: ['vim-enhanced'],
    flatpakPackages: ['org.mozilla.firefox'],
    vmDir: '/srv/vms',
  });
  await read(['vm-a']);
  expect(fs.statSync(cacheFile).mode & 0o777).toBe(0o600);
  expect(fs.statSync(path.dirname(cacheFile)).mode & 0o777).toBe(0o700);
  const cache = cached();
  expect(Object.keys(cache).sort()).toEqual(['dir', 'entries', 'version']);
  expect(Object.keys(cache.entries['vm-a']!).sort()).toEqual(['display', 'label', 'onStop', 'stamp']);
  const text = fs.readFileSync(cacheFile, 'utf8');
  for (const value of ['vim-enhanced', 'firefox', '/srv/vms']) expect(text).not.toContain(value);
});

test('a cache that cannot be written costs nothing but speed', async () => {
  writeConfig('vm-a', { label: 'green' });
  fs.mkdirSync(path.dirname(cacheFile));
  fs.mkdirSync(cacheFile); // a directory where the file should be: the rename fails
  expect((await read(['vm-a']))['vm-a']!.label).toBe('green');
  expect(fs.readdirSync(path.dirname(cacheFile))).toEqual(['list-settings.json']);
});

test('a file where the cache directory should be costs nothing but speed', async () => {
  writeConfig('vm-a', { label: 'green' });
  fs.writeFileSync(path.dirname(cacheFile), '');
  expect((await read(['vm-a']))['vm-a']!.label).toBe('green');
  expect(fs.readFileSync(path.dirname(cacheFile), 'utf8')).toBe('');
});
