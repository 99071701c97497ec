import fs from 'node:fs';
import path from 'node:path';

const GOLDEN_ROOT = path.resolve('test/golden');

/**
 * Compares generated text with test/golden/<name>. With UPDATE_GOLDEN=1 the
 * file is (re)written instead, so a reviewer sees every change as a diff.
 */
export function expectGolden(name: string, actual: string): void {
  const file = path.join(GOLDEN_ROOT, name);
  if (process.env.UPDATE_GOLDEN === '1') {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, actual);
    return;
  }
  if (!fs.existsSync(file)) {
    throw new Error(`golden file ${file} is missing; run the test with UPDATE_GOLDEN=1 to create it`);
  }
  expect(actual).toBe(fs.readFileSync(file, 'utf8'));
}
