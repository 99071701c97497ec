import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeDomain } from '../../../src/libvirt/inspect.js';
import { renderDomainXml } from '../../../src/render/domain-xml.js';
import {
  chooseTemplate,
  claimName,
  claimPreloaded,
  markPreloaded,
  preloadedDisposables,
  sweeps,
  describeEnd,
  disposableName,
  DisposableWatch,
  DISPOSABLE_NAME,
  flatpakArgv,
  isOrphaned,
  listRecords,
  pickDisposableName,
  readRecord,
  type OwnerRecord,
} from '../../../src/service/disposable.js';
import { currentProcess, isAlive, type ProcessIdentity } from '../../../src/service/journal.js';
import { testSpec } from '../../support/spec-fixture.js';

/** The decisions of disposables (docs/disposables.md): names, owners, templates, when one ends. */

describe('names: dispNNNN, random, retried on a clash', () => {
  test('four digits, zero-padded', () => {
    expect(disposableName(() => 7)).toBe('disp0007');
    expect(disposableName(() => 9999)).toBe('disp9999');
    for (let i = 0; i < 50; i++) expect(disposableName()).toMatch(DISPOSABLE_NAME);
  });

  test('a taken name is skipped for the next random one', async () => {
    const draws = [12, 12, 34];
    const taken = new Set(['disp0012']);
    const name = await pickDisposableName(
      async (n) => taken.has(n),
      () => draws.shift()!,
    );
    expect(name).toBe('disp0034');
    expect(draws).toEqual([]);
  });

  test('gives up after its tries with an error saying what to run', async () => {
    await expect(
      pickDisposableName(
        async () => true,
        () => 1,
        5,
      ),
    ).rejects.toThrow('no free disposable name after 5 tries: remove old disposables (vm-provisioner gc)');
  });
});

describe('owners: a disposable whose CLI is gone is an orphan', () => {
  /** The identity of a process that has exited (its pid may be reused; its start time tells). */
  function deadProcess(): ProcessIdentity {
    const r = spawnSync(process.execPath, [
      '-e',
      "const f=require('fs').readFileSync('/proc/self/stat','utf8');console.log(process.pid, f.slice(f.lastIndexOf(')')+2).split(' ')[19])",
    ]);
    const [pid, ticks] = r.stdout.toString().trim().split(' ');
    return { pid: Number(pid), startTicks: ticks!, bootId: currentProcess().bootId };
  }

  test('this process is alive; an exited one is not; one from another boot is not', () => {
    expect(isAlive(currentProcess())).toBe(true);
    expect(isAlive(deadProcess())).toBe(false);
    expect(isAlive({ ...currentProcess(), bootId: '00000000-0000-0000-0000-000000000000' })).toBe(false);
    // Same pid, another start time: the pid was reused by someone else.
    expect(isAlive({ ...currentProcess(), startTicks: '1' })).toBe(false);
  });

  test('only a disposable can be orphaned: live owner no, dead owner yes, no owner yes', () => {
    const live = currentProcess();
    const dead = deadProcess();
    expect(isOrphaned({ role: 'disposable', disposableOwner: live })).toBe(false);
    expect(isOrphaned({ role: 'disposable', disposableOwner: dead })).toBe(true);
    expect(isOrphaned({ role: 'disposable' })).toBe(true);
    expect(isOrphaned({ role: 'template', disposableOwner: dead })).toBe(false);
    expect(isOrphaned({ disposableOwner: dead })).toBe(false);
  });

  test('the mark and owner survive the domain XML: rendered, then read back', () => {
    const owner = currentProcess();
    const spec = testSpec({ name: 'disp0042', vmDir: '/var/lib/vmp' });
    const xml = renderDomainXml(spec, {
      diskPath: '/var/lib/vmp/disp0042-root.qcow2',
      template: {
        name: 'base',
        disk: '/var/lib/vmp/base.qcow2',
        privateDisk: '/var/lib/vmp/disp0042-private.qcow2',
      },
      disposable: owner,
      version: '0.0.0-test',
    });
    const d = describeDomain(xml);
    expect(d.role).toBe('disposable');
    expect(d.disposableOwner).toEqual(owner);
    expect(d.template?.name).toBe('base');
  });

  test('a bad owner, or a disposable on no template, is refused before any XML', () => {
    const spec = testSpec({ name: 'disp0042' });
    const template = { name: 'base', disk: '/b.qcow2', privateDisk: '/p.qcow2' };
    const owner = currentProcess();
    expect(() =>
      renderDomainXml(spec, {
        diskPath: '/r.qcow2',
        template,
        disposable: { ...owner, pid: 0 },
        version: '1',
      }),
    ).toThrow(/disposable owner .* is invalid/);
    expect(() =>
      renderDomainXml(spec, {
        diskPath: '/r.qcow2',
        template,
        disposable: { ...owner, startTicks: '1"/><x' },
        version: '1',
      }),
    ).toThrow(/disposable owner .* is invalid/);
    expect(() => renderDomainXml(spec, { diskPath: '/r.qcow2', disposable: owner, version: '1' })).toThrow(
      /on no template/,
    );
  });
});

describe('owner records claim a name exclusively', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-disp-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const record = (name: string): OwnerRecord => ({
    version: 1,
    name,
    template: 'base',
    connectUri: 'qemu:///system',
    owner: currentProcess(),
    createdAt: new Date(0).toISOString(),
  });

  test('the first claim wins, the second is refused; the record reads back; mode 0600', async () => {
    expect(await claimName(record('disp0001'), dir)).toBe(true);
    expect(await claimName({ ...record('disp0001'), template: 'other' }, dir)).toBe(false);
    expect((await readRecord('disp0001', dir))?.template).toBe('base');
    expect(fs.statSync(path.join(dir, 'disp0001.json')).mode & 0o777).toBe(0o600);
    expect(await listRecords(dir)).toEqual(['disp0001']);
    // No temporary file is left beside it.
    expect(fs.readdirSync(dir)).toEqual(['disp0001.json']);
  });

  test('a name that is not dispNNNN never becomes a path', async () => {
    await expect(claimName(record('../etc/x'), dir)).rejects.toThrow("'../etc/x' is not a disposable's name");
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  test('a damaged record is an error naming it, not a guess', async () => {
    fs.writeFileSync(path.join(dir, 'disp0002.json'), '{"version": 1}');
    await expect(readRecord('disp0002', dir)).rejects.toThrow(/disp0002.json is damaged/);
  });
});

describe('preloaded disposables: marked, claimed by one run only, swept by gc only', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-preload-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const dead: ProcessIdentity = { pid: 2 ** 22 + 17, startTicks: '1', bootId: null };
  const record = (name: string, template = 'base'): OwnerRecord => ({
    version: 1,
    name,
    template,
    connectUri: 'qemu:///system',
    owner: dead,
    createdAt: new Date(0).toISOString(),
  });
  const preloaded = (at: string) => ({ readySavedAt: 'r1', at, bootedAfter: 1000 });

  test('only marked records of the template and connection are offered, oldest first', async () => {
    expect(await claimName(record('disp0002'), dir)).toBe(true);
    expect(await claimName(record('disp0001'), dir)).toBe(true);
    expect(await claimName(record('disp0003', 'other'), dir)).toBe(true);
    expect(await claimName(record('disp0004'), dir)).toBe(true);
    await markPreloaded('disp0002', preloaded('2026-12-05T10:00:01Z'), dir);
    await markPreloaded('disp0001', preloaded('2026-12-05T10:00:02Z'), dir);
    await markPreloaded('disp0003', preloaded('2026-12-05T10:00:00Z'), dir);
    const offered = await preloadedDisposables('base', 'qemu:///system', dir);
    expect(offered.map((r) => r.name)).toEqual(['disp0002', 'disp0001']);
    expect(await preloadedDisposables('base', 'qemu+ssh://h/system', dir)).toEqual([]);
    expect((await readRecord('disp0002', dir))?.preloaded).toEqual(preloaded('2026-12-05T10:00:01Z'));
  });

  test("a claim makes the record the claimer's, once: a second claim is refused", async () => {
    await claimName(record('disp0005'), dir);
    await markPreloaded('disp0005', preloaded('2026-12-05T10:00:00Z'), dir);
    const me = currentProcess();
    expect(await claimPreloaded('disp0005', me, dir)).toBe(true);
    const taken = await readRecord('disp0005', dir);
    expect({ owner: taken?.owner, preloaded: taken?.preloaded }).toEqual({ owner: me, preloaded: undefined });
    expect(await claimPreloaded('disp0005', me, dir)).toBe(false);
    expect(await preloadedDisposables('base', 'qemu:///system', dir)).toEqual([]);
    // No claim file or temporary file is left.
    expect(fs.readdirSync(dir)).toEqual(['disp0005.json']);
  });

  test('one being claimed (a claim file) is offered to no other run', async () => {
    await claimName(record('disp0006'), dir);
    await markPreloaded('disp0006', preloaded('2026-12-05T10:00:00Z'), dir);
    fs.writeFileSync(path.join(dir, 'disp0006.claim'), JSON.stringify(dead));
    expect(await preloadedDisposables('base', 'qemu:///system', dir)).toEqual([]);
    expect(await claimPreloaded('disp0006', currentProcess(), dir)).toBe(false);
  });

  test('a marked record with a damaged mark is refused as damaged', async () => {
    fs.writeFileSync(
      path.join(dir, 'disp0007.json'),
      JSON.stringify({ ...record('disp0007'), preloaded: { readySavedAt: 'r1' } }),
    );
    await expect(readRecord('disp0007', dir)).rejects.toThrow(/disp0007.json is damaged/);
  });

  test('what a sweep removes: dead owners; of preloaded ones, a dead claimer, or any with gc', () => {
    const me = currentProcess();
    const mark = preloaded('2026-12-05T10:00:00Z');
    expect(sweeps({ owner: me }, undefined, 'keep')).toBe(false);
    expect(sweeps({ owner: dead }, undefined, 'keep')).toBe(true);
    // Preloaded: its owner (the run that preloaded it) may be gone.
    expect(sweeps({ owner: dead, preloaded: mark }, undefined, 'keep')).toBe(false);
    expect(sweeps({ owner: dead, preloaded: mark }, undefined, 'remove')).toBe(true);
    expect(sweeps({ owner: dead, preloaded: mark }, me, 'remove')).toBe(false);
    expect(sweeps({ owner: me, preloaded: mark }, dead, 'keep')).toBe(true);
    expect(sweeps({ owner: me, preloaded: mark }, null, 'keep')).toBe(true);
  });
});

describe('which template', () => {
  test('--template first, then the defaults file, then the only template', () => {
    expect(chooseTemplate('a', { name: 'b', source: 'd.toml' }, ['c'])).toEqual({
      name: 'a',
      source: '--template',
    });
    expect(chooseTemplate(undefined, { name: 'b', source: 'd.toml' }, ['c'])).toEqual({
      name: 'b',
      source: 'd.toml',
    });
    expect(chooseTemplate(undefined, undefined, ['c'])).toEqual({ name: 'c', source: 'the only template' });
  });

  test('none, or several and no choice: one line saying what to pass', () => {
    expect(() => chooseTemplate(undefined, undefined, [])).toThrow(
      'run --disposable: there is no template; make one (template import or template create) and pass --template',
    );
    expect(() => chooseTemplate(undefined, undefined, ['a', 'b'])).toThrow(
      'run --disposable: 2 templates (a, b); pick one with --template or default_template in defaults.toml',
    );
  });

  test('--flatpak ID: flatpak run ID, the ID checked against the Flatpak grammar', () => {
    expect(flatpakArgv('org.mozilla.firefox')).toEqual(['flatpak', 'run', 'org.mozilla.firefox']);
    expect(() => flatpakArgv('firefox; reboot')).toThrow(/firefox; reboot/);
    expect(() => flatpakArgv('--command=sh')).toThrow();
  });
});

describe('when a disposable ends', () => {
  const win = (id: number) => ({ id, wmClass: 'XTerm' });

  test('its command exits (matched by exec id)', () => {
    const watch = new DisposableWatch('disp0001');
    expect(watch.started(5)).toBeUndefined();
    expect(
      watch.apply({ vm: 'disp0001', type: 'exec-exited', execId: 4, how: 'exited', code: 0 }),
    ).toBeUndefined();
    expect(watch.apply({ vm: 'disp0001', type: 'exec-exited', execId: 5, how: 'exited', code: 2 })).toEqual({
      reason: 'exited',
      how: 'exited',
      code: 2,
    });
  });

  test('an exit that arrives before run has answered is kept for it', () => {
    const watch = new DisposableWatch('disp0001');
    expect(
      watch.apply({ vm: 'disp0001', type: 'exec-exited', execId: 9, how: 'signalled', code: 15 }),
    ).toBeUndefined();
    expect(watch.started(9)).toEqual({ reason: 'exited', how: 'signalled', code: 15 });
  });

  test('its last window closes: only after it had one; other VMs do not count', () => {
    const watch = new DisposableWatch('disp0001');
    // The agent's first snapshot has no windows yet: not an end.
    expect(watch.apply({ vm: 'disp0001', type: 'window-list', focused: 0, windows: [] })).toBeUndefined();
    expect(watch.apply({ vm: 'disp0001', type: 'window-created', window: win(1) })).toBeUndefined();
    expect(watch.apply({ vm: 'disp0001', type: 'window-created', window: win(2) })).toBeUndefined();
    expect(watch.apply({ vm: 'other', type: 'window-destroyed', id: 1 })).toBeUndefined();
    expect(watch.apply({ vm: 'disp0001', type: 'window-destroyed', id: 1 })).toBeUndefined();
    expect(watch.windowCount).toBe(1);
    expect(watch.apply({ vm: 'disp0001', type: 'window-destroyed', id: 2 })).toEqual({
      reason: 'last-window-closed',
    });
  });

  test('a VM forgotten at the proxy (destroyed by someone else) ends it', () => {
    const watch = new DisposableWatch('disp0001');
    expect(watch.apply({ vm: 'disp0001', type: 'vm-forgotten' })).toEqual({ reason: 'agent-gone' });
  });

  test('each end in one line', () => {
    expect(describeEnd({ reason: 'exited', how: 'exited', code: 0 })).toBe(
      'its command exited with status 0',
    );
    expect(describeEnd({ reason: 'exited', how: 'signalled', code: 9 })).toBe(
      'its command was killed by signal 9',
    );
    expect(describeEnd({ reason: 'last-window-closed' })).toBe('its last window closed');
  });
});
