import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InputError } from '../../../src/util/errors.js';
import { MAX_CONFIG_FILE_BYTES, readConfigFile } from '../../../src/spec/build.js';
import { defaultSpec } from '../../../src/spec/defaults.js';
import { FileConfigStore } from '../../../src/spec/store.js';

/** Issue 20 item 9: --config files and stored configs on the real file system, /proc and FIFOs. */

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-spec-cfg-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

async function refusal(work: Promise<unknown>): Promise<string> {
  const err = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InputError);
  expect((err as Error).message).not.toContain('\n');
  return (err as Error).message;
}

test('a /proc file that reports size 0 and streams gigabytes is refused after a bounded read', async () => {
  expect(fs.statSync('/proc/self/pagemap').size).toBe(0);
  const before = process.memoryUsage().rss;
  const started = Date.now();
  expect(await refusal(readConfigFile('/proc/self/pagemap'))).toBe(
    `config file /proc/self/pagemap is larger than ${MAX_CONFIG_FILE_BYTES} bytes: a config file may hold at most ${MAX_CONFIG_FILE_BYTES} bytes`,
  );
  expect(Date.now() - started).toBeLessThan(5000);
  expect(process.memoryUsage().rss - before).toBeLessThan(64 * 1024 * 1024);
});

test('a file of exactly the limit is read; one byte more is refused', async () => {
  const ok = path.join(dir, 'ok.toml');
  fs.writeFileSync(ok, `name = "a"\n${'#'.repeat(MAX_CONFIG_FILE_BYTES - 12)}\n`);
  expect(fs.statSync(ok).size).toBe(MAX_CONFIG_FILE_BYTES);
  expect(await readConfigFile(ok)).toMatch(/^name = "a"\n/);
  fs.appendFileSync(ok, '#');
  expect(await refusal(readConfigFile(ok))).toMatch(/is larger than 262144 bytes/);
});

test('a FIFO with no writer is refused at once instead of blocking', async () => {
  const fifo = path.join(dir, 'fifo.toml');
  execFileSync('mkfifo', [fifo]);
  const started = Date.now();
  expect(await refusal(readConfigFile(fifo))).toBe(
    `config file ${fifo} is not a regular file: give a TOML file`,
  );
  expect(Date.now() - started).toBeLessThan(2000);
});

test.each(['/dev/zero', '/dev/null', '/tmp'])('%s is not a regular file', async (file) => {
  expect(await refusal(readConfigFile(file))).toBe(
    `config file ${file} is not a regular file: give a TOML file`,
  );
});

test('a missing file names the file and the errno', async () => {
  expect(await refusal(readConfigFile(path.join(dir, 'nope.toml')))).toBe(
    `cannot read config file ${path.join(dir, 'nope.toml')}: ENOENT`,
  );
});

test('the store refuses a FIFO or an oversized <name>.toml without blocking, and list reports it', async () => {
  const store = new FileConfigStore(path.join(dir, 'vm-provisioner'));
  await store.write(defaultSpec('vmp-t-ok'));
  execFileSync('mkfifo', [store.pathOf('vmp-t-fifo')]);
  fs.writeFileSync(store.pathOf('vmp-t-big'), `name = "vmp-t-big"\n${'#'.repeat(300 * 1024)}\n`);
  expect(await refusal(store.read('vmp-t-fifo'))).toMatch(/vmp-t-fifo\.toml is not a regular file/);
  expect(await refusal(store.read('vmp-t-big'))).toMatch(/vmp-t-big\.toml is larger than 262144 bytes/);
  const listed = await store.list();
  expect(listed.map((e) => [e.name, e.error === undefined])).toEqual([
    ['vmp-t-big', false],
    ['vmp-t-fifo', false],
    ['vmp-t-ok', true],
  ]);
});

test("the store never touches the predecessor's vm-passwords.toml", async () => {
  const store = new FileConfigStore(path.join(dir, 'vm-provisioner'));
  await store.write(defaultSpec('vmp-t-ok'));
  const legacy = path.join(store.dir, 'vm-passwords.toml');
  fs.writeFileSync(legacy, '[passwords]\nold-vm = "hunter2hunter2"\n');
  await expect(store.remove('vm-passwords')).rejects.toThrow(InputError);
  await expect(store.read('vm-passwords')).rejects.toThrow(InputError);
  await expect(store.exists('vm-passwords')).rejects.toThrow(InputError);
  expect((await store.list()).map((e) => e.name)).toEqual(['vmp-t-ok']);
  expect(fs.readFileSync(legacy, 'utf8')).toContain('old-vm');
});
