import { WindowTracker, type WindowEvent } from '../../../guest-agent/src/window-tracker.js';
import { XConn } from '../../../guest-agent/src/xconn.js';
import { EventLog } from '../../support/events.js';
import { describeWith, probeXDisplay } from '../../support/services.js';
import { XSession } from '../../support/xsession.js';

const probe = probeXDisplay();

describeWith(probe, 'guest-agent window tracker under Xvfb + i3')(
  'window tracker (real X server, i3, xterm)',
  () => {
    let session: XSession;
    let conn: XConn;
    let tracker: WindowTracker;
    const log = new EventLog<WindowEvent>();
    const errors: Error[] = [];
    let oneId = 0;

    beforeAll(async () => {
      session = new XSession(probe.display);
      await session.startI3();
      conn = await XConn.connect(probe.display);
      tracker = await WindowTracker.start(conn, (err) => errors.push(err));
      tracker.onWindowEvent(log.push);
    });

    afterAll(async () => {
      tracker?.stop();
      conn?.close();
      await session?.stop();
    });

    afterEach(() => expect(errors).toEqual([]));

    const created = (title: string) =>
      log.waitFor((e) => e.kind === 'created' && e.window.title === title, `created "${title}"`);

    test('an opened xterm is reported created and focused with class, title and on-screen geometry; bars and frames are not', async () => {
      const from = log.mark;
      session.xterm('vmp-one', 'vmp-one-instance');
      const ev = await created('vmp-one');
      expect(ev.window).toMatchObject({
        wmClass: 'XTerm',
        wmInstance: 'vmp-one-instance',
        transientFor: 0,
        title: 'vmp-one',
      });
      expect(ev.window.id).toBeGreaterThan(0);
      oneId = ev.window.id;
      expect(ev.window.width).toBeGreaterThan(100);
      expect(ev.window.height).toBeGreaterThan(100);
      const focused = await log.waitFor(
        (e) => e.kind === 'focused' && e.window.id === ev.window.id,
        'focused vmp-one',
        10_000,
        from,
      );
      expect(focused.window.title).toBe('vmp-one');
      // Only the client window: not i3's frame, not the i3bar dock window.
      expect(tracker.windows().map((w) => w.title)).toEqual(['vmp-one']);
      expect(tracker.focusedWindow()).toBe(ev.window.id);
      // The tracked geometry is the client area's root-relative geometry, per xwininfo (X's own answer).
      await session.until(
        async () => {
          const g = await session.xwininfo(ev.window.id);
          const w = tracker.windows()[0];
          return (
            w !== undefined && w.x === g.x && w.y === g.y && w.width === g.width && w.height === g.height
          );
        },
        `tracked geometry to equal xwininfo's: ${JSON.stringify(tracker.windows())}`,
      );
      // On screen once i3 has placed it. The created event carries the geometry X had when the tracker
      // read it, just after the window entered _NET_CLIENT_LIST; that read can come before i3 has moved
      // the new frame into place (a loaded CI host once saw x = -14 there), and the move follows as a
      // moved event.
      const placed = tracker.windows()[0]!;
      expect(placed.x).toBeGreaterThanOrEqual(0);
      expect(placed.y).toBeGreaterThan(0); // below i3's title bar
      expect(placed.x + placed.width).toBeLessThanOrEqual(1280);
    });

    test('retitling with xdotool set_window --name reports a title change', async () => {
      const window = { id: oneId };
      const from = log.mark;
      await session.xdotool('set_window', '--name', 'vmp-one renamed ✓', String(window.id));
      const ev = await log.waitFor(
        (e) => e.kind === 'title' && e.window.id === window.id,
        'title event',
        10_000,
        from,
      );
      expect(ev.window.title).toBe('vmp-one renamed ✓');
      expect(ev.window.wmClass).toBe('XTerm');
    });

    test('moving and resizing a floating window report root-relative geometry', async () => {
      const window = { id: oneId };
      await session.i3msg(`[id=${window.id}]`, 'floating', 'enable');
      let from = log.mark;
      await session.i3msg(`[id=${window.id}]`, 'move', 'position', '200', '150');
      const moved = await log.waitFor(
        (e) =>
          e.kind === 'moved' &&
          e.window.id === window.id &&
          e.window.x >= 200 &&
          e.window.x <= 210 &&
          e.window.y >= 150 &&
          e.window.y <= 180,
        'moved to ~200,150',
        10_000,
        from,
      );
      // Frame at 200,150; the client sits inside it below the title bar.
      expect(moved.window.x - 200).toBeLessThan(10);
      from = log.mark;
      await session.i3msg(`[id=${window.id}]`, 'resize', 'set', '500', '320');
      const resized = await log.waitFor(
        (e) => e.kind === 'resized' && e.window.id === window.id,
        'resized',
        10_000,
        from,
      );
      expect(resized.window.width).toBeGreaterThan(480);
      expect(resized.window.width).toBeLessThanOrEqual(500);
      expect(resized.window.height).toBeGreaterThan(280);
      expect(resized.window.height).toBeLessThanOrEqual(320);
      expect((await session.xwininfo(window.id)).width).toBe(resized.window.width);
      // xdotool moves the client itself; i3 honours it for floating windows.
      from = log.mark;
      await session.xdotool('windowmove', String(window.id), '40', '60');
      const moved2 = await log.waitFor(
        (e) => e.kind === 'moved' && e.window.id === window.id,
        'moved by xdotool',
        10_000,
        from,
      );
      expect(moved2.window.x).toBeLessThan(200);
    });

    test('focusing another window reports focus; closing reports destroyed', async () => {
      const one = { id: oneId };
      let from = log.mark;
      const two = session.xterm('vmp-two');
      const twoEv = await created('vmp-two');
      await log.waitFor(
        (e) => e.kind === 'focused' && e.window.id === twoEv.window.id,
        'focus on vmp-two',
        10_000,
        from,
      );
      from = log.mark;
      await session.i3msg(`[id=${one.id}]`, 'focus');
      const f = await log.waitFor((e) => e.kind === 'focused', 'focus back on vmp-one', 10_000, from);
      expect(f.window.id).toBe(one.id);
      from = log.mark;
      two.kill('SIGTERM');
      const gone = await log.waitFor((e) => e.kind === 'destroyed', 'destroyed', 10_000, from);
      expect(gone.window.id).toBe(twoEv.window.id);
      expect(gone.window.title).toBe('vmp-two');
      await tracker.idle();
      expect(tracker.windows().map((w) => w.id)).toEqual([one.id]);
      // Exactly one destroyed event for it, though both DestroyNotify and _NET_CLIENT_LIST say so.
      await session.until(() => tracker.windows().length === 1, 'list settled');
      expect(log.all.filter((e) => e.kind === 'destroyed' && e.window.id === twoEv.window.id)).toHaveLength(
        1,
      );
    });

    test('after i3 restarts in place (new frames, clients reparented), changes are still tracked', async () => {
      const before = tracker.windows();
      await session.i3msg('restart');
      // i3 is back when its IPC answers again.
      await session.until(
        async () => (await session.i3msg('-t', 'get_version')).includes('human_readable'),
        'i3 after restart',
      );
      await session.until(
        () => tracker.windows().length === before.length,
        'the same windows after the restart',
      );
      expect(tracker.windows().map((w) => w.id)).toEqual(before.map((w) => w.id));
      const from = log.mark;
      await session.i3msg(`[id=${oneId}]`, 'floating', 'enable');
      await session.i3msg(`[id=${oneId}]`, 'move', 'position', '333', '222');
      await log.waitFor(
        (e) => e.kind === 'moved' && e.window.id === oneId && e.window.x >= 333 && e.window.x < 343,
        'moved after restart',
        10_000,
        from,
      );
      await tracker.idle();
      const g = await session.xwininfo(oneId);
      await session.until(() => {
        const w = tracker.windows().find((x) => x.id === oneId);
        return w?.x === g.x && w?.y === g.y;
      }, 'tracked position to match xwininfo after the restart');
    });

    test('a retitle that lands while the tracker is still reading a new window is reported, not lost', async () => {
      // A shell retitles its terminal just as it maps (Debian's bash: user@HOST). The tracker hears of
      // the window, selects its events and reads it; a retitle between that read and the window being
      // tracked must still come out as a title event. The tracker's connection is wrapped so the
      // retitle lands exactly there: right after the tracker read the old title, and delivered to the
      // tracker's connection before that read returns.
      const app = await XConn.connect(probe.display);
      const raw = await XConn.connect(probe.display);
      let racer: WindowTracker | undefined;
      try {
        const [netName, utf8] = await Promise.all([
          app.internAtom('_NET_WM_NAME'),
          app.internAtom('UTF8_STRING'),
        ]);
        let target = 0;
        let retitled = false;
        const wrapped = new Proxy(raw, {
          get(t, prop) {
            if (prop === 'getProperty') {
              return async (wid: number, atom: number, type?: number) => {
                const reply = await t.getProperty(wid, atom, type);
                if (wid === target && atom === netName && !retitled) {
                  retitled = true;
                  await app.changeProperty(0, target, netName, utf8, 8, Buffer.from('after', 'utf8'));
                  await app.sync();
                  // Its PropertyNotify precedes this reply on the tracker's connection.
                  await t.sync();
                }
                return reply;
              };
            }
            const v: unknown = Reflect.get(t, prop, t);
            return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
          },
        });
        racer = await WindowTracker.start(wrapped, (err) => errors.push(err));
        const seen = new EventLog<WindowEvent>();
        racer.onWindowEvent(seen.push);
        const win = app.client.AllocID();
        await new Promise<void>((resolve, reject) =>
          app.client.CreateWindow(win, app.root, 10, 10, 300, 200, 0, 0, 1, 0, {}, (err) =>
            err ? reject(err) : resolve(),
          ),
        );
        await app.changeProperty(0, win, netName, utf8, 8, Buffer.from('before', 'utf8'));
        target = win;
        app.client.MapWindow(win);
        const made = await seen.waitFor((e) => e.kind === 'created' && e.window.id === win, 'created');
        // The race was hit: the read saw the old title.
        expect(retitled).toBe(true);
        expect(made.window.title).toBe('before');
        const titled = await seen.waitFor(
          (e) => e.kind === 'title' && e.window.id === win,
          'the retitle that landed mid-read',
        );
        expect(titled.window.title).toBe('after');
        expect(racer.windows().find((w) => w.id === win)?.title).toBe('after');
        await app.destroyWindow(win);
        await seen.waitFor((e) => e.kind === 'destroyed' && e.window.id === win, 'destroyed');
      } finally {
        racer?.stop();
        raw.close();
        app.close();
      }
    });

    test('a window made with the X protocol directly: UTF-8 title, WM_CLASS and WM_TRANSIENT_FOR are read; destroying it is seen', async () => {
      const app = await XConn.connect(probe.display);
      try {
        const [netName, utf8] = await Promise.all([
          app.internAtom('_NET_WM_NAME'),
          app.internAtom('UTF8_STRING'),
        ]);
        const dialog = app.client.AllocID();
        await new Promise<void>((resolve, reject) =>
          app.client.CreateWindow(dialog, app.root, 10, 10, 300, 200, 0, 0, 1, 0, {}, (err) =>
            err ? reject(err) : resolve(),
          ),
        );
        await app.changeProperty(0, dialog, 67, 31, 8, Buffer.from('tinyapp\0TinyApp\0', 'latin1'));
        await app.changeProperty(0, dialog, netName, utf8, 8, Buffer.from('Grüße – tiny', 'utf8'));
        await app.changeProperty(0, dialog, 68, 33, 32, [oneId]);
        const from = log.mark;
        app.client.MapWindow(dialog);
        const ev = await log.waitFor(
          (e) => e.kind === 'created' && e.window.id === dialog,
          'created tiny app',
          10_000,
          from,
        );
        expect(ev.window).toMatchObject({
          title: 'Grüße – tiny',
          wmClass: 'TinyApp',
          wmInstance: 'tinyapp',
          transientFor: oneId,
        });
        const from2 = log.mark;
        await app.destroyWindow(dialog);
        await log.waitFor(
          (e) => e.kind === 'destroyed' && e.window.id === dialog,
          'destroyed tiny app',
          10_000,
          from2,
        );
      } finally {
        app.close();
      }
    });
  },
);
