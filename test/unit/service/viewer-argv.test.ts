import { viewerArgv } from '../../../src/service/lifecycle.js';

describe("the SPICE viewer's command line", () => {
  test('the window title carries the VM name as [NAME]; the URI comes after --', () => {
    expect(viewerArgv('spice://127.0.0.1:5901', 'work')).toEqual([
      '--title',
      '[work]',
      '--',
      'spice://127.0.0.1:5901',
    ]);
  });
});
