/** Lock-free single-producer/single-consumer rings over SharedArrayBuffer; see spscRing.ts for the rules. */
export { SpscRing, RingProducer, RingConsumer } from './spscRing.js';
export type { RecordWriter, RecordReader, RingWaitResult, RingGeometry } from './spscRing.js';
