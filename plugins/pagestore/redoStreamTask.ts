/**
 * Worker-pool task: one worker's side of the streaming redo (redoStream.ts, where the flow,
 * the ring entries and the control words are described). Drains its ring into a PageRedo,
 * applies every `applyEvery` segment markers and publishes how far it has applied, and when the
 * reader closes the ring, writes its pages back if the verdict is COMMIT.
 */
import { RingConsumer } from '../../core/ring/index.js';
import { PageRedo, type RedoResult } from './redoApply.js';
import { kCommit, kSegmentEnd, kVerdict, type RedoStreamTaskInput } from './redoStream.js';

export default function redoStream(input: RedoStreamTaskInput): RedoResult {
  const { control, worker } = input;
  const ring = new RingConsumer(input.ring.buffer, input.ring.byteOffset);
  const words = ring.int32;
  const redo = new PageRedo(input.wal, input.dataFile, input.pageSize, input.pageCount, input.budgetBytes);
  let commit = false;
  try {
    let segments = 0;
    for (;;) {
      const n = ring.peek(Infinity);
      if (n === 0) {
        if (ring.waitForDataSync() === 'closed') break;
        continue;
      }
      for (let i = 0; i < n; i++) {
        const word = ring.offsetOf(i) >> 2;
        const position = words[word]! >>> 0;
        const pageId = words[word + 1]! >>> 0;
        if (pageId !== kSegmentEnd) {
          redo.add(position, pageId);
        } else if (++segments >= input.applyEvery) {
          // The records of segments up to this one are applied: their window slots may be reused.
          redo.apply();
          segments = 0;
          Atomics.store(control, 1 + worker, position + 1);
          Atomics.notify(control, 1 + worker);
        }
      }
      ring.release(n);
    }
    commit = Atomics.load(control, kVerdict) === kCommit;
  } finally {
    // A throw above (or an abort verdict) writes nothing more; the error reaches the reader.
    redo.finish(commit);
  }
  return redo.result;
}
