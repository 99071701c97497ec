import x11 from 'x11';
import type { XClient, XDisplay, XEvent, XProperty } from 'x11';

/**
 * A promise face over the callback API of the pure-JS `x11` client, limited to
 * the requests the agent needs. Every request has a callback, so X errors
 * (e.g. BadWindow for a window that vanished) reject the request's promise
 * instead of surfacing as an unhandled 'error' on the connection.
 */

export const EventMask = {
  StructureNotify: 0x00020000,
  SubstructureNotify: 0x00080000,
  PropertyChange: 0x00400000,
} as const;

/** Predefined atoms from the X protocol (Appendix B); no round trip needed. */
export const Atom = {
  ATOM: 4,
  CARDINAL: 6,
  STRING: 31,
  WINDOW: 33,
  WM_NAME: 39,
  WM_CLASS: 67,
  WM_TRANSIENT_FOR: 68,
} as const;

/** A 4-byte-unit count large enough for any property we read in one go (64 MiB). */
const WHOLE_PROPERTY = 16 * 1024 * 1024;

export interface Geometry {
  x: number;
  y: number;
  width: number;
  height: number;
}

export class XConn {
  private closed = false;
  private constructor(
    readonly client: XClient,
    readonly root: number,
    /** The largest request the server takes, in bytes. */
    readonly maxRequestBytes: number,
  ) {}

  /** Connects to `display`; rejects after `timeoutMs` rather than hanging on a dead server. */
  static connect(display: string, timeoutMs = 5000): Promise<XConn> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        try {
          client.terminate();
        } catch {
          // the stream may not be open yet
        }
        reject(new Error(`X display ${display}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const client = x11.createClient({ display }, (err: Error | null, disp: XDisplay) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          reject(new Error(`X display ${display}: ${err.message}`));
          return;
        }
        const screen = disp.screen[0];
        if (!screen) {
          reject(new Error(`X display ${display}: no screen`));
          return;
        }
        const units = disp.max_request_length ?? 65535;
        resolve(new XConn(disp.client, screen.root, units * 4));
      });
      client.on('error', (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(new Error(`X display ${display}: ${err.message}`));
      });
    });
  }

  onEvent(listener: (ev: XEvent) => void): void {
    this.client.on('event', listener);
  }

  /** Called once when the connection to the X server ends for any reason. */
  onClose(listener: (err?: Error) => void): void {
    let done = false;
    const fire = (err?: Error): void => {
      if (done) return;
      done = true;
      this.closed = true;
      listener(err);
    };
    this.client.on('end', () => fire());
    this.client.on('close', () => fire());
    // Errors of requests without callbacks land here too; only a dead stream ends the connection.
    this.client.on('error', (err: Error & { seq?: number }) => {
      if (err.seq === undefined) fire(err);
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.terminate();
  }

  private call<T>(fn: (cb: (err: Error | null, result: T) => void) => void): Promise<T> {
    return new Promise((resolve, reject) => {
      fn((err, result) => (err ? reject(err) : resolve(result)));
    });
  }

  private voidCall(fn: (cb: (err: Error | null) => void) => void): Promise<void> {
    return new Promise((resolve, reject) => {
      fn((err) => (err ? reject(err) : resolve()));
    });
  }

  internAtom(name: string): Promise<number> {
    return this.call((cb) => this.client.InternAtom(false, name, cb));
  }

  async internAtoms<K extends string>(names: readonly K[]): Promise<Record<K, number>> {
    const values = await Promise.all(names.map((n) => this.internAtom(n)));
    const out = {} as Record<K, number>;
    names.forEach((n, i) => (out[n] = values[i] as number));
    return out;
  }

  getProperty(wid: number, prop: number, type = 0, del = false): Promise<XProperty> {
    return this.call((cb) => this.client.GetProperty(del ? 1 : 0, wid, prop, type, 0, WHOLE_PROPERTY, cb));
  }

  changeProperty(
    mode: 0 | 1 | 2,
    wid: number,
    prop: number,
    type: number,
    format: 8 | 32,
    data: Buffer | number[],
  ): Promise<void> {
    return this.voidCall((cb) => this.client.ChangeProperty(mode, wid, prop, type, format, data, cb));
  }

  deleteProperty(wid: number, prop: number): Promise<void> {
    return this.voidCall((cb) => this.client.DeleteProperty(wid, prop, cb));
  }

  selectInput(wid: number, mask: number): Promise<void> {
    return this.voidCall((cb) => this.client.ChangeWindowAttributes(wid, { eventMask: mask }, cb));
  }

  queryTree(wid: number): Promise<{ root: number; parent: number; children: number[] }> {
    return this.call((cb) => this.client.QueryTree(wid, cb));
  }

  /** Root-relative position of the window's inside origin, and its inside size. */
  async rootGeometry(wid: number): Promise<Geometry> {
    const [pos, geom] = await Promise.all([
      this.call<{ destX: number; destY: number }>((cb) =>
        this.client.TranslateCoordinates(wid, this.root, 0, 0, cb),
      ),
      this.call<{ width: number; height: number }>((cb) => this.client.GetGeometry(wid, cb)),
    ]);
    return { x: pos.destX, y: pos.destY, width: geom.width, height: geom.height };
  }

  /** Reads a 32-bit list property (WINDOW, ATOM, CARDINAL); empty when absent. */
  async getIds(wid: number, prop: number, type: number): Promise<number[]> {
    const p = await this.getProperty(wid, prop, type);
    if (p.format !== 32) return [];
    const ids: number[] = [];
    for (let i = 0; i + 4 <= p.data.length; i += 4) ids.push(p.data.readUInt32LE(i));
    return ids;
  }

  /** An unmapped, input-only window: a private mailbox for selections and properties. */
  async createHiddenWindow(eventMask: number): Promise<number> {
    const wid = this.client.AllocID();
    await this.voidCall((cb) =>
      this.client.CreateWindow(wid, this.root, -10, -10, 1, 1, 0, 0, 2, 0, { eventMask }, cb),
    );
    return wid;
  }

  destroyWindow(wid: number): Promise<void> {
    return this.voidCall((cb) => this.client.DestroyWindow(wid, cb));
  }

  setSelectionOwner(owner: number, selection: number): Promise<void> {
    return this.voidCall((cb) => this.client.SetSelectionOwner(owner, selection, 0, cb));
  }

  getSelectionOwner(selection: number): Promise<number> {
    return this.call((cb) => this.client.GetSelectionOwner(selection, cb));
  }

  convertSelection(requestor: number, selection: number, target: number, property: number): Promise<void> {
    return this.voidCall((cb) => this.client.ConvertSelection(requestor, selection, target, property, 0, cb));
  }

  sendEvent(destination: number, event: Record<string, unknown>): Promise<void> {
    return this.voidCall((cb) => this.client.SendEvent(destination, 0, 0, event, cb));
  }

  /** A round trip: every request sent before it has been processed when this resolves. */
  sync(): Promise<void> {
    return this.call<unknown>((cb) => this.client.GetInputFocus(cb)).then(() => undefined);
  }
}
