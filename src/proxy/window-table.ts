import type { WindowEventMessage, WindowInfo } from '../protocol/index.js';

/**
 * The proxy's live view of every VM's windows. Pure state: the server feeds
 * it decoded messages and connection changes; readers get JSON-ready copies.
 * A VM stays in the table after its agent disconnects (marked disconnected),
 * so a reconnecting agent's snapshot replaces stale windows in place.
 */

export interface VmWindowState {
  name: string;
  connected: boolean;
  connectedAt: Date | null;
  peer: string | null;
  focused: number;
  windows: Map<number, WindowInfo>;
  /** Window events received for this VM since the proxy started. */
  events: number;
}

export interface VmWindowsView {
  name: string;
  connected: boolean;
  focused: number;
  windows: WindowInfo[];
}

export interface VmStatusView {
  name: string;
  connected: boolean;
  connectedAt: string | null;
  peer: string | null;
  windows: number;
  events: number;
}

/** More windows than this from one VM is treated as abuse (the agent is closed). */
export const MAX_WINDOWS_PER_VM = 4096;

export type ApplyOutcome = 'ok' | 'unknown-window' | 'too-many-windows';

export class WindowTable {
  private readonly vms = new Map<string, VmWindowState>();

  private state(name: string): VmWindowState {
    let vm = this.vms.get(name);
    if (!vm) {
      vm = {
        name,
        connected: false,
        connectedAt: null,
        peer: null,
        focused: 0,
        windows: new Map(),
        events: 0,
      };
      this.vms.set(name, vm);
    }
    return vm;
  }

  has(name: string): boolean {
    return this.vms.has(name);
  }

  agentConnected(name: string, peer: string, at: Date = new Date()): void {
    const vm = this.state(name);
    vm.connected = true;
    vm.connectedAt = at;
    vm.peer = peer;
  }

  /** Keeps the windows (the agent will resync on reconnect) but marks them stale. */
  agentDisconnected(name: string): void {
    const vm = this.vms.get(name);
    if (!vm) return;
    vm.connected = false;
    vm.peer = null;
  }

  /** Drops everything known of the VM (it was destroyed); true if there was anything. */
  forget(name: string): boolean {
    return this.vms.delete(name);
  }

  /** Applies one window event; says whether it named an unknown window or broke the window limit. */
  apply(name: string, message: WindowEventMessage): ApplyOutcome {
    const vm = this.state(name);
    vm.events++;
    const { windows } = vm;
    switch (message.type) {
      case 'window-list':
        windows.clear();
        for (const w of message.windows) windows.set(w.id, { ...w });
        vm.focused = message.focused;
        return 'ok';
      case 'window-created':
        if (windows.size >= MAX_WINDOWS_PER_VM && !windows.has(message.window.id)) return 'too-many-windows';
        windows.set(message.window.id, { ...message.window });
        return 'ok';
      case 'focus-changed':
        // Unknown ids are ignored like every other event's (docs/protocol.md), so focus never names a window that is not listed.
        if (message.id !== 0 && !windows.has(message.id)) return 'unknown-window';
        vm.focused = message.id;
        return 'ok';
      default:
        break;
    }
    const w = windows.get(message.id);
    if (!w) return 'unknown-window';
    switch (message.type) {
      case 'window-destroyed':
        windows.delete(message.id);
        if (vm.focused === message.id) vm.focused = 0;
        break;
      case 'window-moved':
        w.x = message.x;
        w.y = message.y;
        break;
      case 'window-resized':
        w.width = message.width;
        w.height = message.height;
        break;
      case 'title-changed':
        w.title = message.title;
        break;
      case 'window-mapped':
        w.mapped = true;
        break;
      case 'window-unmapped':
        w.mapped = false;
        break;
    }
    return 'ok';
  }

  names(): string[] {
    return [...this.vms.keys()].sort();
  }

  windowsOf(name: string): VmWindowsView | undefined {
    const vm = this.vms.get(name);
    if (!vm) return undefined;
    return {
      name: vm.name,
      connected: vm.connected,
      focused: vm.focused,
      windows: [...vm.windows.values()].sort((a, b) => a.id - b.id).map((w) => ({ ...w })),
    };
  }

  statusOf(name: string): VmStatusView | undefined {
    const vm = this.vms.get(name);
    if (!vm) return undefined;
    return {
      name: vm.name,
      connected: vm.connected,
      connectedAt: vm.connectedAt ? vm.connectedAt.toISOString() : null,
      peer: vm.peer,
      windows: vm.windows.size,
      events: vm.events,
    };
  }
}
