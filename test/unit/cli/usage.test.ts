import { loadAllCommands } from '../../../src/cli/commands/index.js';
import { typedValues, restoreTypedNumbers } from '../../../src/cli/raw-numbers.js';
import { editDistance, suggest, usageProblem } from '../../../src/cli/usage.js';

const commands = await loadAllCommands();

const names = ['create', 'template', 'start', 'stop', 'list', 'destroy', 'gc', 'console', 'passwords'];

test.each([
  ['lst', 'list'],
  ['strat', 'start'],
  ['destory', 'destroy'],
  ['pasword', 'passwords'],
  ['temp', 'template'],
  ['xyz', undefined],
  ['g', 'gc'],
  ['x', undefined],
  ['remove', undefined],
])('suggest(%j) = %j', (word, expected) => {
  expect(suggest(word, names)).toBe(expected);
});

test('a swapped pair of letters is one edit', () => {
  expect(editDistance('strat', 'start')).toBe(1);
  expect(editDistance('', 'gc')).toBe(2);
});

test.each([
  [['lst'], "unknown command 'lst' (did you mean list?)"],
  [['lst', '--help'], "unknown command 'lst' (did you mean list?)"],
  [['start'], 'start: name the VM to start'],
  [['start', '--connect', 'qemu:///system'], 'start: name the VM to start'],
  [['start', '--help'], undefined],
  [['start', 'vm1'], undefined],
  [['stop', '--timeout', '5', 'vm1'], undefined],
  [['snapshot', 'revert', 'vm1', '--force'], 'snapshot revert: name the snapshot to revert to'],
  [['template'], undefined],
  [['--connect', 'x', 'lst'], undefined],
])('usageProblem(%j)', (argv, expected) => {
  expect(usageProblem(argv, commands)).toBe(expected);
});

test.each([
  [['--memory', '12x'], ['12x']],
  [['--memory=0x10'], ['0x10']],
  [['--memory', '-1'], ['-1']],
  [['--memory', '--vcpus', '2'], ['']],
  [['--memory'], ['']],
  [
    ['--memory', '1', '--memory', '2'],
    ['1', '2'],
  ],
  [['--', '--memory', '5'], []],
  [['--memoryx', '5'], []],
])('typedValues(%j, memory)', (tokens, expected) => {
  expect(typedValues(tokens, 'memory')).toEqual(expected);
});

test('restoreTypedNumbers puts back the text under both spellings; untyped defaults stay', () => {
  const argv: Record<string, unknown> = { 'install-timeout': NaN, installTimeout: NaN, timeout: 60 };
  restoreTypedNumbers(argv, ['--install-timeout', '9x'], ['install-timeout', 'timeout']);
  expect(argv).toEqual({ 'install-timeout': '9x', installTimeout: '9x', timeout: 60 });
});
