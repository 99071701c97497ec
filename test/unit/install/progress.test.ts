import fs from 'node:fs';
import {
  cleanConsoleLine,
  InstallProgressParser,
  parseInstallLog,
  type ProgressEvent,
} from '../../../src/install/progress.js';

const sample = (name: string): string => fs.readFileSync(`test/support/install-logs/${name}`, 'utf8');

/** Feeds text in chunks of `size` characters, as a growing log file delivers it. */
function feed(text: string, vmName: string, size: number): ProgressEvent[] {
  const parser = new InstallProgressParser(vmName);
  const events: ProgressEvent[] = [];
  for (let i = 0; i < text.length; i += size) events.push(...parser.push(text.slice(i, i + size)));
  events.push(...parser.end());
  return events;
}

describe('install progress parser', () => {
  test('a successful Anaconda install: stages in order, downloads, package counts, the success marker', () => {
    const events = feed(sample('anaconda-success.log'), 'vmp-t-inst-firefox', 4096);
    expect(events.filter((e) => e.type === 'stage').map((e) => (e.type === 'stage' ? e.stage : ''))).toEqual([
      'starting-installer',
      'setting-up',
      'storage',
      'pre-install',
      'installing-software',
      'configuring-system',
      'post-scripts',
      'complete',
    ]);
    expect(
      events.filter((e) => e.type === 'download').map((e) => (e.type === 'download' ? e.percent : -1)),
    ).toEqual([0, 50, 100]);
    expect(events.filter((e) => e.type === 'package')).toEqual([
      { type: 'package', name: 'libgcc.x86_64', done: 1, total: 412 },
      { type: 'package', name: 'glibc.x86_64', done: 2, total: 412 },
      { type: 'package', name: 'kitty.x86_64', done: 411, total: 412 },
      { type: 'package', name: 'i3.x86_64', done: 412, total: 412 },
    ]);
    expect(events).toContainEqual({ type: 'success', vmName: 'vmp-t-inst-firefox' });
    expect(events.some((e) => e.type === 'failure' || e.type === 'waiting-for-input')).toBe(false);
  });

  test('the same events whatever the chunking (1, 7 and 100 characters)', () => {
    const text = sample('anaconda-success.log');
    const whole = feed(text, 'vmp-t-inst-firefox', text.length);
    expect(feed(text, 'vmp-t-inst-firefox', 1)).toEqual(whole);
    expect(feed(text, 'vmp-t-inst-firefox', 7)).toEqual(whole);
    expect(feed(text, 'vmp-t-inst-firefox', 100)).toEqual(whole);
  });

  test('the final state of a whole log', () => {
    const state = parseInstallLog(sample('anaconda-success.log'), 'vmp-t-inst-firefox');
    expect(state).toMatchObject({
      stage: 'complete',
      packagesDone: 412,
      packagesTotal: 412,
      lastPackage: 'i3.x86_64',
      succeeded: true,
    });
    expect(state.failure).toBeUndefined();
    expect(state.recentLines.at(-1)).toBe('[  812.417795] reboot: Power down');
  });

  test('the success marker of another VM does not count', () => {
    const state = parseInstallLog(sample('anaconda-success.log'), 'vmp-t-inst-other');
    expect(state.succeeded).toBe(false);
    expect(state.stage).toBe('complete');
  });

  test('a marker that is not at the start of a line (a shell echoing the command) does not count', () => {
    expect(parseInstallLog('+ echo VMP-INSTALL-OK vm1\necho "VMP-INSTALL-FAILED"\n', 'vm1')).toMatchObject({
      succeeded: false,
      failure: undefined,
    });
  });

  test('a failed install (CRLF line ends, dots glued to messages): the failure marker and where it stopped', () => {
    const events = feed(sample('anaconda-failure.log'), 'vmp-t-inst-firefox', 64);
    expect(events).toContainEqual({ type: 'failure', detail: 'anaconda stopped in software installation' });
    expect(events).toContainEqual({ type: 'stage', stage: 'storage', label: 'Configuring storage' });
    const state = parseInstallLog(sample('anaconda-failure.log'), 'vmp-t-inst-firefox');
    expect(state).toMatchObject({ stage: 'installing-software', succeeded: false });
  });

  test('an incomplete kickstart: the hub prompt (no newline) is reported as waiting for input', () => {
    const parser = new InstallProgressParser('vm');
    const events = parser.push(sample('anaconda-prompt.log'));
    expect(events).toContainEqual({
      type: 'waiting-for-input',
      prompt:
        "Please make a selection from the above ['b' to begin installation, 'q' to quit, 'r' to refresh]:",
    });
    expect(parser.push('')).toEqual([]); // reported once
  });

  test('stages never move backwards', () => {
    const events = feed('Running post-installation scripts\nConfiguring storage\n', 'vm', 1000);
    expect(events).toEqual([
      { type: 'stage', stage: 'post-scripts', label: 'Running post-installation scripts' },
    ]);
  });

  test('console line cleaning: ANSI escapes, carriage-return redraws, progress dots', () => {
    expect(cleanConsoleLine('\x1b[0;32m  OK  \x1b[0m] Started x')).toBe('OK  ] Started x');
    expect(cleanConsoleLine('Downloading 1%\rDownloading 50%\r')).toBe('Downloading 50%');
    expect(cleanConsoleLine('...Configuring storage')).toBe('Configuring storage');
    expect(cleanConsoleLine('Installing.')).toBe('Installing.');
  });

  test("the failure detail drops the VM name the kickstart's marker starts with", () => {
    expect(parseInstallLog('VMP-INSTALL-FAILED vm1 %post line 12\n', 'vm1').failure).toBe('%post line 12');
    expect(parseInstallLog('VMP-INSTALL-FAILED vm1\n', 'vm1').failure).toBe('');
    expect(parseInstallLog('VMP-INSTALL-FAILED disk full\n', 'vm1').failure).toBe('disk full');
  });
});
