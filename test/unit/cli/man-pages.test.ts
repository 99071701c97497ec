import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadAllCommands } from '../../../src/cli/commands/index.js';
import { describeCli } from '../../../src/cli/completion/model.js';
import { manPages } from '../../../src/cli/man/roff.js';
import { expectGolden } from '../../support/golden.js';

/** Man pages from the same definitions as --help: golden files, package.json's list, and man(1) renders each. */
const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8')) as { version: string; man: string[] };
const pages = manPages(describeCli(await loadAllCommands()), pkg.version);

test('one page for the tool and one per visible command and subcommand, none for the hidden callback', () => {
  const files = pages.map((p) => p.file);
  expect(files).toEqual(
    expect.arrayContaining([
      'vm-provisioner.1',
      'vm-provisioner-start.1',
      'vm-provisioner-template.1',
      'vm-provisioner-template-update.1',
      'vm-provisioner-snapshot-revert.1',
      'vm-provisioner-completion.1',
    ]),
  );
  expect(files.some((f) => f.includes('__complete'))).toBe(false);
});

test.each(pages.map((p) => [p.file, p.text]))('%s matches its golden file', (file, text) => {
  expectGolden(`man/${file}`, text);
});

test("package.json's man lists exactly the generated pages (node scripts/gen-man.mjs --update-package-json)", () => {
  expect(pkg.man).toEqual(pages.map((p) => `./man/${p.file}`));
});

const hasMan = spawnSync('man', ['--version']).status === 0;
(hasMan || process.env.CI === 'true' ? test : test.skip)(
  'man -l renders every page without a warning, with its options from the definitions',
  () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-man-'));
    try {
      for (const page of pages) {
        const file = path.join(dir, page.file);
        fs.writeFileSync(file, page.text);
        const r = spawnSync('man', ['--warnings', '-l', file], {
          encoding: 'utf8',
          env: { PATH: process.env.PATH, MANWIDTH: '100', MANPAGER: 'cat', LANG: 'C.UTF-8' },
        });
        expect({ file: page.file, status: r.status, stderr: r.stderr }).toEqual({
          file: page.file,
          status: 0,
          stderr: '',
        });
        expect(r.stdout).toMatch(/^NAME\n/m);
      }
      const start = execFileSync('man', ['-l', path.join(dir, 'vm-provisioner-stop.1')], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH, MANWIDTH: '100', MANPAGER: 'cat' },
      });
      expect(start).toContain('vm-provisioner stop NAME [options]');
      expect(start).toMatch(/--save, --no-save/);
      expect(start).toMatch(/--timeout N/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);
