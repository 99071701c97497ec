// The `x11` package ships no types; this declares the part of its callback API the agent uses.
declare module 'x11' {
  import type { EventEmitter } from 'node:events';

  export type Cb<T> = (err: Error | null, result: T) => void;
  export type VoidCb = (err: Error | null) => void;

  export interface XEvent {
    type: number;
    name: string;
    seq?: number;
    wid?: number;
    wid1?: number;
    event?: number;
    parent?: number;
    atom?: number;
    state?: number;
    time?: number;
    owner?: number;
    requestor?: number;
    selection?: number;
    target?: number;
    property?: number;
    x?: number;
    y?: number;
    width?: number;
    height?: number;
    overrideRedirect?: boolean | number;
  }

  export interface XProperty {
    type: number;
    format: number;
    bytesAfter: number;
    data: Buffer;
  }

  export interface XClient extends EventEmitter {
    atoms: Record<string, number>;
    AllocID(): number;
    InternAtom(onlyIfExists: boolean, name: string, cb: Cb<number>): void;
    GetProperty(
      del: number,
      wid: number,
      name: number,
      type: number,
      longOffset: number,
      longLength: number,
      cb: Cb<XProperty>,
    ): void;
    ChangeProperty(
      mode: number,
      wid: number,
      name: number,
      type: number,
      format: number,
      data: Buffer | number[],
      cb?: VoidCb,
    ): void;
    DeleteProperty(wid: number, prop: number, cb?: VoidCb): void;
    ChangeWindowAttributes(wid: number, values: Record<string, number>, cb?: VoidCb): void;
    CreateWindow(
      wid: number,
      parent: number,
      x: number,
      y: number,
      width: number,
      height: number,
      borderWidth: number,
      depth: number,
      klass: number,
      visual: number,
      values: Record<string, number>,
      cb?: VoidCb,
    ): void;
    DestroyWindow(wid: number, cb?: VoidCb): void;
    MapWindow(wid: number, cb?: VoidCb): void;
    UnmapWindow(wid: number, cb?: VoidCb): void;
    MoveResizeWindow(wid: number, x: number, y: number, width: number, height: number): void;
    GetGeometry(
      drawable: number,
      cb: Cb<{
        depth: number;
        windowid: number;
        xPos: number;
        yPos: number;
        width: number;
        height: number;
        borderWidth: number;
      }>,
    ): void;
    QueryTree(wid: number, cb: Cb<{ root: number; parent: number; children: number[] }>): void;
    TranslateCoordinates(
      src: number,
      dst: number,
      x: number,
      y: number,
      cb: Cb<{ sameScreen: number; child: number; destX: number; destY: number }>,
    ): void;
    GetInputFocus(cb: Cb<{ revertTo: number; focus: number }>): void;
    SetSelectionOwner(owner: number, selection: number, time?: number, cb?: VoidCb): void;
    GetSelectionOwner(selection: number, cb: Cb<number>): void;
    ConvertSelection(
      requestor: number,
      selection: number,
      target: number,
      property: number,
      time?: number,
      cb?: VoidCb,
    ): void;
    SendEvent(
      destination: number,
      propagate: number | boolean,
      eventMask: number,
      event: Record<string, unknown>,
      cb?: VoidCb,
    ): void;
    terminate(): void;
    close(cb?: () => void): void;
  }

  export interface XScreen {
    root: number;
    root_visual?: number;
  }

  export interface XDisplay {
    client: XClient;
    screen: XScreen[];
    max_request_length?: number;
  }

  export function createClient(
    options: { display?: string; disableBigRequests?: boolean },
    cb: Cb<XDisplay>,
  ): XClient;

  export const eventMask: Record<string, number>;
  const x11: { createClient: typeof createClient; eventMask: typeof eventMask };
  export default x11;
}
