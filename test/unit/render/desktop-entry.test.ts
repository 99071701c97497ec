import {
  appArgv,
  appDisplayName,
  appSlug,
  execLine,
  LABEL_COLOURS,
  parseExecLine,
  quoteExecArg,
  renderLauncher,
  renderLauncherIcon,
} from '../../../src/render/desktop-entry.js';
import { LABELS } from '../../../src/spec/validate.js';
import { expectGolden } from '../../support/golden.js';

const CLI = { node: '/usr/bin/node', script: '/usr/lib/node_modules/vm-provisioner/dist/src/cli/main.js' };

describe('launcher .desktop entries (golden)', () => {
  test('a plain app', () => {
    const l = renderLauncher(
      {
        vm: 'work',
        label: 'blue',
        command: 'xterm -T work~shell',
        cli: CLI,
        iconPath: '/home/u/.local/share/icons/hicolor/scalable/apps/vm-provisioner-work_xterm.svg',
      },
      'xterm',
    );
    expect(l.id).toBe('vm-provisioner-work_xterm');
    expect(l.name).toBe('xterm');
    expectGolden('render/launchers/vm-provisioner-work_xterm.desktop', l.desktopEntry);
    // The Exec line parses back to exactly the argv it was made from.
    const exec = /^Exec=(.*)$/m.exec(l.desktopEntry)![1]!;
    expect(parseExecLine(exec)).toEqual([
      CLI.node,
      CLI.script,
      'run',
      'work',
      '--',
      'xterm',
      '-T',
      'work~shell',
    ]);
  });

  test('a Flatpak app is named after its ID', () => {
    const l = renderLauncher(
      {
        vm: 'browsing',
        label: 'red',
        command: 'flatpak run --branch=stable org.mozilla.firefox',
        cli: CLI,
        iconPath: '/home/u/.local/share/icons/hicolor/scalable/apps/vm-provisioner-browsing_firefox.svg',
      },
      'firefox',
    );
    expect(l.name).toBe('firefox');
    expectGolden('render/launchers/vm-provisioner-browsing_firefox.desktop', l.desktopEntry);
  });

  test('icons: one per label colour, with the app initial', () => {
    for (const label of LABELS) {
      const svg = renderLauncherIcon(label, 'firefox');
      expect(svg).toContain(`fill="${LABEL_COLOURS[label]}"`);
      expectGolden(`render/launchers/icon-${label}.svg`, svg);
    }
    expect(renderLauncherIcon('gray', '')).toContain('>?</text>');
  });
});

describe('Exec escaping (Desktop Entry Specification 1.5, "The Exec key")', () => {
  test.each([
    ['plain', 'plain'],
    ['with space', '"with space"'],
    ['~/x', '"~/x"'],
    ['100%', '100%%'],
    ['a"b', '"a\\\\"b"'],
    ['$HOME', '"\\\\$HOME"'],
    ['back\\slash', '"back\\\\\\\\slash"'],
    ['`x`', '"\\\\`x\\\\`"'],
    ['a=b,c:d', 'a=b,c:d'],
  ])('%j is written as %s and read back unchanged', (arg, written) => {
    expect(quoteExecArg(arg)).toBe(written);
    expect(parseExecLine(execLine(['prog', arg]))).toEqual(['prog', arg]);
  });

  test('empty, control and non-ASCII arguments are refused, not escaped', () => {
    expect(() => quoteExecArg('')).toThrow(/empty or not printable ASCII/);
    expect(() => quoteExecArg('a\nb')).toThrow(/not printable ASCII/);
    expect(() => quoteExecArg('caf\u00e9')).toThrow(/not printable ASCII/);
  });
});

describe('app names and grammar', () => {
  test('names and slugs', () => {
    expect(appDisplayName(['/usr/bin/xterm'])).toBe('xterm');
    expect(appDisplayName(['flatpak', 'run', 'org.gnome.TextEditor'])).toBe('TextEditor');
    expect(appSlug('TextEditor')).toBe('texteditor');
    expect(appSlug('my app++')).toBe('my-app');
    expect(appSlug('+++')).toBe('app');
    expect(appSlug('x'.repeat(60))).toHaveLength(40);
  });

  test('an app command outside the auto-launch grammar never reaches a file', () => {
    for (const bad of ['xterm  -T x', 'sh -c "x"', 'a;b', 'x $HOME', 'x\ty', '']) {
      expect(() => appArgv(bad)).toThrow(/not a word list/);
    }
    expect(() =>
      renderLauncher(
        { vm: 'w', label: 'red', command: 'x', cli: { ...CLI, node: 'node' }, iconPath: '/i.svg' },
        'x',
      ),
    ).toThrow(/node "node" must be an absolute path/);
    expect(() =>
      renderLauncher(
        {
          vm: 'w',
          label: 'red',
          command: 'x',
          cli: { ...CLI, script: '/my dir/main.js' },
          iconPath: '/i.svg',
        },
        'x',
      ),
    ).toThrow(/CLI script "\/my dir\/main.js" must be an absolute path/);
  });
});
