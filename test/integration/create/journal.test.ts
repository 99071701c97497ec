import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  cleanUpUnfinished,
  collectGarbage,
  currentProcess,
  isAlive,
  Journal,
  readJournal,
  type CleanupDeps,
  type JournalRecord,
} from '../../../src/service/journal.js';
import { AlreadyExistsError } from '../../../src/util/errors.js';

/**
 * The journal module on its own, with real files and real processes (no
 * libvirt, no keyring: journals here list only files, directories and locks).
 */

let root: string;
let dir: string;

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-journal-'));
  dir = path.join(root, 'journal');
});

afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

const deps = (): CleanupDeps => ({
  dir,
  hypervisorFor: () => Promise.reject(new Error('no hypervisor in this test')),
  secretStoreFor: () => {
    throw new Error('no keyring in this test');
  },
});

/** A pid that certainly ran and has exited (and been reaped). */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid!;
}

/** Rewrites the journal as if another process, `owner`, had written it. */
function ownedBy(vm: string, owner: Partial<JournalRecord['owner']>): void {
  const file = path.join(dir, `${vm}.json`);
  const record = JSON.parse(fs.readFileSync(file, 'utf8')) as JournalRecord;
  record.owner = { ...record.owner, ...owner };
  fs.writeFileSync(file, JSON.stringify(record));
}

test('each step is on disk before the step runs, with the owner; finish removes the file', async () => {
  const journal = await Journal.begin({
    vm: 'a-vm',
    operation: 'create --import',
    connectUri: 'test:///x',
    dir,
  });
  const file = path.join(root, 'made.img');
  await journal.step('disk', [{ kind: 'file', path: file }]);
  const onDisk = await readJournal('a-vm', dir);
  expect(onDisk).toMatchObject({
    version: 1,
    vm: 'a-vm',
    operation: 'create --import',
    connectUri: 'test:///x',
    owner: currentProcess(),
    steps: [{ step: 'disk', entries: [{ kind: 'file', path: file }] }],
  });
  expect(fs.statSync(journal.file).mode & 0o777).toBe(0o600);
  expect(fs.readdirSync(dir)).toEqual(['a-vm.json']);
  await journal.finish();
  expect(fs.readdirSync(dir)).toEqual([]);
});

test('a second journal for the same VM is refused, saying what to run', async () => {
  await Journal.begin({ vm: 'b-vm', operation: 'create', connectUri: 'test:///x', dir });
  await expect(
    Journal.begin({ vm: 'b-vm', operation: 'create', connectUri: 'test:///x', dir }),
  ).rejects.toThrow(/being created by another process \(pid \d+\)/);
  ownedBy('b-vm', { pid: deadPid() });
  const refused = Journal.begin({ vm: 'b-vm', operation: 'create', connectUri: 'test:///x', dir });
  await expect(refused).rejects.toThrow(AlreadyExistsError);
  await expect(refused).rejects.toThrow(/run "vm-provisioner gc" or "vm-provisioner destroy b-vm"/);
});

test('liveness: this process is alive; an exited pid is not; a live pid with another start time is not', () => {
  const me = currentProcess();
  expect(me.startTicks).toMatch(/^\d+$/);
  expect(isAlive(me)).toBe(true);
  expect(isAlive({ ...me, pid: deadPid() })).toBe(false);
  // Our pid, but recorded with a different start: a reused pid, not the creator.
  expect(isAlive({ ...me, startTicks: String(Number(me.startTicks) + 1) })).toBe(false);
  expect(isAlive({ ...me, bootId: 'another-boot' })).toBe(false);
});

test('cleanup removes exactly what is listed, newest first; a lock a newer create holds is kept', async () => {
  const journal = await Journal.begin({
    vm: 'c-vm',
    operation: 'create',
    connectUri: 'test:///x',
    dir,
    entries: [{ kind: 'lock', path: path.join(root, 'c-vm.lock') }],
  });
  const listed = path.join(root, 'listed.img');
  const neverMade = path.join(root, 'never-made.img');
  const staging = path.join(root, 'vmp-install-abc');
  const unlisted = path.join(root, 'c-vm-unlisted.img');
  fs.writeFileSync(listed, 'x');
  fs.mkdirSync(staging);
  fs.writeFileSync(path.join(staging, 'initrd.img'), 'hash');
  fs.writeFileSync(unlisted, 'not in the journal');
  await journal.step('initrd', [{ kind: 'directory', path: staging }]);
  await journal.step('disk', [{ kind: 'file', path: listed }]);
  await journal.step('domain-less', [{ kind: 'file', path: neverMade }]);

  // While the creator lives, nothing is touched.
  fs.writeFileSync(path.join(root, 'c-vm.lock'), `${process.pid}\n`);
  await expect(cleanUpUnfinished(deps(), 'c-vm')).rejects.toThrow(/still being created/);
  expect(await collectGarbage(deps())).toEqual([
    { vm: 'c-vm', status: 'in-progress', pid: process.pid, operation: 'create' },
  ]);
  expect(fs.existsSync(listed)).toBe(true);

  const dead = deadPid();
  ownedBy('c-vm', { pid: dead });
  // A newer create broke the stale lock and holds it now.
  const [outcome] = await collectGarbage(deps());
  expect(outcome).toMatchObject({ vm: 'c-vm', status: 'removed' });
  const report = (outcome as { report: Awaited<ReturnType<typeof cleanUpUnfinished>> }).report;
  expect(report.removed).toEqual([
    { kind: 'file', path: listed },
    { kind: 'directory', path: staging },
  ]);
  expect(report.kept).toEqual([
    { entry: { kind: 'lock', path: path.join(root, 'c-vm.lock') }, reason: `held by pid ${process.pid}` },
  ]);
  expect(fs.existsSync(listed)).toBe(false);
  expect(fs.existsSync(staging)).toBe(false);
  expect(fs.existsSync(unlisted)).toBe(true);
  expect(fs.existsSync(path.join(root, 'c-vm.lock'))).toBe(true);
  expect(fs.readdirSync(dir)).toEqual([]);
});

test("the dead creator's own lock is removed", async () => {
  const lock = path.join(root, 'd-vm.lock');
  await Journal.begin({
    vm: 'd-vm',
    operation: 'create',
    connectUri: 'test:///x',
    dir,
    entries: [{ kind: 'lock', path: lock }],
  });
  const dead = deadPid();
  fs.writeFileSync(lock, `${dead}\n`);
  ownedBy('d-vm', { pid: dead });
  const report = await cleanUpUnfinished(deps(), 'd-vm');
  expect(report.removed).toEqual([{ kind: 'lock', path: lock }]);
  expect(fs.existsSync(lock)).toBe(false);
});
