/**
 * What the chaos writer (chaosWriter.ts) and the chaos harness (bench/chaos/) share: the store's
 * shape and the lines of the writer's record file.
 */
import type { WriterMessage } from '../crash/pattern.js';

export const CHAOS_PAGE_SIZE = 4096;
export const CHAOS_SEGMENT_SIZE = 64 * 1024;

/** The writer's own line: what each page held when this run opened the store. */
export interface OpenedMessage {
  t: 'opened';
  runId: number;
  pid: number;
  stamps: Array<number | null>;
}
export type ChaosMessage = WriterMessage | OpenedMessage | { t: 'closed'; runId: number };

/** Options a store is created and opened with, the same in the harness and the writer. */
export function chaosStoreOptions(pages: number): { pageCount: number; pageSize: number; segmentSize: number; checkpointWalBytes: number; checkpointIntervalMs: number; cacheBytes: number } {
  return { pageCount: pages, pageSize: CHAOS_PAGE_SIZE, segmentSize: CHAOS_SEGMENT_SIZE, checkpointWalBytes: 192 * 1024, checkpointIntervalMs: 0, cacheBytes: 16 * CHAOS_PAGE_SIZE };
}

