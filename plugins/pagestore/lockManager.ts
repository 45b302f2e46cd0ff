/**
 * Page locks for strict two-phase locking: shared (read) and exclusive (write) locks, held
 * until the transaction ends. Requests queue FIFO per page; an upgrade from shared to exclusive
 * goes to the head of the queue.
 *
 * Deadlocks: a request that must wait first checks the wait-for graph for a cycle through
 * itself; if there is one, the requester is the victim and its request fails at once with
 * RA_ERR_DEADLOCK. A sweep every `sweepMs` finds any cycle the immediate check cannot see (one
 * closed by a grant rather than a wait) and fails the youngest transaction in it.
 */
import { raError } from '../../core/errors.js';

export type LockMode = 'S' | 'X';

interface Waiter {
  txId: number;
  mode: LockMode;
  resolve: () => void;
  reject: (err: Error) => void;
}

interface PageLock {
  holders: Map<number, LockMode>;
  queue: Waiter[];
}

export class LockManager {
  private readonly locks = new Map<number, PageLock>();
  /** Pages each transaction holds or waits for. */
  private readonly byTx = new Map<number, Set<number>>();
  private readonly sweep: NodeJS.Timeout;
  /** Deadlock victims so far. */
  deadlocks = 0;

  constructor(sweepMs = 200) {
    this.sweep = setInterval(() => this.sweepDeadlocks(), sweepMs);
    this.sweep.unref();
  }

  /** Lock requests waiting now (transactions blocked behind another's lock), for the owner's status. */
  get waiting(): number {
    let n = 0;
    for (const lock of this.locks.values()) n += lock.queue.length;
    return n;
  }

  /** Set once the store failed: every waiter was rejected with it, and every later request is. */
  private failure: Error | null = null;

  /** Resolves when `txId` holds `pageId` in `mode` (or stronger). */
  acquire(txId: number, pageId: number, mode: LockMode): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const lock = this.lockOf(pageId);
    this.pagesOf(txId).add(pageId);
    const held = lock.holders.get(txId);
    if (held === 'X' || held === mode) return Promise.resolve();
    if (this.grantable(lock, txId, mode, held !== undefined)) {
      lock.holders.set(txId, mode);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { txId, mode, resolve, reject };
      // An upgrade waits only for the other holders to leave; putting it behind new requests
      // would deadlock it against them for nothing.
      if (held !== undefined) lock.queue.unshift(w);
      else lock.queue.push(w);
      const cycle = this.cycleThrough(txId);
      if (cycle) this.fail(w, pageId, cycle);
    });
  }

  /** Releases every lock of `txId` and grants what can now be granted. */
  releaseAll(txId: number): void {
    const pages = this.byTx.get(txId);
    if (!pages) return;
    this.byTx.delete(txId);
    for (const pageId of pages) {
      const lock = this.locks.get(pageId);
      if (!lock) continue;
      lock.holders.delete(txId);
      lock.queue = lock.queue.filter((w) => w.txId !== txId);
      this.grantWaiting(lock);
      if (lock.holders.size === 0 && lock.queue.length === 0) this.locks.delete(pageId);
    }
  }

  close(): void {
    clearInterval(this.sweep);
  }

  /**
   * The store failed (its log cannot be written): no lock will be released by a commit, so
   * every waiter is rejected with `err` now, and so is every later request.
   */
  failAll(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    for (const lock of this.locks.values()) {
      for (const w of lock.queue.splice(0)) w.reject(err);
    }
  }

  private grantable(lock: PageLock, txId: number, mode: LockMode, upgrade: boolean): boolean {
    if (!upgrade && lock.queue.length > 0) return false;
    for (const [holder, m] of lock.holders) {
      if (holder === txId) continue;
      if (mode === 'X' || m === 'X') return false;
    }
    return true;
  }

  private grantWaiting(lock: PageLock): void {
    while (lock.queue.length > 0) {
      const w = lock.queue[0]!;
      const others = [...lock.holders].filter(([h]) => h !== w.txId);
      const ok = w.mode === 'S' ? others.every(([, m]) => m === 'S') : others.length === 0;
      if (!ok) return;
      lock.queue.shift();
      lock.holders.set(w.txId, w.mode);
      w.resolve();
    }
  }

  /** Transactions `txId` waits for: incompatible holders and queued requests ahead of it. */
  private waitsFor(txId: number): number[] {
    const out: number[] = [];
    for (const pageId of this.byTx.get(txId) ?? []) {
      const lock = this.locks.get(pageId);
      if (!lock) continue;
      const idx = lock.queue.findIndex((w) => w.txId === txId);
      if (idx < 0) continue;
      const me = lock.queue[idx]!;
      for (const [h, m] of lock.holders) if (h !== txId && (me.mode === 'X' || m === 'X')) out.push(h);
      for (let i = 0; i < idx; i++) if (lock.queue[i]!.txId !== txId) out.push(lock.queue[i]!.txId);
    }
    return out;
  }

  /** A cycle in the wait-for graph that passes through `start`, or null. */
  private cycleThrough(start: number): number[] | null {
    const path: number[] = [];
    const seen = new Set<number>();
    const dfs = (tx: number): boolean => {
      for (const next of this.waitsFor(tx)) {
        if (next === start) return true;
        if (seen.has(next)) continue;
        seen.add(next);
        path.push(next);
        if (dfs(next)) return true;
        path.pop();
      }
      return false;
    };
    return dfs(start) ? [start, ...path] : null;
  }

  private sweepDeadlocks(): void {
    const waiting = new Set<number>();
    for (const lock of this.locks.values()) for (const w of lock.queue) waiting.add(w.txId);
    for (const tx of [...waiting].sort((a, b) => b - a)) {
      const cycle = this.cycleThrough(tx);
      if (!cycle) continue;
      const victim = Math.max(...cycle);
      for (const [pageId, lock] of this.locks) {
        const w = lock.queue.find((x) => x.txId === victim);
        if (w) {
          this.fail(w, pageId, cycle);
          break;
        }
      }
    }
  }

  private fail(w: Waiter, pageId: number, cycle: number[]): void {
    const lock = this.locks.get(pageId);
    if (lock) {
      lock.queue = lock.queue.filter((x) => x !== w);
      this.grantWaiting(lock);
    }
    this.deadlocks++;
    w.reject(
      raError('RA_ERR_DEADLOCK', `transaction ${w.txId} was chosen as the deadlock victim waiting for page ${pageId} (cycle: ${[...cycle, cycle[0]].join(' -> ')}); it has been rolled back, retry it`, {
        details: { txId: w.txId, pageId, cycle },
      }),
    );
  }

  private lockOf(pageId: number): PageLock {
    let l = this.locks.get(pageId);
    if (!l) {
      l = { holders: new Map(), queue: [] };
      this.locks.set(pageId, l);
    }
    return l;
  }

  private pagesOf(txId: number): Set<number> {
    let s = this.byTx.get(txId);
    if (!s) {
      s = new Set();
      this.byTx.set(txId, s);
    }
    return s;
  }
}
