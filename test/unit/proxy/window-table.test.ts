import { MAX_WINDOWS_PER_VM, WindowTable } from '../../../src/proxy/window-table.js';
import { testWindow } from '../../support/fake-agent.js';

describe('WindowTable', () => {
  test('events update geometry, title, mapping and focus; destroy clears the focus', () => {
    const t = new WindowTable();
    t.agentConnected('vm', '10.0.0.2:5000', new Date('2026-01-01T00:00:00Z'));
    expect(t.apply('vm', { type: 'window-created', window: testWindow(1) })).toBe('ok');
    expect(t.apply('vm', { type: 'window-moved', id: 1, x: 3, y: 4 })).toBe('ok');
    expect(t.apply('vm', { type: 'window-resized', id: 1, width: 5, height: 6 })).toBe('ok');
    expect(t.apply('vm', { type: 'title-changed', id: 1, title: 't' })).toBe('ok');
    expect(t.apply('vm', { type: 'window-unmapped', id: 1 })).toBe('ok');
    expect(t.apply('vm', { type: 'focus-changed', id: 1 })).toBe('ok');
    expect(t.windowsOf('vm')).toEqual({
      name: 'vm',
      connected: true,
      focused: 1,
      windows: [{ ...testWindow(1), x: 3, y: 4, width: 5, height: 6, title: 't', mapped: false }],
    });
    expect(t.apply('vm', { type: 'window-mapped', id: 1 })).toBe('ok');
    expect(t.windowsOf('vm')!.windows[0]!.mapped).toBe(true);
    expect(t.apply('vm', { type: 'window-destroyed', id: 1 })).toBe('ok');
    expect(t.windowsOf('vm')!.focused).toBe(0);
    expect(t.statusOf('vm')).toEqual({
      name: 'vm',
      connected: true,
      connectedAt: '2026-01-01T00:00:00.000Z',
      peer: '10.0.0.2:5000',
      windows: 0,
      events: 8,
    });
  });

  test('events for unknown windows are counted but change nothing', () => {
    const t = new WindowTable();
    expect(t.apply('vm', { type: 'window-moved', id: 9, x: 1, y: 1 })).toBe('unknown-window');
    expect(t.apply('vm', { type: 'focus-changed', id: 9 })).toBe('unknown-window');
    expect(t.windowsOf('vm')).toMatchObject({ focused: 0, windows: [] });
    expect(t.statusOf('vm')!.events).toBe(2);
  });

  test('focus on an unknown window is ignored: the focus stays on the window that had it', () => {
    const t = new WindowTable();
    t.apply('vm', { type: 'window-list', focused: 1, windows: [testWindow(1)] });
    expect(t.apply('vm', { type: 'focus-changed', id: 9 })).toBe('unknown-window');
    expect(t.windowsOf('vm')!.focused).toBe(1);
    expect(t.apply('vm', { type: 'focus-changed', id: 0 })).toBe('ok');
    expect(t.windowsOf('vm')!.focused).toBe(0);
  });

  test('a snapshot replaces everything; a disconnect keeps windows but marks the VM', () => {
    const t = new WindowTable();
    t.agentConnected('vm', 'p');
    t.apply('vm', { type: 'window-created', window: testWindow(1) });
    t.apply('vm', { type: 'window-list', focused: 3, windows: [testWindow(3), testWindow(2)] });
    expect(t.windowsOf('vm')!.windows.map((w) => w.id)).toEqual([2, 3]);
    expect(t.windowsOf('vm')!.focused).toBe(3);
    t.agentDisconnected('vm');
    expect(t.windowsOf('vm')).toMatchObject({ connected: false, focused: 3 });
    expect(t.statusOf('vm')!.peer).toBeNull();
  });

  test('returned views are copies, not the live state', () => {
    const t = new WindowTable();
    t.apply('vm', { type: 'window-created', window: testWindow(1) });
    t.windowsOf('vm')!.windows[0]!.title = 'mutated';
    expect(t.windowsOf('vm')!.windows[0]!.title).toBe('window 1');
  });

  test(`more than ${MAX_WINDOWS_PER_VM} windows is refused`, () => {
    const t = new WindowTable();
    for (let i = 1; i <= MAX_WINDOWS_PER_VM; i++)
      t.apply('vm', { type: 'window-created', window: testWindow(i) });
    expect(t.apply('vm', { type: 'window-created', window: testWindow(MAX_WINDOWS_PER_VM + 1) })).toBe(
      'too-many-windows',
    );
    // Replacing an existing window is still fine.
    expect(t.apply('vm', { type: 'window-created', window: testWindow(1, 'again') })).toBe('ok');
  });
});
