/**
 * The repairer's connections to stores' live owners, kept between the steps of a repair (look,
 * fetch from a replica through the owner, install) and between the repairs of a burst: a
 * connection costs more than a request (DESIGN.md "Page repair from a replica"). One per store;
 * closed after `idleMs` without use, and dropped on a channel error (the owner went, a request
 * timed out) so that the next repair connects again — to a restarted owner, say.
 */
import type { LiveOwner, PageEngine } from '../../core/contracts/PageEngine.js';
import { isRaError } from '../../core/errors.js';

/** A connection lent for one repair: `release(err)` with the error that ended it, if any. */
export interface OwnerLease {
  readonly owner: LiveOwner;
  release(err?: unknown): void;
}

export class OwnerConnections {
  private readonly open = new Map<string, { owner: Promise<LiveOwner>; timer: NodeJS.Timeout | null; users: number }>();

  /** `idleMs` 0: each connection is closed as soon as its repair is done (nothing kept). */
  constructor(private readonly idleMs = 2000) {}

  /**
   * The owner of the store in `dir`, connected or kept; null when nobody serves the store
   * (RA_ERR_CONTROL_UNAVAILABLE: no owner, or one without the channel). Other errors are thrown.
   */
  async lease(engine: PageEngine, dir: string, options: { timeoutMs?: number } = {}): Promise<OwnerLease | null> {
    let e = this.open.get(dir);
    if (e && (await e.owner.catch(() => null))?.closed) this.drop(dir, e);
    e = this.open.get(dir);
    if (!e) {
      e = { owner: engine.connectOwner(dir, options), timer: null, users: 0 };
      this.open.set(dir, e);
    }
    const entry = e;
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = null;
    entry.users++;
    let owner: LiveOwner;
    try {
      owner = await entry.owner;
    } catch (err) {
      entry.users--;
      if (this.open.get(dir) === entry) this.open.delete(dir);
      if (isRaError(err, 'RA_ERR_CONTROL_UNAVAILABLE')) return null;
      throw err;
    }
    let released = false;
    return {
      owner,
      release: (err?: unknown) => {
        if (released) return;
        released = true;
        entry.users--;
        const broken = owner.closed === true || (err !== undefined && (!isRaError(err) || err.code === 'RA_ERR_CONTROL'));
        if (broken || this.idleMs === 0) {
          if (entry.users === 0 || broken) this.drop(dir, entry);
          return;
        }
        if (entry.users === 0 && this.open.get(dir) === entry) {
          entry.timer = setTimeout(() => this.drop(dir, entry), this.idleMs);
          entry.timer.unref();
        }
      },
    };
  }

  /** Closes every connection kept. */
  closeAll(): void {
    for (const [dir, e] of [...this.open]) this.drop(dir, e);
  }

  private drop(dir: string, e: { owner: Promise<LiveOwner>; timer: NodeJS.Timeout | null }): void {
    if (e.timer) clearTimeout(e.timer);
    if (this.open.get(dir) === e) this.open.delete(dir);
    void e.owner.then((o) => o.close(), () => undefined);
  }
}
