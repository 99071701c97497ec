import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { launcherDirs, syncLaunchers } from '../../../src/service/launchers.js';
import { defaultSpec } from '../../../src/spec/defaults.js';
import { FileConfigStore } from '../../../src/spec/store.js';

/**
 * `launchers sync` on real files: a real config store, a private
 * $XDG_DATA_HOME, and the real desktop-file-validate and xmllint.
 */

const CLI = { node: process.execPath, script: path.resolve('dist/src/cli/main.js') };

describe('launchers sync', () => {
  let tmp: string;
  let store: FileConfigStore;
  let dirs: { applications: string; icons: string };
  const sync = () => syncLaunchers({ configStore: store, dataHome: path.join(tmp, 'data'), cli: CLI });
  const apps = () => fs.readdirSync(dirs.applications).sort();
  const icons = () => fs.readdirSync(dirs.icons).sort();

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-launchers-'));
    store = new FileConfigStore(path.join(tmp, 'config'));
    dirs = launcherDirs(path.join(tmp, 'data'));
    await store.write(
      defaultSpec('work', {
        label: 'blue',
        autoLaunchApps: ['xterm -T work~shell', 'flatpak run org.mozilla.firefox'],
      }),
    );
    await store.write(defaultSpec('other', { autoLaunchApps: ['xterm', '/usr/bin/xterm -bg black'] }));
    await store.write(defaultSpec('no-apps', { autoLaunchApps: [] }));
    fs.mkdirSync(dirs.applications, { recursive: true });
    // Someone else's files: one with our prefix but not our marker, one unrelated.
    fs.writeFileSync(
      path.join(dirs.applications, 'vm-provisioner-gone_app.desktop'),
      '[Desktop Entry]\nType=Application\nName=mine\nExec=true\n',
    );
    fs.writeFileSync(path.join(dirs.applications, 'org.example.App.desktop'), '[Desktop Entry]\n');
  });

  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test('one entry and one icon per app, named NAME: app, each accepted by desktop-file-validate', async () => {
    const report = await sync();
    expect(report.problems).toEqual([]);
    expect(apps()).toEqual([
      'org.example.App.desktop',
      'vm-provisioner-gone_app.desktop',
      'vm-provisioner-other_xterm-2.desktop',
      'vm-provisioner-other_xterm.desktop',
      'vm-provisioner-work_firefox.desktop',
      'vm-provisioner-work_xterm.desktop',
    ]);
    expect(icons()).toEqual([
      'vm-provisioner-other_xterm-2.svg',
      'vm-provisioner-other_xterm.svg',
      'vm-provisioner-work_firefox.svg',
      'vm-provisioner-work_xterm.svg',
    ]);
    expect(report.written).toHaveLength(8);
    for (const name of apps().filter(
      (n) => n.startsWith('vm-provisioner-') && n !== 'vm-provisioner-gone_app.desktop',
    )) {
      const file = path.join(dirs.applications, name);
      // Exit status 0 and nothing printed: no error, no warning, no hint.
      expect(execFileSync('desktop-file-validate', [file], { encoding: 'utf8' })).toBe('');
      const icon = /^Icon=(.*)$/m.exec(fs.readFileSync(file, 'utf8'))![1]!;
      execFileSync('xmllint', ['--noout', icon]);
    }
    const work = fs.readFileSync(path.join(dirs.applications, 'vm-provisioner-work_firefox.desktop'), 'utf8');
    expect(work).toMatch(/^Name=work: firefox$/m);
    expect(fs.readFileSync(path.join(dirs.icons, 'vm-provisioner-work_firefox.svg'), 'utf8')).toContain(
      'fill="#3465a4"',
    );
    // The default label is gray.
    expect(fs.readFileSync(path.join(dirs.icons, 'vm-provisioner-other_xterm.svg'), 'utf8')).toContain(
      'fill="#555753"',
    );
  });

  test('a second sync changes nothing', async () => {
    const report = await sync();
    expect(report).toMatchObject({ written: [], removed: [], unchanged: 8 });
  });

  test("a label change rewrites that VM's files only (icon colour, and the label in the comment)", async () => {
    await store.write({ ...(await store.read('other')), label: 'red' });
    const report = await sync();
    expect(report.written.map((f) => path.basename(f)).sort()).toEqual([
      'vm-provisioner-other_xterm-2.desktop',
      'vm-provisioner-other_xterm-2.svg',
      'vm-provisioner-other_xterm.desktop',
      'vm-provisioner-other_xterm.svg',
    ]);
    expect(fs.readFileSync(path.join(dirs.icons, 'vm-provisioner-other_xterm.svg'), 'utf8')).toContain(
      'fill="#cc0000"',
    );
  });

  test('a VM whose config cannot be read keeps its launchers, and says so', async () => {
    const file = store.pathOf('other');
    const good = fs.readFileSync(file, 'utf8');
    fs.writeFileSync(file, 'memory = "lots"\n');
    try {
      const report = await sync();
      expect(report.removed).toEqual([]);
      expect(report.problems).toEqual([
        expect.stringMatching(/^other: config not readable .*; its launchers are kept$/),
      ]);
    } finally {
      fs.writeFileSync(file, good);
    }
  });

  test('the launchers of a VM that is gone are removed; files not made by us stay', async () => {
    await store.remove('work');
    const report = await sync();
    expect(report.removed.map((f) => path.basename(f)).sort()).toEqual([
      'vm-provisioner-work_firefox.desktop',
      'vm-provisioner-work_firefox.svg',
      'vm-provisioner-work_xterm.desktop',
      'vm-provisioner-work_xterm.svg',
    ]);
    expect(apps()).toEqual([
      'org.example.App.desktop',
      'vm-provisioner-gone_app.desktop',
      'vm-provisioner-other_xterm-2.desktop',
      'vm-provisioner-other_xterm.desktop',
    ]);
  });
});
