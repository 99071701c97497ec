import type { XEvent } from 'x11';
import { Atom, EventMask, type Geometry, type XConn } from './xconn.js';

/**
 * Tracks the top-level application windows of an EWMH window manager (i3 in
 * our VMs) from X events alone: no timers, no polling. The WM's
 * `_NET_CLIENT_LIST` on the root window is the truth about which client
 * windows exist (so i3's frames, bars and dock windows never appear);
 * `_NET_ACTIVE_WINDOW` says which one has focus. Because i3 reparents each
 * client into a frame and moves the frame, not the client, the tracker also
 * listens for structure changes on every ancestor of a client and reports
 * root-relative geometry.
 */

export interface WindowInfo {
  /** X window id of the client window (the one in `_NET_CLIENT_LIST`). */
  id: number;
  /** WM_CLASS class part, e.g. `XTerm`, `firefox`. Empty when unset. */
  wmClass: string;
  /** WM_CLASS instance part, e.g. `xterm`. Empty when unset. */
  wmInstance: string;
  /** WM_TRANSIENT_FOR: the window a dialog belongs to, 0 for none. */
  transientFor: number;
  /** `_NET_WM_NAME` (UTF-8), falling back to `WM_NAME`. */
  title: string;
  /** Root-relative position and size of the client area. */
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * `focused`: the window got the input focus. `unfocused`: focus left the
 * window for something that is no app window (nothing, a bar); a switch
 * between two app windows is a single `focused`.
 */
export type WindowEventKind =
  'created' | 'destroyed' | 'moved' | 'resized' | 'focused' | 'unfocused' | 'title';

export interface WindowEvent {
  kind: WindowEventKind;
  /** The window after the change (for `destroyed` and `unfocused`: as last seen). */
  window: WindowInfo;
}

export type WindowListener = (event: WindowEvent) => void;

const WATCHED_ATOMS = ['_NET_CLIENT_LIST', '_NET_ACTIVE_WINDOW', '_NET_WM_NAME', 'UTF8_STRING'] as const;
type Atoms = Record<(typeof WATCHED_ATOMS)[number], number>;

interface Tracked {
  info: WindowInfo;
  /** Windows between the client and the root (i3 frames), nearest first. */
  ancestors: number[];
}

export class WindowTracker {
  private readonly tracked = new Map<number, Tracked>();
  /**
   * Windows being read for the first time. Their events already reach us (describe selects before it
   * reads) but they are not tracked yet: a retitle or move then must not be dropped, or a title a
   * shell sets just as its terminal maps would be lost for good.
   */
  private readonly describing = new Set<number>();
  /** Ancestor window -> client windows below it. */
  private readonly byAncestor = new Map<number, Set<number>>();
  private readonly listeners = new Set<WindowListener>();
  private readonly dirtyGeometry = new Set<number>();
  private geometryFlushQueued = false;
  private order: number[] = [];
  private activeId = 0;
  private reportedFocus: number | null = null;
  private queue: Promise<void> = Promise.resolve();
  private stopped = false;

  private constructor(
    private readonly conn: XConn,
    private readonly atoms: Atoms,
    private readonly onError: (err: Error) => void,
  ) {}

  /**
   * Subscribes to the root window and reads the current windows. Resolves once
   * `windows()` reflects the screen; changes after that reach the listeners.
   */
  static async start(conn: XConn, onError: (err: Error) => void = () => {}): Promise<WindowTracker> {
    const atoms = await conn.internAtoms(WATCHED_ATOMS);
    const tracker = new WindowTracker(conn, atoms, onError);
    conn.onEvent((ev) => tracker.handle(ev));
    await conn.selectInput(conn.root, EventMask.PropertyChange);
    await tracker.enqueue(async () => {
      await tracker.refreshClientList(false);
      await tracker.refreshActive(false);
    });
    return tracker;
  }

  onWindowEvent(listener: WindowListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Current windows in `_NET_CLIENT_LIST` order (the order the WM mapped them). */
  windows(): WindowInfo[] {
    return this.order.flatMap((id) => {
      const t = this.tracked.get(id);
      return t ? [{ ...t.info }] : [];
    });
  }

  /** The focused app window, or null when focus is elsewhere (bar, none). */
  focusedWindow(): number | null {
    return this.tracked.has(this.activeId) ? this.activeId : null;
  }

  /** Resolves once every X event received so far has been handled. */
  idle(): Promise<void> {
    return this.queue;
  }

  stop(): void {
    this.stopped = true;
    this.listeners.clear();
  }

  private emit(kind: WindowEventKind, info: WindowInfo): void {
    if (this.stopped) return;
    const event: WindowEvent = { kind, window: { ...info } };
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (err) {
        this.onError(err as Error);
      }
    }
  }

  /** X events are handled strictly in arrival order, one job at a time. */
  private enqueue(job: () => Promise<void>): Promise<void> {
    this.queue = this.queue.then(job).catch((err: Error) => {
      if (!this.stopped) this.onError(err);
    });
    return this.queue;
  }

  private handle(ev: XEvent): void {
    if (this.stopped) return;
    const root = this.conn.root;
    switch (ev.name) {
      case 'PropertyNotify': {
        if (ev.wid === root) {
          if (ev.atom === this.atoms._NET_CLIENT_LIST) void this.enqueue(() => this.refreshClientList(true));
          else if (ev.atom === this.atoms._NET_ACTIVE_WINDOW)
            void this.enqueue(() => this.refreshActive(true));
        } else if (ev.wid !== undefined && this.isWatched(ev.wid)) {
          if (ev.atom === this.atoms._NET_WM_NAME || ev.atom === Atom.WM_NAME) {
            const id = ev.wid;
            // Queued behind the read in progress, so it runs once the window is tracked.
            void this.enqueue(() => this.refreshTitle(id));
          }
        }
        break;
      }
      case 'DestroyNotify': {
        // Faster than waiting for the WM to rewrite _NET_CLIENT_LIST.
        const id = ev.wid;
        if (id !== undefined && this.isWatched(id)) void this.enqueue(async () => this.remove(id));
        break;
      }
      case 'ConfigureNotify':
      case 'GravityNotify': {
        const target = ev.name === 'ConfigureNotify' ? ev.wid1 : ev.wid;
        if (target !== undefined) this.markGeometryDirty(target);
        break;
      }
      case 'ReparentNotify': {
        const id = ev.wid;
        if (id === undefined) break;
        const affected = this.tracked.has(id) ? [id] : [...(this.byAncestor.get(id) ?? [])];
        for (const client of affected) {
          void this.enqueue(() => this.rebuildAncestors(client));
          this.markGeometryDirty(client);
        }
        break;
      }
      default:
        break;
    }
  }

  private isWatched(wid: number): boolean {
    return this.tracked.has(wid) || this.describing.has(wid);
  }

  private markGeometryDirty(wid: number): void {
    if (this.isWatched(wid)) this.dirtyGeometry.add(wid);
    for (const client of this.byAncestor.get(wid) ?? []) this.dirtyGeometry.add(client);
    if (this.dirtyGeometry.size === 0 || this.geometryFlushQueued) return;
    // A drag produces a burst of ConfigureNotify; one flush answers all of them.
    this.geometryFlushQueued = true;
    void this.enqueue(() => this.flushGeometry());
  }

  private async flushGeometry(): Promise<void> {
    this.geometryFlushQueued = false;
    const ids = [...this.dirtyGeometry];
    this.dirtyGeometry.clear();
    const results = await Promise.all(ids.map((id) => this.conn.rootGeometry(id).catch(() => null)));
    ids.forEach((id, i) => {
      const geom = results[i];
      const t = this.tracked.get(id);
      if (!geom || !t) return;
      const moved = geom.x !== t.info.x || geom.y !== t.info.y;
      const resized = geom.width !== t.info.width || geom.height !== t.info.height;
      Object.assign(t.info, geom);
      if (moved) this.emit('moved', t.info);
      if (resized) this.emit('resized', t.info);
    });
  }

  private async refreshClientList(report: boolean): Promise<void> {
    const ids = await this.conn.getIds(this.conn.root, this.atoms._NET_CLIENT_LIST, Atom.WINDOW);
    const present = new Set(ids);
    for (const id of [...this.tracked.keys()]) if (!present.has(id)) this.remove(id);
    const fresh = ids.filter((id) => !this.tracked.has(id));
    for (const id of fresh) this.describing.add(id);
    let added: (Tracked | null)[];
    try {
      added = await Promise.all(fresh.map((id) => this.describe(id)));
    } finally {
      for (const id of fresh) this.describing.delete(id);
    }
    fresh.forEach((id, i) => {
      const t = added[i];
      if (!t) return; // gone before we could read it
      this.tracked.set(id, t);
      this.indexAncestors(id, t.ancestors);
      if (report) this.emit('created', t.info);
    });
    this.order = ids.filter((id) => this.tracked.has(id));
    this.reportFocus(report);
  }

  private async refreshActive(report: boolean): Promise<void> {
    const [active] = await this.conn.getIds(this.conn.root, this.atoms._NET_ACTIVE_WINDOW, Atom.WINDOW);
    this.activeId = active ?? 0;
    this.reportFocus(report);
  }

  private reportFocus(report: boolean): void {
    const t = this.tracked.get(this.activeId);
    if (!t) {
      const lost = this.reportedFocus === null ? undefined : this.tracked.get(this.reportedFocus);
      this.reportedFocus = null;
      if (lost && report) this.emit('unfocused', lost.info);
      return;
    }
    if (this.reportedFocus === this.activeId) return;
    this.reportedFocus = this.activeId;
    if (report) this.emit('focused', t.info);
  }

  private async refreshTitle(id: number): Promise<void> {
    const t = this.tracked.get(id);
    if (!t) return;
    const title = await this.readTitle(id).catch(() => null);
    if (title === null || title === t.info.title || !this.tracked.has(id)) return;
    t.info.title = title;
    this.emit('title', t.info);
  }

  private remove(id: number): void {
    const t = this.tracked.get(id);
    if (!t) return;
    this.tracked.delete(id);
    this.dirtyGeometry.delete(id);
    this.order = this.order.filter((w) => w !== id);
    this.unindexAncestors(id, t.ancestors);
    if (this.reportedFocus === id) this.reportedFocus = null;
    this.emit('destroyed', t.info);
  }

  /** Reads everything about a new client; null when it vanished meanwhile. */
  private async describe(id: number): Promise<Tracked | null> {
    try {
      // Select first, read second: a change between the two still reaches us as an event. That holds
      // for the WM's frames too: their StructureNotify is selected (ancestorsOf) before the geometry is
      // read, or a frame the WM moves into place in between would leave a stale position tracked.
      await this.conn.selectInput(id, EventMask.StructureNotify | EventMask.PropertyChange);
      const ancestors = await this.ancestorsOf(id);
      const [cls, title, geom, transient] = await Promise.all([
        this.conn.getProperty(id, Atom.WM_CLASS, Atom.STRING),
        this.readTitle(id),
        this.conn.rootGeometry(id),
        this.conn.getIds(id, Atom.WM_TRANSIENT_FOR, Atom.WINDOW),
      ]);
      const [wmInstance = '', wmClass = ''] = cls.data.toString('latin1').split('\0');
      return {
        info: { id, wmClass, wmInstance, title, transientFor: transient[0] ?? 0, ...geom },
        ancestors,
      };
    } catch {
      return null;
    }
  }

  private async readTitle(id: number): Promise<string> {
    const [netName, wmName] = await Promise.all([
      this.conn.getProperty(id, this.atoms._NET_WM_NAME, 0),
      this.conn.getProperty(id, Atom.WM_NAME, 0),
    ]);
    // _NET_WM_NAME is UTF-8 whatever type it claims (xdotool writes it as STRING).
    if (netName.format === 8 && netName.type !== 0) return netName.data.toString('utf8');
    if (wmName.format !== 8) return '';
    return decodeText(wmName.data);
  }

  private async ancestorsOf(id: number): Promise<number[]> {
    const chain: number[] = [];
    let current = id;
    // Bounded: a real tree is a handful deep; this guards against a pathological one.
    for (let depth = 0; depth < 32; depth++) {
      const { parent } = await this.conn.queryTree(current);
      if (parent === 0 || parent === this.conn.root) break;
      chain.push(parent);
      current = parent;
    }
    await Promise.all(chain.map((w) => this.conn.selectInput(w, EventMask.StructureNotify)));
    return chain;
  }

  private async rebuildAncestors(id: number): Promise<void> {
    const t = this.tracked.get(id);
    if (!t) return;
    const ancestors = await this.ancestorsOf(id).catch(() => null);
    if (!ancestors || !this.tracked.has(id)) return;
    const kept = new Set(ancestors);
    this.unindexAncestors(
      id,
      t.ancestors.filter((a) => !kept.has(a)),
    );
    t.ancestors = ancestors;
    this.indexAncestors(id, ancestors);
  }

  private indexAncestors(id: number, ancestors: number[]): void {
    for (const a of ancestors) {
      let set = this.byAncestor.get(a);
      if (!set) this.byAncestor.set(a, (set = new Set()));
      set.add(id);
    }
  }

  private unindexAncestors(id: number, ancestors: number[]): void {
    for (const a of ancestors) {
      const set = this.byAncestor.get(a);
      if (!set) continue;
      set.delete(id);
      if (set.size === 0) {
        this.byAncestor.delete(a);
        // Stop listening to a frame nobody we track lives in; it may already be gone.
        this.conn.selectInput(a, 0).catch(() => undefined);
      }
    }
  }
}

/** WM_NAME is Latin-1 by ICCCM, yet many clients store UTF-8 there: take UTF-8 when it is valid. */
function decodeText(data: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    return data.toString('latin1');
  }
}

export type { Geometry };
