import type { XEvent } from 'x11';
import { Atom, EventMask, type XConn } from './xconn.js';

/**
 * The X CLIPBOARD selection, read and written over the agent's own X
 * connection (no xclip needed in the guest). Reading converts the selection to
 * UTF8_STRING (falling back to STRING) and follows the INCR protocol for large
 * values; writing takes ownership and answers other clients' requests until
 * someone else takes the clipboard. Text only, bounded by `maxBytes`.
 */

export class ClipboardError extends Error {
  override readonly name = 'ClipboardError';
  constructor(
    message: string,
    /** Set when the content is over the size limit (the protocol's TOO_LARGE). */
    readonly tooLarge = false,
  ) {
    super(message);
  }
}

const ATOMS = ['CLIPBOARD', 'UTF8_STRING', 'TARGETS', 'TEXT', 'INCR', 'VMP_CLIPBOARD'] as const;
type Atoms = Record<(typeof ATOMS)[number], number>;

interface Wait {
  promise: Promise<XEvent>;
  cancel(): void;
}

/** Room for the request header when a value is split over several ChangeProperty requests. */
const REQUEST_HEADER = 64;

export class X11Clipboard {
  /** What we serve while we own the clipboard. */
  private owned: Buffer | null = null;
  private readonly waiters: { pred: (ev: XEvent) => boolean; resolve: (ev: XEvent) => void }[] = [];
  /** Serialises reads: they share one property on one window. */
  private readLock: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly conn: XConn,
    private readonly wid: number,
    private readonly atoms: Atoms,
    readonly maxBytes: number,
  ) {}

  static async create(conn: XConn, maxBytes: number): Promise<X11Clipboard> {
    const atoms = await conn.internAtoms(ATOMS);
    const wid = await conn.createHiddenWindow(EventMask.PropertyChange);
    const clip = new X11Clipboard(conn, wid, atoms, maxBytes);
    conn.onEvent((ev) => clip.handle(ev));
    return clip;
  }

  /** The clipboard's text ('' when nobody owns it). Rejects past `maxBytes` or `timeoutMs`. */
  read(timeoutMs = 3000): Promise<string> {
    const run = this.readLock.then(() => this.readNow(timeoutMs));
    this.readLock = run.catch(() => undefined);
    return run;
  }

  /** Takes the clipboard and serves `text` to other X clients until one of them takes it back. */
  async write(text: string): Promise<void> {
    const data = Buffer.from(text, 'utf8');
    if (data.length > this.maxBytes) {
      throw new ClipboardError(
        `clipboard text of ${data.length} bytes exceeds the ${this.maxBytes}-byte limit`,
      );
    }
    this.owned = data;
    await this.conn.setSelectionOwner(this.wid, this.atoms.CLIPBOARD);
    if ((await this.conn.getSelectionOwner(this.atoms.CLIPBOARD)) !== this.wid) {
      this.owned = null;
      throw new ClipboardError('could not take ownership of the X clipboard');
    }
  }

  /** True while the agent's own text is the clipboard. */
  get ownsClipboard(): boolean {
    return this.owned !== null;
  }

  async dispose(): Promise<void> {
    this.owned = null;
    await this.conn.destroyWindow(this.wid).catch(() => undefined);
  }

  private async readNow(timeoutMs: number): Promise<string> {
    if (this.owned) return this.owned.toString('utf8');
    const owner = await this.conn.getSelectionOwner(this.atoms.CLIPBOARD);
    if (owner === 0) return '';
    const deadline = Date.now() + timeoutMs;
    for (const target of [this.atoms.UTF8_STRING, Atom.STRING]) {
      await this.conn.deleteProperty(this.wid, this.atoms.VMP_CLIPBOARD);
      const notified = this.next(
        (ev) =>
          ev.name === 'SelectionNotify' && ev.requestor === this.wid && ev.selection === this.atoms.CLIPBOARD,
        deadline,
      );
      let ev: XEvent;
      try {
        await this.conn.convertSelection(this.wid, this.atoms.CLIPBOARD, target, this.atoms.VMP_CLIPBOARD);
        ev = await notified.promise;
      } finally {
        notified.cancel();
      }
      if (!ev.property) continue; // the owner cannot convert to this target
      const data = await this.fetch(deadline);
      return target === Atom.STRING ? data.toString('latin1') : data.toString('utf8');
    }
    return '';
  }

  /** Reads (and deletes) the reply property, following INCR transfers chunk by chunk. */
  private async fetch(deadline: number): Promise<Buffer> {
    const prop = this.atoms.VMP_CLIPBOARD;
    const newValue = (): Wait =>
      this.next(
        (ev) => ev.name === 'PropertyNotify' && ev.wid === this.wid && ev.atom === prop && ev.state === 0,
        deadline,
      );
    // Armed before the first read: the owner may answer our delete at once.
    let waitChunk = newValue();
    try {
      const first = await this.conn.getProperty(this.wid, prop, 0, true);
      if (first.type !== this.atoms.INCR) {
        this.check(first.data.length);
        return first.data;
      }
      // INCR: our delete above asked the owner for the first chunk; an empty chunk ends it.
      const chunks: Buffer[] = [];
      let total = 0;
      for (;;) {
        await waitChunk.promise;
        waitChunk = newValue();
        const part = await this.conn.getProperty(this.wid, prop, 0, true);
        if (part.data.length === 0) return Buffer.concat(chunks, total);
        total += part.data.length;
        this.check(total);
        chunks.push(part.data);
      }
    } finally {
      waitChunk.cancel();
    }
  }

  private check(size: number): void {
    if (size > this.maxBytes) {
      throw new ClipboardError(`clipboard content exceeds the ${this.maxBytes}-byte limit`, true);
    }
  }

  /** Waits for the next matching event; `cancel` withdraws the wait without a rejection. */
  private next(pred: (ev: XEvent) => boolean, deadline: number): Wait {
    let cancel = (): void => undefined;
    const promise = new Promise<XEvent>((resolve, reject) => {
      const waiter = {
        pred,
        resolve: (ev: XEvent): void => {
          clearTimeout(timer);
          resolve(ev);
        },
      };
      const drop = (): void => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
      };
      const timer = setTimeout(
        () => {
          drop();
          reject(new ClipboardError('the clipboard owner did not answer in time'));
        },
        Math.max(0, deadline - Date.now()),
      );
      cancel = () => {
        clearTimeout(timer);
        drop();
      };
      this.waiters.push(waiter);
    });
    return { promise, cancel };
  }

  private handle(ev: XEvent): void {
    if (ev.name === 'SelectionRequest' && ev.owner === this.wid) {
      void this.serve(ev).catch(() => undefined);
      return;
    }
    if (ev.name === 'SelectionClear' && ev.owner === this.wid && ev.selection === this.atoms.CLIPBOARD) {
      this.owned = null;
      return;
    }
    const i = this.waiters.findIndex((w) => w.pred(ev));
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1);
      w?.resolve(ev);
    }
  }

  /** Answers another client's ConvertSelection (ICCCM 2.2), then notifies it. */
  private async serve(req: XEvent): Promise<void> {
    const requestor = req.requestor ?? 0;
    const target = req.target ?? 0;
    // Obsolete clients pass property None: use the target name as the property.
    const property = req.property || target;
    let answered = 0;
    const data = this.owned;
    if (data && req.selection === this.atoms.CLIPBOARD) {
      if (target === this.atoms.TARGETS) {
        const targets = [this.atoms.TARGETS, this.atoms.UTF8_STRING, this.atoms.TEXT, Atom.STRING];
        await this.conn.changeProperty(0, requestor, property, Atom.ATOM, 32, targets);
        answered = property;
      } else if (target === this.atoms.UTF8_STRING || target === this.atoms.TEXT || target === Atom.STRING) {
        const bytes = target === Atom.STRING ? Buffer.from(data.toString('utf8'), 'latin1') : data;
        const type = target === Atom.STRING ? Atom.STRING : this.atoms.UTF8_STRING;
        await this.putLarge(requestor, property, type, bytes);
        answered = property;
      }
    }
    await this.conn.sendEvent(requestor, {
      name: 'SelectionNotify',
      time: req.time ?? 0,
      requestor,
      selection: req.selection ?? 0,
      target,
      property: answered,
    });
  }

  /** Writes a value larger than one request allows as one Replace and several Appends. */
  private async putLarge(wid: number, prop: number, type: number, bytes: Buffer): Promise<void> {
    const step = Math.min(this.conn.maxRequestBytes, 262_140) - REQUEST_HEADER;
    await this.conn.changeProperty(0, wid, prop, type, 8, bytes.subarray(0, step));
    for (let off = step; off < bytes.length; off += step) {
      await this.conn.changeProperty(2, wid, prop, type, 8, bytes.subarray(off, off + step));
    }
  }
}
