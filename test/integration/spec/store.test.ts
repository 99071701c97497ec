import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AlreadyExistsError, InputError, NotFoundError } from '../../../src/util/errors.js';
import { defaultSpec } from '../../../src/spec/defaults.js';
import { FileConfigStore } from '../../../src/spec/store.js';

/**
 * The config store against the real file system, including two real
 * processes racing to create the same VM.
 */

const DIST_STORE = path.resolve('dist/src/spec/store.js');
const DIST_DEFAULTS = path.resolve('dist/src/spec/defaults.js');

let root: string;
let store: FileConfigStore;

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-spec-store-'));
  store = new FileConfigStore(path.join(root, 'vm-provisioner'));
});

afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

const firefox = defaultSpec('vmp-t-spec-firefox', { flatpakPackages: ['org.mozilla.firefox'] });

test('write is atomic and private: mode 0600 file in a 0700 directory, no temp files left', async () => {
  await store.write(firefox);
  const file = store.pathOf(firefox.name);
  expect(file).toBe(path.join(root, 'vm-provisioner', 'vmp-t-spec-firefox.toml'));
  expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  expect(fs.statSync(store.dir).mode & 0o777).toBe(0o700);
  expect(fs.readdirSync(store.dir)).toEqual(['vmp-t-spec-firefox.toml']);
  expect(fs.readFileSync(file, 'utf8')).toContain('flatpak_packages = ["org.mozilla.firefox"]');
  await expect(store.read(firefox.name)).resolves.toEqual(firefox);
});

test('an overwrite replaces the file (new inode) and keeps it private', async () => {
  await store.write(firefox);
  const file = store.pathOf(firefox.name);
  fs.chmodSync(file, 0o644);
  const before = fs.statSync(file).ino;
  await store.write({ ...firefox, vcpus: 1 });
  expect(fs.statSync(file).ino).not.toBe(before);
  expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  expect((await store.read(firefox.name)).vcpus).toBe(1);
});

test('an invalid spec is refused before anything is written', async () => {
  await expect(store.write({ ...firefox, systemPackages: ['git\n%post'] })).rejects.toBeInstanceOf(
    InputError,
  );
  expect(fs.existsSync(store.dir)).toBe(false);
});

test('exclusive write refuses an existing VM and leaves it untouched', async () => {
  await store.write(firefox, { exclusive: true });
  const err = await store.write({ ...firefox, vcpus: 1 }, { exclusive: true }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(AlreadyExistsError);
  expect((err as Error).message).toMatch(/^a VM named "vmp-t-spec-firefox" already exists/);
  expect((await store.read(firefox.name)).vcpus).toBe(2);
  expect(fs.readdirSync(store.dir).filter((f) => f.endsWith('.lock'))).toEqual([]);
});

test('read: missing is NotFoundError; a name mismatch is an InputError', async () => {
  await expect(store.read('vmp-t-spec-none')).rejects.toBeInstanceOf(NotFoundError);
  fs.mkdirSync(store.dir, { recursive: true });
  fs.writeFileSync(store.pathOf('vmp-t-spec-a'), 'name = "vmp-t-spec-b"\n');
  await expect(store.read('vmp-t-spec-a')).rejects.toThrow(
    /name is "vmp-t-spec-b" but the file is for "vmp-t-spec-a"/,
  );
});

test('names that are not VM names never become paths', () => {
  expect(() => store.pathOf('../../etc/passwd')).toThrow(InputError);
  expect(() => store.pathOf('a/b')).toThrow(InputError);
});

test('remove is idempotent', async () => {
  await store.write(firefox);
  await store.remove(firefox.name);
  await store.remove(firefox.name);
  expect(await store.exists(firefox.name)).toBe(false);
});

test('list shows every VM; a damaged file is reported by name and line and hides nothing', async () => {
  expect(await store.list()).toEqual([]);
  await store.write(firefox);
  await store.write(defaultSpec('vmp-t-spec-git', { systemPackages: ['git'] }));
  fs.writeFileSync(path.join(store.dir, 'vmp-t-spec-broken.toml'), 'name = "vmp-t-spec-broken"\nvcpus = [\n');
  fs.writeFileSync(path.join(store.dir, 'vmp-t-spec-bad.toml'), 'name = "vmp-t-spec-bad"\n\nmemory_mb = 1\n');
  fs.writeFileSync(path.join(store.dir, 'Not A VM.toml'), 'name = "x"\n');
  fs.writeFileSync(path.join(store.dir, 'vm-passwords.toml'), '[vms]\nx = "secret"\n');
  fs.writeFileSync(path.join(store.dir, '.vmp-t-spec-git.toml.abc.tmp'), 'junk');
  const listed = await store.list();
  expect(listed.map((e) => e.name)).toEqual([
    'Not A VM',
    'vmp-t-spec-bad',
    'vmp-t-spec-broken',
    'vmp-t-spec-firefox',
    'vmp-t-spec-git',
  ]);
  const byName = Object.fromEntries(listed.map((e) => [e.name, e]));
  expect(byName['vmp-t-spec-firefox']?.spec).toEqual(firefox);
  expect(byName['vmp-t-spec-git']?.spec?.systemPackages).toEqual(['git']);
  expect(byName['vmp-t-spec-broken']?.error).toMatch(/vmp-t-spec-broken\.toml:3:\d+: not valid TOML/);
  expect(byName['vmp-t-spec-bad']?.error).toMatch(/vmp-t-spec-bad\.toml:3: memory_mb: invalid memory 1 MiB/);
  expect(byName['Not A VM']?.error).toMatch(/not a VM name/);
});

test('a lock held by another live process blocks create; a dead holder is broken', async () => {
  // Another process (a real one) holds the lock.
  const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  try {
    fs.mkdirSync(store.dir, { recursive: true });
    fs.writeFileSync(store.lockPathOf(firefox.name), `${holder.pid}\n`);
    const err = await store.write(firefox, { exclusive: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AlreadyExistsError);
    expect((err as Error).message).toMatch(
      new RegExp(`being created by another process \\(pid ${holder.pid}\\)`),
    );
    expect(await store.exists(firefox.name)).toBe(false);
  } finally {
    holder.kill();
  }
  // A process that has exited: its lock is stale and is broken.
  const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
  fs.writeFileSync(store.lockPathOf(firefox.name), dead.stdout);
  await store.write(firefox, { exclusive: true });
  expect(await store.exists(firefox.name)).toBe(true);
  expect(fs.existsSync(store.lockPathOf(firefox.name))).toBe(false);
});

test('a lock this store holds lets its own exclusive write through, once', async () => {
  const lock = await store.acquireLock(firefox.name);
  await expect(store.acquireLock(firefox.name)).rejects.toBeInstanceOf(AlreadyExistsError);
  await store.write(firefox, { exclusive: true });
  expect(fs.existsSync(store.lockPathOf(firefox.name))).toBe(true);
  await lock.release();
  await lock.release();
  expect(fs.existsSync(store.lockPathOf(firefox.name))).toBe(false);
});

describe('two real processes creating the same VM at once', () => {
  const script = (): string => {
    const file = path.join(root, 'racer.mjs');
    fs.writeFileSync(
      file,
      `import { FileConfigStore } from ${JSON.stringify(DIST_STORE)};
import { defaultSpec } from ${JSON.stringify(DIST_DEFAULTS)};
const [dir, name, tag, startAt] = process.argv.slice(2);
const store = new FileConfigStore(dir);
const spec = defaultSpec(name, { systemPackages: [tag] });
while (Date.now() < Number(startAt)) {} // barrier: both start writing at the same instant
try {
  await store.write(spec, { exclusive: true });
  console.log('won ' + tag);
} catch (err) {
  console.log('lost ' + err.constructor.name);
}
`,
    );
    return file;
  };

  const run = (file: string, name: string, tag: string, startAt: number): Promise<string> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [file, store.dir, name, tag, String(startAt)], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', reject);
      child.on('close', (code) =>
        code === 0 ? resolve(out.trim()) : reject(new Error(`racer exited ${code}: ${err}`)),
      );
    });

  test('exactly one succeeds, and the file is the winner’s', async () => {
    expect(fs.existsSync(DIST_STORE)).toBe(true); // run `npm run build` first
    const file = script();
    for (let round = 0; round < 4; round++) {
      const name = `vmp-t-spec-race-${round}`;
      const startAt = Date.now() + 2500;
      const results = await Promise.all([
        run(file, name, 'alpha', startAt),
        run(file, name, 'beta', startAt),
      ]);
      const winners = results.filter((r) => r.startsWith('won '));
      expect(winners).toHaveLength(1);
      expect(results.filter((r) => r === 'lost AlreadyExistsError')).toHaveLength(1);
      const winnerTag = (winners[0] as string).slice(4);
      expect((await store.read(name)).systemPackages).toEqual([winnerTag]);
      // No lock or temp file is left behind by either process.
      expect(fs.readdirSync(store.dir).filter((f) => !f.endsWith('.toml'))).toEqual([]);
    }
  }, 60_000);
});
