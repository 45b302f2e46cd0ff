/**
 * Periodic passes over stores, for detectors that check each configured store every so often
 * (the live WAL's check, the snapshot directory's): each store's next pass is scheduled when its
 * last one ends, so passes of one store never overlap; timers do not hold the process open; and
 * `stop()` cancels what is scheduled and waits for the passes under way.
 */
export class StorePasses<S extends { readonly id: string; readonly everyMs: number }> {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly running = new Set<Promise<unknown>>();
  private stoppedFlag = true;

  /** `pass` must not throw (a pass that fails says so itself); a store with `everyMs` 0 gets none. */
  constructor(private readonly pass: (store: S) => Promise<unknown>) {}

  /** True once stopped (a pass under way may look, to publish nothing more). */
  get stopped(): boolean {
    return this.stoppedFlag;
  }

  start(stores: readonly S[]): void {
    this.stoppedFlag = false;
    for (const s of stores) if (s.everyMs > 0) this.schedule(s);
  }

  async stop(): Promise<void> {
    this.stoppedFlag = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await Promise.all(this.running);
  }

  private schedule(s: S): void {
    const t = setTimeout(() => {
      const p = this.pass(s).finally(() => {
        this.running.delete(p);
        if (!this.stoppedFlag) this.schedule(s);
      });
      this.running.add(p);
    }, s.everyMs);
    t.unref();
    this.timers.set(s.id, t);
  }
}
