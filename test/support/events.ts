/** Collects events as they arrive and waits for one that matches, with a deadline. */
export class EventLog<T> {
  readonly all: T[] = [];
  private waiters: { pred: (e: T) => boolean; resolve: (e: T) => void }[] = [];

  push = (event: T): void => {
    this.all.push(event);
    this.waiters = this.waiters.filter((w) => {
      if (!w.pred(event)) return true;
      w.resolve(event);
      return false;
    });
  };

  /** Resolves with the first event, already seen since `from` or yet to come, that matches. */
  waitFor(pred: (e: T) => boolean, what: string, timeoutMs = 10_000, from = 0): Promise<T> {
    const seen = this.all.slice(from).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(
          new Error(
            `no ${what} within ${timeoutMs} ms; got: ${JSON.stringify(this.all.slice(from)).slice(0, 2000)}`,
          ),
        );
      }, timeoutMs);
      const done = (e: T): void => {
        clearTimeout(timer);
        resolve(e);
      };
      this.waiters.push({ pred, resolve: done });
    });
  }

  get mark(): number {
    return this.all.length;
  }
}
