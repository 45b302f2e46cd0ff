/**
 * Worker-pool task: one worker's side of the streaming redo (redoStream.ts, where the flow,
 * the ring entries and the control words are described). Drains its ring into a PageRedo,
 * applies every `applyEvery` segment markers and publishes how far it has applied, and when the
 * reader closes the ring, writes its pages back if the verdict is COMMIT.
 */
import { RingConsumer } from '../../core/ring/index.js';
import { PageRedo } from './pageRedo.js';
import type { RedoResult } from './redoApply.js';
import type { RedoStreamTaskInput } from './redoStream.js';
import { kCommit, kEntryBytes, kSegmentEnd, kVerdict } from './redoStreamWire.js';

export default function redoStream(input: RedoStreamTaskInput): RedoResult {
  const { control, worker } = input;
  const ring = new RingConsumer(input.ring.buffer, input.ring.byteOffset);
  const words = ring.int32;
  const entries = words.length >> 1;
  const redo = new PageRedo(input.wal, input.dataFile, input.pageSize, input.pageCount, input.budgetBytes);
  let commit = false;
  let segments = 0;
  /**
   * Takes `count` entries from entry `first` of the ring's area (no wrap): records queued in one
   * tight call (PageRedo.addUntil) up to each segment marker. The per-entry loop lives in that
   * small method, not here: a loop in this function made V8 compile the whole task again and
   * again as each cold branch got its first feedback (9 OSR compilations per worker, 25–100 ms
   * of a background thread each).
   */
  const take = (first: number, count: number): void => {
    for (let k = 0; k < count; ) {
      k += redo.addUntil(words, first + k, count - k, kSegmentEnd);
      if (k === count) break;
      const seq = words[2 * (first + k)]! >>> 0;
      k++;
      if (++segments >= input.applyEvery) {
        // The records of segments up to this one are applied: their window slots may be reused.
        redo.apply();
        segments = 0;
        Atomics.store(control, 1 + worker, seq + 1);
        Atomics.notify(control, 1 + worker);
      }
    }
  };
  try {
    for (;;) {
      const n = ring.peek(Infinity);
      if (n === 0) {
        if (ring.waitForDataSync() === 'closed') break;
        continue;
      }
      // The readable entries run to the end of the ring's area, then wrap to its start.
      const first = ring.offsetOf(0) / kEntryBytes;
      const head = Math.min(n, entries - first);
      take(first, head);
      if (head < n) take(0, n - head);
      ring.release(n);
    }
    commit = Atomics.load(control, kVerdict) === kCommit;
  } finally {
    // A throw above (or an abort verdict) writes nothing more; the error reaches the reader.
    redo.finish(commit);
  }
  return redo.result;
}
