import fs from 'node:fs';
import path from 'node:path';
import {
  collectHelp,
  capture,
  HELP_WIDTH,
  listedCommands,
  lookUpHelp,
  mayAskForHelp,
  yargsSpeaksEnglish,
  type HelpBook,
} from '../../../src/cli/help-book.js';
import { runCli } from '../../../src/cli/run.js';

/**
 * The help the CLI prints without yargs (src/cli/fast-path.ts) is the text
 * yargs printed at build time. This keeps it honest: the book collected now
 * from the source has a page for every command and subcommand, equal to what
 * yargs prints for it, and the built CLI's book is that same book (a build
 * older than the source fails here: run npm run build).
 */
let book: HelpBook;
const saved = { lcAll: process.env.LC_ALL, columns: process.stdout.columns };

beforeAll(async () => {
  process.env.LC_ALL = 'C';
  Object.defineProperty(process.stdout, 'columns', { value: HELP_WIDTH, configurable: true });
  book = await collectHelp(runCli);
}, 60_000);

afterAll(() => {
  if (saved.lcAll === undefined) delete process.env.LC_ALL;
  else process.env.LC_ALL = saved.lcAll;
  Object.defineProperty(process.stdout, 'columns', { value: saved.columns, configurable: true });
});

test('the book has the top level, every command and every subcommand', () => {
  expect(Object.keys(book.pages)).toEqual(
    expect.arrayContaining([
      '',
      'list',
      'start',
      'template',
      'template create',
      'snapshot revert',
      'clipboard',
    ]),
  );
  const top = listedCommands(book.pages['']!, []).map((c) => c.name);
  expect(top.length).toBeGreaterThanOrEqual(15);
  for (const name of top) expect(book.pages[name]).toContain(`vm-provisioner ${name}`);
  expect(book.version).toMatch(/^\d+\.\d+\.\d+\n$/);
});

test('every page is what yargs prints for CMD --help, and for help CMD through the book', async () => {
  for (const [key, page] of Object.entries(book.pages)) {
    const words = key === '' ? [] : key.split(' ');
    const printed = await capture(runCli, [...words, '--help']);
    expect({ key, out: printed.out, code: printed.code }).toEqual({ key, out: page, code: 0 });
    expect(lookUpHelp(book, [...words, '--help'], undefined)).toBe(page);
    expect(lookUpHelp(book, [...words, '-h'], 200)).toBe(page);
    expect(lookUpHelp(book, ['help', ...words], undefined)).toBe(page);
  }
}, 60_000);

test('the built CLI carries this book', () => {
  const built = path.resolve('dist/src/cli/help.json');
  if (!fs.existsSync(built)) throw new Error(`${built} is missing: run npm run build first`);
  expect(JSON.parse(fs.readFileSync(built, 'utf8'))).toEqual(book);
});

test('yargs answers what the book does not cover', () => {
  expect(lookUpHelp(book, ['--help'], HELP_WIDTH - 1)).toBeUndefined(); // a narrower terminal wraps differently
  expect(lookUpHelp(book, ['list', '--json', '--help'], undefined)).toBeUndefined();
  expect(lookUpHelp(book, ['lst', '--help'], undefined)).toBeUndefined();
  expect(lookUpHelp(book, ['help', 'nothing'], undefined)).toBeUndefined();
  expect(lookUpHelp(book, [], undefined)).toBeUndefined();
  expect(lookUpHelp(book, ['list'], undefined)).toBeUndefined();
  // Lines the fast path answers without reading the book at all.
  for (const line of [['list', '--json'], ['list'], [], ['start', 'x', '--no-viewer'], ['--version', 'x']]) {
    expect(mayAskForHelp(line)).toBe(false);
  }
  expect(lookUpHelp(book, ['--version'], undefined)).toBe(book.version);
});

test('the book is used only where yargs would print English', () => {
  expect(yargsSpeaksEnglish({})).toBe(true);
  expect(yargsSpeaksEnglish({ LANG: 'en_GB.UTF-8' })).toBe(true);
  expect(yargsSpeaksEnglish({ LANG: 'C.UTF-8' })).toBe(true);
  expect(yargsSpeaksEnglish({ LC_ALL: 'POSIX', LANG: 'de_DE.UTF-8' })).toBe(true);
  expect(yargsSpeaksEnglish({ LANG: 'de_DE.UTF-8' })).toBe(false);
  expect(yargsSpeaksEnglish({ LC_MESSAGES: 'fr_FR', LANG: 'en_US' })).toBe(false);
});
