import { performance } from 'node:perf_hooks';
import { WindowTracker } from '../guest-agent/src/window-tracker.js';
import { XConn } from '../guest-agent/src/xconn.js';

/** Where the benchmark watches for a window's `created` event. */
export interface AgentPath {
  name: string;
  stop(): Promise<void>;
}

/** The window tracker alone: X server -> agent's X connection -> event. */
export async function startAgentPath(
  display: string,
  created: (title: string, t: number) => void,
): Promise<AgentPath> {
  const conn = await XConn.connect(display);
  const tracker = await WindowTracker.start(conn);
  tracker.onWindowEvent((e) => {
    if (e.kind === 'created') created(e.window.title, performance.now());
  });
  return {
    name: 'tracker event',
    async stop() {
      tracker.stop();
      conn.close();
    },
  };
}
