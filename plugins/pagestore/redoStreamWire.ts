/**
 * What the streaming redo's reader (redoStream.ts) and its workers (redoStreamTask.ts) agree on:
 * the ring entry and the control words. A module of its own so that a worker loads only this,
 * the rings and the page redo — not the reader's module, whose imports (the WAL scan, the worker
 * pool and Piscina with it) were most of a redo worker's start.
 */

/** Ring entry: u32 position, u32 page id. */
export const kEntryBytes = 8;
/** The page id of a segment-end marker; its position is the segment's sequence number. */
export const kSegmentEnd = 0xffffffff;
/** Control words: [0] the verdict, [1 + w] segments applied by worker w (through seq = value - 1). */
export const kVerdict = 0;
export const kRunning = 0;
export const kCommit = 1;
export const kAbort = 2;
