/**
 * The corruption detector's counters, as other plugins read them (the health monitor scores a
 * store by the corrupt pages its scrub found): pages checked, corrupt pages found, and each
 * store's scrub.
 */
import type { InjectionToken } from 'tsyringe';
import { createToken } from '../token.js';

/** What `/status` and metrics show of one store's scrub. */
export interface StoreScrubStats {
  state: 'starting' | 'scanning' | 'waiting' | 'unavailable' | 'stopped';
  /** The next page of the current pass (equal to pageCount between passes). */
  position: number;
  pageCount: number;
  pageSize: number;
  rateBytesPerSec: number;
  passes: number;
  passStartedAt: number;
  lastPassCompletedAt: number;
  lastPassDurationMs: number;
  pagesScanned: number;
  bytesScanned: number;
  /** Corrupt pages found (each time a scan confirms one). */
  corruptFound: number;
  /** Pages that failed once and passed when re-read: writes in progress. */
  transient: number;
  suspectsPending: number;
  lastError: string | null;
}

/** Counters for metrics and `/status`. */
export interface CorruptionStats {
  /** Pages and bytes checked, by the scrub and by on-demand scans. */
  pagesScanned: number;
  bytesScanned: number;
  /** Distinct corrupt pages (store + page) found or reported since the agent started. */
  corruptPagesDetected: number;
  /** page-corruption failures the detector published. */
  failuresPublished: number;
  /** Pages that failed once and passed when re-read (writes in progress). */
  transient: number;
  /** On-demand scans run, and the last one's duration. */
  scans: number;
  lastScanDurationMs: number;
  /** Per store id: the scrub's position, passes and last pass duration. */
  stores: Record<string, StoreScrubStats>;
}

export interface CorruptionDetectorStatsSource {
  /** A copy of the counters now. */
  snapshot(): CorruptionStats;
}

/** Token under which the corruption detector provides its counters (read by the health monitor). */
export const CorruptionDetectorStats: InjectionToken<CorruptionDetectorStatsSource> = createToken<CorruptionDetectorStatsSource>('recovery-agent.CorruptionDetectorStats');

/** Runtime guard: true when `v` implements `CorruptionDetectorStatsSource`. */
export function isCorruptionDetectorStats(v: unknown): v is CorruptionDetectorStatsSource {
  const s = v as CorruptionDetectorStatsSource | null;
  return typeof s === 'object' && s !== null && typeof s.snapshot === 'function';
}
