/**
 * Capped exponential backoff with full jitter, for reconnecting to the proxy:
 * a restarted proxy is found again quickly, a proxy that stays down costs one
 * attempt per `maxMs` at most, and many VMs do not reconnect in lockstep.
 * The defaults are docs/protocol.md's: from 1 s, doubling up to 30 s.
 */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  factor: number;
  /** 0..1: the share of each delay that is random. */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 1000, maxMs: 30_000, factor: 2, jitter: 0.5 };

export class Backoff {
  private attempt = 0;
  constructor(
    private readonly opts: BackoffOptions = DEFAULT_BACKOFF,
    private readonly random: () => number = Math.random,
  ) {
    if (!(
      opts.initialMs > 0 &&
      opts.maxMs >= opts.initialMs &&
      opts.factor >= 1 &&
      opts.jitter >= 0 &&
      opts.jitter <= 1
    )) {
      throw new RangeError(`invalid backoff ${JSON.stringify(opts)}`);
    }
  }

  /** The delay before the next attempt; grows until `maxMs`. */
  next(): number {
    const ceiling = Math.min(this.opts.maxMs, this.opts.initialMs * this.opts.factor ** this.attempt);
    if (ceiling < this.opts.maxMs) this.attempt++;
    return Math.round(ceiling * (1 - this.opts.jitter * this.random()));
  }

  /** After a connection that worked: start again from `initialMs`. */
  reset(): void {
    this.attempt = 0;
  }
}
