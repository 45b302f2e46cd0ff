/** Lock-free single-producer/single-consumer rings over SharedArrayBuffer; see spscRing.ts for the rules. */
export { SpscRing } from './spscRing.js';
export { RingProducer } from './ringProducer.js';
export { RingConsumer } from './ringConsumer.js';
export type { RecordWriter, RecordReader, RingWaitResult, RingGeometry } from './spscRing.js';
