/**
 * When each side of a connection checks for silence and sends HEARTBEAT.
 *
 * docs/protocol.md promises at least one frame per heartbeat interval. A timer
 * is only ever late, never early, so a side that waits a full interval before
 * sending breaks that promise by however late its timer fires (and a check
 * every 0.75 intervals that sends only after a full one makes the gap 1.5
 * intervals). Sending once half an interval has passed without output, checked
 * every quarter interval, keeps the worst gap at 0.75 intervals plus timer
 * lateness: a quarter interval of slack against a loaded host.
 */

export interface HeartbeatSchedule {
  /** How often to check (silence, and whether a heartbeat is due). */
  tickMs: number;
  /** Send HEARTBEAT once nothing has been sent for this long. */
  sendAfterMs: number;
}

export function heartbeatSchedule(intervalMs: number, silenceTimeoutMs = 3 * intervalMs): HeartbeatSchedule {
  return {
    // The silence check also runs on this tick; a quarter of the timeout keeps it timely.
    tickMs: Math.max(1, Math.floor(Math.min(intervalMs, silenceTimeoutMs) / 4)),
    sendAfterMs: Math.max(1, Math.floor(intervalMs / 2)),
  };
}
