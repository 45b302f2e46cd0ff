/**
 * A lock-free single-producer/single-consumer ring of fixed-size records over a SharedArrayBuffer.
 *
 * RULES OF CONCURRENT CODE (read before changing anything in this file)
 *
 *  1. Single producer, single consumer; roles cannot change. One `RingProducer` and one
 *     `RingConsumer` may exist per ring, for the ring's whole life, each in any thread (main or
 *     worker). The views claim their role in the header when they are constructed (a
 *     compareExchange on kProducerClaim / kConsumerClaim); a second producer or consumer over the
 *     same ring throws RA_ERR_RING. A view is used only by the thread that made it.
 *
 *  2. Who writes what:
 *       kWriteIndex       written only by the producer (Atomics.store), read by the consumer.
 *       kReadIndex        written only by the consumer (Atomics.store), read by the producer.
 *       kClosed           written only by the producer (0 → 1, once), read by the consumer.
 *       record slots      written only by the producer while a slot is free (between kReadIndex and
 *                         kReadIndex + capacity), read only by the consumer while it is filled
 *                         (between kReadIndex and kWriteIndex); plain (non-atomic) accesses.
 *       kConsumerWaiting  set to 1 by the consumer before it sleeps; cleared by either side.
 *       kProducerWaiting  set to 1 by the producer before it sleeps; cleared by either side.
 *       geometry words    written once by `SpscRing.init`, before the SAB is shared; read-only after.
 *     Each side keeps its own index in a local field (it is the only writer) and a cached copy of
 *     the other side's index, which it reloads only when the cache says "full" / "empty".
 *
 *  3. The publish step. Producer: write the record bytes (plain stores), THEN
 *     `Atomics.store(header, kWriteIndex, newWrite)`. Consumer: `Atomics.load(header, kWriteIndex)`,
 *     THEN read the record bytes. Atomics operations are sequentially consistent and synchronize:
 *     every plain write before the store happens-before every plain read after a load that sees
 *     the stored value, so the consumer never reads a half-written record. Symmetrically the
 *     consumer's `Atomics.store(header, kReadIndex, newRead)` is the release step: it reads the
 *     record bytes first, so the producer (which loads kReadIndex before reusing a slot) never
 *     overwrites a record that is still being read. A batch (pushWith / commit / drain / release)
 *     publishes many records with ONE store; nothing of the batch is visible before it.
 *
 *  4. Sleeping without lost wake-ups (a Dekker handshake; it relies on Atomics being SeqCst).
 *     The sleeper stores 1 in its "waiting" flag, then re-loads the other side's index (and
 *     kClosed), and only then sleeps on its flag with the expected value 1. The other side, after
 *     every publishing store (and after setting kClosed), loads the flag and, only if it is 1,
 *     stores 0 and calls Atomics.notify. In the SeqCst order either the waker's load sees the 1
 *     (it clears the flag and notifies: if the sleeper has not slept yet its wait sees 0 ≠ 1 and
 *     returns at once) or the sleeper's re-load sees the new index (it does not sleep). So the hot
 *     path pays one Atomics.load of a rarely-written cache line per publish, never a notify,
 *     unless the other side has declared it is waiting. Spurious wake-ups are possible and every
 *     waiter loops.
 *
 *  5. Indices are 32-bit counters that wrap: they count records ever pushed / popped modulo 2^32,
 *     stored as int32 (`(i + n) | 0`). The number of filled slots is `(write - read) >>> 0`
 *     (unsigned subtraction modulo 2^32), always in [0, capacity]. The slot of counter i is
 *     `i & (capacity - 1)`; this is why the capacity must be a power of two (2 … 2^30): 2^32 is then
 *     a multiple of the capacity and the slot sequence does not jump at the 2^32 wrap.
 *
 *  6. Waiting strategies. The consumer waits with `Atomics.waitAsync` (`waitForData`, does not block
 *     the event loop) or `Atomics.wait` (`waitForDataSync`, blocks the thread: workers only). The
 *     producer waits for space with `Atomics.wait` (`waitForSpaceSync`, blocks: for a producer in a
 *     worker) or `Atomics.waitAsync` (`waitForSpace`). Node allows Atomics.wait on the main thread,
 *     but it freezes the event loop there: do not. Before sleeping, the sync waits spin briefly
 *     (re-loading the other index, bounded) because a sleep/notify round trip costs tens of µs.
 *
 * Files: this one holds the layout, the checks and the storage (`SpscRing`); the views are
 * `RingProducer` (ringProducer.ts) and `RingConsumer` (ringConsumer.ts). The names this file
 * exports besides those in index.ts are for the two views only.
 *
 * Geometry and layout (all offsets relative to the ring's byteOffset in the SAB, which must be a
 * multiple of 8): a 512-byte header, then `capacity * recordSize` bytes of records. The header
 * keeps the producer's index, the consumer's index and the waiting flags on separate 128-byte
 * blocks so that the two threads do not false-share a cache line (or an adjacent-line prefetch
 * pair). recordSize must be a multiple of 4 (so `int32[offset >> 2]` addresses any record word)
 * and at most 65536; capacity * recordSize at most 2^30 bytes.
 *
 * Record bytes are handed to callbacks as (DataView over the record area, byte offset of the
 * record in that area). The views `bytes`, `int32` and `dataView` of each side span the same area,
 * so `int32[(offset >> 2) + k]` is word k of the record (platform byte order, little-endian on
 * every platform Node supports). A callback must not keep the view or offset after it returns:
 * the slot is reused as soon as the batch is published / released.
 */
import { raError } from '../errors.js';

// ---- shared-memory layout: Int32 slot numbers in the header ------------------------------------
// Block 0 (bytes 0..127): geometry, written once by init; kClosed and the claims, written once.
/** 'RING' — marks an initialised header. */
const kMagic = 0;
/** Layout version of the header. */
const kVersion = 1;
/** Number of record slots (power of two). */
const kCapacity = 2;
/** Bytes per record (multiple of 4). */
const kRecordSize = 3;
/** 1 once the producer has called close(): no more records will be published. */
export const kClosed = 4;
/** 1 once a RingProducer has been constructed over this ring. */
export const kProducerClaim = 5;
/** 1 once a RingConsumer has been constructed over this ring. */
export const kConsumerClaim = 6;
// Block 1 (bytes 128..255): the producer's line.
/** Count of records ever published (mod 2^32). Written by the producer only. */
export const kWriteIndex = 32;
// Block 2 (bytes 256..383): the consumer's line.
/** Count of records ever released (mod 2^32). Written by the consumer only. */
export const kReadIndex = 64;
// Block 3 (bytes 384..511): the sleep handshake flags; rarely written.
/** 1 while the consumer is (about to be) asleep waiting for kWriteIndex to move. */
export const kConsumerWaiting = 96;
/** 1 while the producer is (about to be) asleep waiting for kReadIndex to move. */
export const kProducerWaiting = 97;

const HEADER_BYTES = 512;
const HEADER_INTS = HEADER_BYTES / 4;
const MAGIC = 0x52494e47; // 'RING'
const VERSION = 1;
const MIN_CAPACITY = 2;
const MAX_CAPACITY = 2 ** 30;
const MAX_RECORD_SIZE = 65536;
const MAX_DATA_BYTES = 2 ** 30;
const OFFSET_ALIGN = 8;
const RECORD_ALIGN = 4;
/** Re-loads of the other side's index before a sync wait goes to sleep. */
export const SPIN_BEFORE_SLEEP = 256;
/** The longest delay a Node timer accepts; a timer keeps the event loop alive during waitAsync. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Writes one record: `view` spans the record area, the record starts at byte `offset`. */
export type RecordWriter = (view: DataView, offset: number, index: number) => void;
/** Reads one record: `view` spans the record area, the record starts at byte `offset`. */
export type RecordReader = (view: DataView, offset: number, index: number) => void;
/** What a consumer's wait saw: a record to read, the end of the stream, or the timeout. */
export type RingWaitResult = 'data' | 'closed' | 'timeout';

/** Geometry of a laid-out ring, as read from its header. */
export interface RingGeometry {
  capacity: number;
  recordSize: number;
  byteOffset: number;
  /** Bytes the ring occupies from byteOffset: header plus records. */
  byteLength: number;
}

type WaitAsyncResult =
  | { async: false; value: 'not-equal' | 'timed-out' }
  | { async: true; value: Promise<'ok' | 'timed-out'> };
export type WaitAsyncFn = (typedArray: Int32Array, index: number, value: number, timeout?: number) => WaitAsyncResult;
// The project's lib is ES2023; Atomics.waitAsync is ES2024 (present in Node ≥ 16).
const waitAsync: WaitAsyncFn | undefined = (Atomics as unknown as { waitAsync?: WaitAsyncFn }).waitAsync;

export function noop(): void {}

export function ringError(message: string, details: Record<string, unknown>): Error {
  return raError('RA_ERR_RING', message, { details });
}

function checkGeometry(capacity: number, recordSize: number): void {
  if (!Number.isInteger(capacity) || capacity < MIN_CAPACITY || capacity > MAX_CAPACITY || (capacity & (capacity - 1)) !== 0) {
    throw ringError(`ring capacity must be a power of two from ${MIN_CAPACITY} to 2^30, got ${String(capacity)}`, {
      capacity,
      expected: `power of two in [${MIN_CAPACITY}, ${MAX_CAPACITY}]`,
    });
  }
  if (!Number.isInteger(recordSize) || recordSize < RECORD_ALIGN || recordSize > MAX_RECORD_SIZE || recordSize % RECORD_ALIGN !== 0) {
    throw ringError(`ring recordSize must be a multiple of ${RECORD_ALIGN} from ${RECORD_ALIGN} to ${MAX_RECORD_SIZE}, got ${String(recordSize)}`, {
      recordSize,
      expected: `multiple of ${RECORD_ALIGN} in [${RECORD_ALIGN}, ${MAX_RECORD_SIZE}]`,
    });
  }
  if (capacity * recordSize > MAX_DATA_BYTES) {
    throw ringError(`ring capacity × recordSize must be at most 2^30 bytes, got ${capacity} × ${recordSize} = ${capacity * recordSize}`, {
      capacity,
      recordSize,
      expected: `capacity * recordSize <= ${MAX_DATA_BYTES}`,
    });
  }
}

function checkPlacement(sab: unknown, byteOffset: number, byteLength: number): asserts sab is SharedArrayBuffer {
  if (!(sab instanceof SharedArrayBuffer)) {
    throw ringError(`a ring must live in a SharedArrayBuffer, got ${describeValue(sab)}`, { got: describeValue(sab), expected: 'SharedArrayBuffer' });
  }
  if (!Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset % OFFSET_ALIGN !== 0) {
    throw ringError(`ring byteOffset must be a non-negative multiple of ${OFFSET_ALIGN}, got ${String(byteOffset)}`, {
      byteOffset,
      expected: `non-negative multiple of ${OFFSET_ALIGN}`,
    });
  }
  if (byteOffset + byteLength > sab.byteLength) {
    throw ringError(
      `ring needs ${byteLength} bytes at byteOffset ${byteOffset} but the SharedArrayBuffer has only ${sab.byteLength} bytes (${Math.max(0, sab.byteLength - byteOffset)} from the offset)`,
      { byteOffset, byteLength, sabByteLength: sab.byteLength, expected: `sab.byteLength >= ${byteOffset + byteLength}` },
    );
  }
}

export function checkCount(what: string, count: number, max: number): void {
  if (!Number.isInteger(count) || count < 0 || count > max) {
    throw ringError(`${what} must be an integer from 0 to ${max}, got ${String(count)}`, { [what]: count, expected: `integer in [0, ${max}]` });
  }
}

export function checkMax(max: number): void {
  if (!(max >= 0) || (max !== Infinity && !Number.isInteger(max))) {
    throw ringError(`max must be a non-negative integer (or Infinity), got ${String(max)}`, { max, expected: 'integer >= 0 or Infinity' });
  }
}

export function checkTimeout(timeoutMs: number): void {
  if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0) {
    throw ringError(`timeoutMs must be a number >= 0 (Infinity for none), got ${String(timeoutMs)}`, { timeoutMs, expected: '>= 0' });
  }
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  return typeof v;
}

/** Reads and checks the header of a ring laid out by `SpscRing.init`. */
function readHeader(sab: unknown, byteOffset: number): { header: Int32Array; geometry: RingGeometry } {
  checkPlacement(sab, byteOffset, HEADER_BYTES);
  const header = new Int32Array(sab, byteOffset, HEADER_INTS);
  const magic = Atomics.load(header, kMagic);
  if (magic !== MAGIC) {
    throw ringError(`no ring at byteOffset ${byteOffset}: header magic is 0x${(magic >>> 0).toString(16)}, expected 0x${MAGIC.toString(16)} (call SpscRing.init first)`, {
      byteOffset,
      magic,
      expected: MAGIC,
    });
  }
  const version = Atomics.load(header, kVersion);
  if (version !== VERSION) {
    throw ringError(`ring at byteOffset ${byteOffset} has header version ${version}, expected ${VERSION}`, { byteOffset, version, expected: VERSION });
  }
  const capacity = Atomics.load(header, kCapacity);
  const recordSize = Atomics.load(header, kRecordSize);
  checkGeometry(capacity, recordSize);
  const byteLength = HEADER_BYTES + capacity * recordSize;
  checkPlacement(sab, byteOffset, byteLength);
  return { header, geometry: { capacity, recordSize, byteOffset, byteLength } };
}

function claim(header: Int32Array, slot: number, role: string, byteOffset: number): void {
  if (Atomics.compareExchange(header, slot, 0, 1) !== 0) {
    throw ringError(`the ring at byteOffset ${byteOffset} already has a ${role}: single producer, single consumer, roles cannot change`, {
      byteOffset,
      role,
      expected: `one ${role} per ring`,
    });
  }
}

/**
 * Storage for rings: sizes, allocates and lays out a ring. Not for the hot path (allocates).
 * The views over a laid-out ring are `RingProducer` and `RingConsumer`.
 */
export abstract class SpscRing {
  /** Bytes of the header before the records. */
  static readonly headerBytes = HEADER_BYTES;
  /** Required alignment of a ring's byteOffset inside its SharedArrayBuffer. */
  static readonly byteOffsetAlignment = OFFSET_ALIGN;

  /** Bytes a ring of this geometry occupies (header + records). Throws RA_ERR_RING on bad geometry. */
  static bytesFor(capacity: number, recordSize: number): number {
    checkGeometry(capacity, recordSize);
    return HEADER_BYTES + capacity * recordSize;
  }

  /** Allocates a SharedArrayBuffer holding exactly one ring at byteOffset 0. Not for the hot path. */
  static create(capacity: number, recordSize: number, options: { initialIndex?: number } = {}): SharedArrayBuffer {
    const sab = new SharedArrayBuffer(SpscRing.bytesFor(capacity, recordSize));
    SpscRing.init(sab, 0, capacity, recordSize, options);
    return sab;
  }

  /**
   * Lays out an empty ring inside `sab` at `byteOffset` (a multiple of 8), touching only bytes
   * [byteOffset, byteOffset + bytesFor(capacity, recordSize)). Call it before any view exists and
   * before the SAB is shared with the other thread. `initialIndex` (default 0) starts both 32-bit
   * counters at that value — for tests of the 2^32 wrap-around. Not for the hot path.
   */
  static init(sab: SharedArrayBuffer, byteOffset: number, capacity: number, recordSize: number, options: { initialIndex?: number } = {}): RingGeometry {
    const byteLength = SpscRing.bytesFor(capacity, recordSize);
    checkPlacement(sab, byteOffset, byteLength);
    const initialIndex = options.initialIndex ?? 0;
    if (!Number.isInteger(initialIndex) || initialIndex < -(2 ** 31) || initialIndex > 2 ** 32 - 1) {
      throw ringError(`ring initialIndex must be a 32-bit integer, got ${String(initialIndex)}`, { initialIndex, expected: 'integer in [-2^31, 2^32 - 1]' });
    }
    const header = new Int32Array(sab, byteOffset, HEADER_INTS);
    header.fill(0);
    Atomics.store(header, kVersion, VERSION);
    Atomics.store(header, kCapacity, capacity);
    Atomics.store(header, kRecordSize, recordSize);
    Atomics.store(header, kWriteIndex, initialIndex | 0);
    Atomics.store(header, kReadIndex, initialIndex | 0);
    Atomics.store(header, kMagic, MAGIC); // last: the header is valid from here on
    return { capacity, recordSize, byteOffset, byteLength };
  }

  /** Reads the geometry of a ring laid out at `byteOffset`. Throws RA_ERR_RING if there is none. */
  static geometry(sab: SharedArrayBuffer, byteOffset = 0): RingGeometry {
    return readHeader(sab, byteOffset).geometry;
  }
}

/** What both views share: geometry and views over the record area. */
export abstract class RingView {
  readonly capacity: number;
  readonly recordSize: number;
  readonly byteOffset: number;
  /** The record area as bytes; a record is `bytes[offset .. offset + recordSize)`. */
  readonly bytes: Uint8Array;
  /** The record area as int32 words (platform byte order); record word k is `int32[(offset >> 2) + k]`. */
  readonly int32: Int32Array;
  /** The record area as a DataView; the same object the callbacks receive. */
  readonly dataView: DataView;
  protected readonly header: Int32Array;
  protected readonly mask: number;

  protected constructor(sab: SharedArrayBuffer, byteOffset: number, claimSlot: number, role: string) {
    const { header, geometry } = readHeader(sab, byteOffset);
    claim(header, claimSlot, role, byteOffset);
    this.header = header;
    this.capacity = geometry.capacity;
    this.recordSize = geometry.recordSize;
    this.byteOffset = byteOffset;
    this.mask = geometry.capacity - 1;
    const dataStart = byteOffset + HEADER_BYTES;
    const dataBytes = geometry.capacity * geometry.recordSize;
    this.bytes = new Uint8Array(sab, dataStart, dataBytes);
    this.int32 = new Int32Array(sab, dataStart, dataBytes >> 2);
    this.dataView = new DataView(sab, dataStart, dataBytes);
  }

  /** True once the producer has called close(). */
  get closed(): boolean {
    return Atomics.load(this.header, kClosed) !== 0;
  }
}

export function requireWaitAsync(): WaitAsyncFn {
  if (waitAsync === undefined) {
    throw ringError('Atomics.waitAsync is not available in this runtime; use the Sync waits in a worker', { expected: 'Node >= 16' });
  }
  return waitAsync;
}
