import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { extractPostScripts, renderKickstart } from '../../../src/render/kickstart.js';
import { renderI3Config } from '../../../src/render/i3config.js';
import {
  renderAgentUnit,
  renderAppUnits,
  renderSessionTarget,
  type UnitFile,
} from '../../../src/render/units.js';
import { describeWith } from '../../support/services.js';
import { probeCommand } from '../../support/tools.js';
import { GOLDEN_INPUTS, GOLDEN_SPECS } from '../../support/render-fixtures.js';

/**
 * The generated guest files checked with the real tools on this Debian
 * machine: i3's own config parser, systemd's unit verifier, shellcheck and
 * bash's parser. Each check is also shown to fail on a broken input.
 */

const goldenNames = Object.keys(GOLDEN_SPECS);
const kickstarts = (): Array<[string, string]> =>
  goldenNames.map((n) => [n, renderKickstart(GOLDEN_SPECS[n]!, GOLDEN_INPUTS[n]!)]);

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-ks-tools-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function run(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    timeout: 60_000,
    input: opts.input,
    env: opts.env ?? process.env,
  });
  if (r.error) throw r.error;
  return { status: r.status, out: `${r.stdout}${r.stderr}`, stderr: r.stderr };
}

/** i3 -C exits 0 on success, but a few problems are only logged: treat any ERROR line as failure. */
function i3Check(text: string, name: string): { ok: boolean; out: string } {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, text);
  const r = run('i3', ['-C', '-c', file]);
  return { ok: r.status === 0 && !/ERROR/.test(r.out), out: r.out };
}

describeWith(probeCommand('i3', ['-v']), 'i3 -C on the generated i3 config')('i3 config', () => {
  test.each(goldenNames)('the config for %s passes i3 -C', (name) => {
    const r = i3Check(renderI3Config(GOLDEN_SPECS[name]!), `i3-${name}`);
    expect(r.out).toBe(r.ok ? r.out : '(must pass)');
    expect(r.ok).toBe(true);
  });

  test('a broken config fails the same check', () => {
    const broken = `${renderI3Config(GOLDEN_SPECS['firefox-vm']!)}default_border sometimes\n`;
    expect(i3Check(broken, 'i3-broken').ok).toBe(false);
  });
});

/**
 * `systemd-analyze --user verify` loads the units into a scratch user
 * manager. It exits 0 even for unknown keys or bad values (it only logs them),
 * so any output at all counts as a failure.
 */
function verifyUnits(units: UnitFile[], dirName: string): { ok: boolean; out: string } {
  const dir = path.join(tmp, dirName);
  fs.mkdirSync(dir, { recursive: true });
  const runtime = fs.mkdtempSync(path.join(tmp, 'xdg-runtime-'));
  const files = units.map((u) => {
    const file = path.join(dir, u.fileName);
    fs.writeFileSync(file, u.content);
    return file;
  });
  const r = run('systemd-analyze', ['--user', '--man=no', 'verify', ...files], {
    env: { ...process.env, XDG_RUNTIME_DIR: runtime },
  });
  return { ok: r.status === 0 && r.out.trim() === '', out: r.out };
}

describeWith(probeCommand('systemd-analyze', ['--version']), 'systemd-analyze verify on the generated units')(
  'systemd user units',
  () => {
    test('the session target and the guest agent unit verify cleanly', () => {
      const r = verifyUnits([renderSessionTarget(), renderAgentUnit()], 'units-base');
      expect(r.out).toBe('');
      expect(r.ok).toBe(true);
    });

    test.each(goldenNames)('the app units for %s verify cleanly', (name) => {
      const units = renderAppUnits(GOLDEN_SPECS[name]!);
      expect(units.length).toBeGreaterThan(0);
      const r = verifyUnits(units, `units-${name}`);
      expect(r.out).toBe('');
      expect(r.ok).toBe(true);
    });

    test('a unit with a bad value, an unknown key or a missing program fails verification', () => {
      const good = renderAgentUnit();
      const badValue = {
        fileName: 'vmp-t-ks-bad1.service',
        content: good.content.replace('Restart=on-failure', 'Restart=sometimes'),
      };
      const unknownKey = {
        fileName: 'vmp-t-ks-bad2.service',
        content: good.content.replace('[Service]', '[Service]\nRestartt=always'),
      };
      const missing = {
        fileName: 'vmp-t-ks-bad3.service',
        content: good.content.replace('/usr/bin/node', '/usr/bin/vmp-t-ks-no-such-program'),
      };
      for (const unit of [badValue, unknownKey, missing]) {
        const r = verifyUnits([unit], `units-${unit.fileName}`);
        expect(r.ok).toBe(false);
        expect(r.out).toContain(unit.fileName);
      }
    });
  },
);

describeWith(probeCommand('shellcheck', ['--version']), 'shellcheck on the %post bodies')(
  '%post scripts',
  () => {
    function shellcheck(body: string) {
      return run('shellcheck', ['--shell=bash', '--severity=style', '-'], { input: body });
    }

    test.each(goldenNames)('every %%post body of %s passes shellcheck and bash -n', (name) => {
      const ks = kickstarts().find(([n]) => n === name)![1];
      const posts = extractPostScripts(ks);
      expect(posts).toHaveLength(2);
      for (const { header, body } of posts) {
        const sc = shellcheck(body);
        expect(`${header}\n${sc.out}`).toBe(`${header}\n`);
        expect(sc.status).toBe(0);
        const syntax = run('bash', ['-n'], { input: body });
        expect(syntax.out).toBe('');
        expect(syntax.status).toBe(0);
      }
    });

    test('shellcheck catches a real problem in a %post-like script', () => {
      const sc = shellcheck('#!/bin/bash\nset -e\nf=$1\nrm -rf /srv/$f\n');
      expect(sc.status).not.toBe(0);
      expect(sc.out).toMatch(/SC2086/);
    });
  },
);
