// Writes the man pages (man/vm-provisioner.1, man/vm-provisioner-CMD.1) from the
// same command definitions --help prints, after tsc has built dist/. Pages of
// commands that no longer exist are removed, so man/ is exactly the commands.
// `--update-package-json` also rewrites package.json's "man" list to match
// (after adding or removing a command; a test checks that they agree).
import fs from 'node:fs';
import path from 'node:path';

const dist = path.resolve('dist/src/cli');
const { loadAllCommands } = await import(`${dist}/commands/index.js`);
const { describeCli } = await import(`${dist}/completion/model.js`);
const { manPages } = await import(`${dist}/man/roff.js`);
const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8'));

const out = path.resolve('man');
fs.mkdirSync(out, { recursive: true });
const pages = manPages(describeCli(await loadAllCommands()), pkg.version);
const keep = new Set(pages.map((p) => p.file));
for (const file of fs.readdirSync(out)) {
  if (file.endsWith('.1') && !keep.has(file)) fs.rmSync(path.join(out, file));
}
for (const page of pages) fs.writeFileSync(path.join(out, page.file), page.text);

if (process.argv.includes('--update-package-json')) {
  pkg.man = pages.map((p) => `./man/${p.file}`);
  fs.writeFileSync('package.json', `${JSON.stringify(pkg, null, 2)}\n`);
}
