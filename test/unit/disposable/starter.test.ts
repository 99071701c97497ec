import { CloneUnavailable } from '../../../src/disposable/clone.js';
import { readyStateProblem } from '../../../src/disposable/ready-state.js';
import { startWithFallback } from '../../../src/disposable/starter.js';
import type { StartedDisposable } from '../../../src/service/disposable.js';
import { CancelledError, VmpError } from '../../../src/util/errors.js';

/** The order of what a start did, and its log lines. */
function recorder(ready: string | undefined, clone: () => Promise<StartedDisposable>) {
  const calls: string[] = [];
  const lines: string[] = [];
  const steps = {
    ready: async () => {
      calls.push('ready');
      return ready;
    },
    clone: async () => {
      calls.push('clone');
      return clone();
    },
    boot: async (): Promise<StartedDisposable> => {
      calls.push('boot');
      return { name: 'disp0001', bootedAfter: 2 };
    },
  };
  return { calls, lines, steps, log: (line: string) => lines.push(line) };
}

describe('a disposable start: a clone, else the cold boot', () => {
  test('a ready state: the clone, and no boot', async () => {
    const r = recorder(undefined, async () => ({
      name: 'disp0001',
      bootedAfter: 1,
      spiceUri: 'spice://x:1',
    }));
    await expect(startWithFallback('disp0001', r.steps, r.log)).resolves.toEqual({
      name: 'disp0001',
      bootedAfter: 1,
      spiceUri: 'spice://x:1',
    });
    expect(r.calls).toEqual(['ready', 'clone']);
    expect(r.lines).toEqual([]);
  });

  test('no ready state to be had: the cold boot, saying why in one line', async () => {
    const r = recorder("template 'tpl' is running (being updated?)", async () => {
      throw new Error('never cloned');
    });
    await expect(startWithFallback('disp0001', r.steps, r.log)).resolves.toEqual({
      name: 'disp0001',
      bootedAfter: 2,
    });
    expect(r.calls).toEqual(['ready', 'boot']);
    expect(r.lines).toEqual(["disp0001: no clone (template 'tpl' is running (being updated?)); booting it"]);
  });

  test('CloneUnavailable from the clone: the cold boot', async () => {
    const r = recorder(undefined, async () => {
      throw new CloneUnavailable('the restore failed');
    });
    await expect(startWithFallback('disp0001', r.steps, r.log)).resolves.toMatchObject({ bootedAfter: 2 });
    expect(r.calls).toEqual(['ready', 'clone', 'boot']);
    expect(r.lines).toEqual(['disp0001: no clone (the restore failed); booting it']);
  });

  test('an abort or any other error of the clone is the start’s: no boot', async () => {
    for (const error of [new CancelledError('interrupted'), new VmpError('keyring locked')]) {
      const r = recorder(undefined, async () => {
        throw error;
      });
      await expect(startWithFallback('disp0001', r.steps, r.log)).rejects.toBe(error);
      expect(r.calls).toEqual(['ready', 'clone']);
    }
  });
});

describe('whether a ready state still fits its template', () => {
  const state = { templateDisk: '/vms/tpl.qcow2', seal: { mtimeNs: '100', sizeBytes: 5 } };
  const template = { name: 'tpl', disk: '/vms/tpl.qcow2', seal: { mtimeNs: '100', sizeBytes: 5 } };

  test('the same disk and seal: it fits', () => {
    expect(readyStateProblem(state, template)).toBeUndefined();
  });

  test('a template update (another seal), another disk or no seal: stale', () => {
    for (const changed of [
      { ...template, seal: { mtimeNs: '101', sizeBytes: 5 } },
      { ...template, seal: { mtimeNs: '100', sizeBytes: 6 } },
      { ...template, disk: '/other/tpl.qcow2' },
      { name: 'tpl', disk: '/vms/tpl.qcow2' },
    ]) {
      expect(readyStateProblem(state, changed)).toBe(
        "the ready state of template 'tpl' is stale: the template changed after it was saved",
      );
    }
  });
});
