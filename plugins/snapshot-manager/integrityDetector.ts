/**
 * The snapshot manager's detector: for each store with `snapshots.verifyEvery` (default 1 h), a
 * pass over its snapshot directory on that interval (integrity.ts: every snapshot file and
 * archived WAL segment against the checksum recorded when it was written). A pass takes no lock
 * and runs beside snapshots and retention: files appear by rename, complete, and retention
 * deletes a manifest or sidecar before the files it names, so a file gone under the pass with
 * its manifest is pruned, not damaged (integrity.ts). Waiting for a snapshot round instead would
 * let that round's retention delete damage the pass was about to find — harmless (nothing needed
 * it any more), but a damage to a file that stays is then found only a round later.
 *
 * Each damaged snapshot is one `snapshot-corruption`, each damaged archived segment one
 * `archive-corruption`, both **P2**: no data is lost yet — the store and its live WAL are whole,
 * and the application commits on — but a restore (or a page repair) that needs the damaged file
 * would fail, so the damage is to be healed within P2's RTO, before the next disaster needs it.
 * Evidence names the file, the snapshot or the segment's LSN range, and the expected and found
 * sizes and XXH3-64 checksums. An archived copy that matches its sidecar is also checked record by
 * record — from the archiver's walk recorded in its sidecar, or (older sidecars) by walking the
 * decompressed copy once (integrity.ts `recordsBreak`): a live segment damaged before it retired
 * is archived with checksums of its damage, and found only so (`recordLsn`, the record's own
 * checksums). Archived segments are checked newest first, the archive listed again as a pass
 * goes (integrity.ts `findDamage`), so such a copy is seen within moments, before retention
 * prunes it.
 *
 * A pass reads at most `snapshots.verifyRate` bytes a second (a token bucket per store): an
 * archive that grew large — no snapshot could be taken, so retention pruned nothing — once made
 * passes run back to back, a core busy reading it, while the repairs it waited for timed out.
 * The agent stopping ends a pass at its next file.
 *
 * A damage is published once; a pass that finds it again (its failure open, or escalated) stays
 * quiet, so a repair that failed is not retried every interval. Gone from a pass (repaired,
 * pruned), it is forgotten: damage there again is published again.
 */
import type { Logger } from 'pino';
import type { Detector } from '../../core/contracts/Detector.js';
import type { FailureSink } from '../../core/contracts/Failure.js';
import type { PageEngine } from '../../core/contracts/PageEngine.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeError } from '../../core/errors.js';
import { StorePasses } from '../../core/storePasses.js';
import { TokenBucket } from '../../core/tokenBucket.js';
import { findDamage, type Damage, type Pace } from './integrity.js';

export const SNAPSHOT_CORRUPTION = 'snapshot-corruption';
export const ARCHIVE_CORRUPTION = 'archive-corruption';

export interface CheckedStore {
  id: string;
  dir: string;
  /** The store's engine: archived segments are walked record by record with its log face. */
  engine?: PageEngine;
  /** Pass interval (ms); 0: not checked. */
  everyMs: number;
  /** Bytes a second a pass reads at most (unlimited when absent). */
  rate?: number;
}

/** Thrown by a pass's pace when the detector stops: the pass ends, nothing is published. */
class PassStopped extends Error {}

/** Totals for tests and status. */
export interface IntegrityStats {
  passes: number;
  published: number;
  failedPasses: number;
}

/** The evidence of a damage, as published. */
export function evidenceOf(store: string, dir: string, d: Damage): Record<string, unknown> {
  return {
    store,
    snapshotDir: dir,
    ...(d.what === 'snapshot' ? { snapshotId: d.id } : { segment: d.id, startLsn: d.startLsn, ...(d.endLsn !== undefined ? { endLsn: d.endLsn, rawXxh3: d.rawXxh3 } : {}), ...(d.recordLsn !== undefined ? { recordLsn: d.recordLsn } : {}) }),
    file: d.file,
    files: d.files,
    problem: d.problem,
    expected: d.expected,
    found: d.found,
  };
}

export class IntegrityDetector implements Detector {
  readonly id = 'snapshot-manager';
  readonly kinds = [SNAPSHOT_CORRUPTION, ARCHIVE_CORRUPTION];
  readonly stats: IntegrityStats = { passes: 0, published: 0, failedPasses: 0 };
  private passes: StorePasses<CheckedStore> | null = null;
  /** Per store: the damage keys published and still found. */
  private published = new Map<string, Set<string>>();
  /** Archived copies already walked record by record and found whole (`<start>:<xxh3>`): decompressed once each. */
  private wholeSegments = new Set<string>();
  /** Per store: its pass's token bucket (a burst of a tenth of a second's reading, at least 1 MiB). */
  private buckets = new Map<string, TokenBucket>();

  /**
   * `busy(id)`: a repair of the store's directory is under way (integrityActions.ts): a pass then
   * publishes nothing — a segment being archived again is briefly a new file beside its old sidecar.
   */
  constructor(private readonly stores: readonly CheckedStore[], private readonly log: Logger, private readonly busy: (id: string) => boolean = () => false) {}

  /** Aborted on stop: a pass waiting out its rate ends at once. */
  private stopSignal = new AbortController();

  start(sink: FailureSink): void {
    this.stopSignal = new AbortController();
    this.passes = new StorePasses((s) => this.pass(s, sink));
    this.passes.start(this.stores);
  }

  async stop(): Promise<void> {
    const passes = this.passes?.stop();
    this.stopSignal.abort();
    await passes;
  }

  /** One pass over a store's snapshot directory; publishes what is newly damaged. Never throws. */
  async pass(s: CheckedStore, sink: FailureSink): Promise<Damage[]> {
    let damage: Damage[];
    try {
      damage = await findDamage(s.dir, s.engine, this.wholeSegments, this.paceOf(s));
    } catch (err) {
      if (err instanceof PassStopped) return [];
      this.stats.failedPasses++;
      this.log.warn({ store: s.id, dir: s.dir, err: describeError(err) }, 'snapshot integrity pass failed');
      return [];
    }
    this.stats.passes++;
    if (this.busy(s.id)) return damage;
    const before = this.published.get(s.id) ?? new Set<string>();
    const now = new Set<string>();
    for (const d of damage) {
      const key = `${d.what}:${d.id}:${d.found?.xxh3 ?? 'unreadable'}`;
      now.add(key);
      if (before.has(key) || this.passes?.stopped === true) continue;
      const kind = d.what === 'snapshot' ? SNAPSHOT_CORRUPTION : ARCHIVE_CORRUPTION;
      const f = sink.publish({ kind, priority: 'P2', subject: `store:${s.id}`, evidence: evidenceOf(s.id, s.dir, d), fingerprint: `${kind}:${s.id}:${d.id}` });
      this.stats.published++;
      this.log.warn({ store: s.id, failure: f.id, file: d.file, problem: d.problem }, d.what === 'snapshot' ? 'a snapshot is damaged' : 'an archived WAL segment is damaged');
    }
    this.published.set(s.id, now);
    return damage;
  }

  private paceOf(s: CheckedStore): Pace | undefined {
    if (s.rate === undefined) return undefined;
    let bucket = this.buckets.get(s.id);
    if (!bucket) this.buckets.set(s.id, (bucket = new TokenBucket(s.rate, Math.max(1 << 20, s.rate / 10))));
    return async (bytes) => {
      if (this.stopping()) throw new PassStopped();
      // A file larger than the burst waits its whole share; the bucket's debt carries over.
      const waitMs = bucket.reserve(bytes);
      if (waitMs > 0) await sleep(waitMs, undefined, { signal: this.stopSignal.signal }).catch(() => undefined);
      if (this.stopping()) throw new PassStopped();
    };
  }

  private stopping(): boolean {
    return this.passes?.stopped === true;
  }
}
