/**
 * Replication frames: the unit of everything the two ends send each other after the handshake
 * (plugins/replication/DESIGN.md, "The stream"). Generic: a frame carries an epoch, an LSN range
 * and opaque payload bytes; what the bytes of a `wal` frame are is the engine's business.
 *
 * A frame, little-endian:
 *
 *    0  u32 magic        0x50524152 (the bytes `RARP`)
 *    4  u8  type         FrameType
 *    5  u8  flags        0 (reserved for later use; a receiver ignores unknown bits)
 *    6  u16 reserved     0
 *    8  u64 epoch        the sender's epoch
 *   16  u64 start LSN
 *   24  u64 end LSN
 *   32  u32 payload length
 *   36  u32 reserved     0
 *   40  payload
 *    …  u64 XXH3-64 of the header and the payload
 *
 * The checksum is the project's XXH3-64 (seed 0, the native addon's, as every checksum on disk).
 * A receiver refuses a frame with a wrong magic, an unknown type or a payload longer than its
 * bound as soon as it has the header (never allocating the claimed length), and one with a bad
 * checksum once it has it all: nothing of a refused frame reaches the caller.
 */
import { xxh3 } from 'recovery-agent/native';
import { readU32, readU64 } from '../bytes.js';
import { raError } from '../errors.js';
import { ByteQueue } from './byteQueue.js';
import './errors.js';

export const FRAME_MAGIC = 0x50524152; // "RARP"
export const FRAME_HEADER_SIZE = 40;
export const FRAME_TRAILER_SIZE = 8;
/**
 * Default bound on a frame's payload, and the replica's bound on what the primary sends. The
 * sender's `wal` frames are catch-up reads of about 4 MiB (at least one whole record), or on the
 * live tail one group commit's records within a segment: not much smaller than this in the worst
 * case (a burst of large commits in one fdatasync), so the bound stays; a single record (a page
 * change with its full image, or a checkpoint's JSON) fits easily.
 */
export const DEFAULT_MAX_PAYLOAD = 64 * 1024 * 1024;
/**
 * The primary's bound on a frame's payload from a replica. A replica sends `hello` (an id of at
 * most 200 characters), `ack`, `error`, `page-request` and `page`; the largest is a page image,
 * 4 + the page size, and the page store allows pages of at most 64 KiB (MAX_PAGE_SIZE in
 * plugins/pagestore/format.ts; a replication test checks this bound stays above it). 1 MiB leaves
 * room for larger pages while a replica cannot make the owner buffer 64 MiB per connection.
 */
export const MAX_PAYLOAD_FROM_REPLICA = 1024 * 1024;

/** What a frame is (DESIGN.md "Types"); the numbers are the wire values and never change. */
export const FrameType = {
  /** replica → primary: the replica's position (epoch, LSN in `endLsn`, rolling checksum and id in the payload). */
  hello: 1,
  /** primary → replica: the bytes of consecutive records `[startLsn, endLsn)`, all in one segment. */
  wal: 2,
  /** replica → primary: durable LSN (`endLsn`) and applied LSN (`startLsn`). */
  ack: 3,
  /** primary → replica: flushed LSN (`endLsn`) and the primary's wall-clock ms (payload u64). */
  keepalive: 4,
  /** either way: why the sender is closing (payload: JSON `{code, message}`). */
  error: 5,
  /** either way: a page id (payload u32) and the LSN its image must have reached (`endLsn`). */
  pageRequest: 6,
  /** either way: a page id (payload u32) then its image; `endLsn` is the image's LSN. */
  page: 7,
  /** replica → primary, instead of `hello`: send me a base copy (payload: the replica's id). Base-copy frames: baseFrames.ts. */
  baseRequest: 8,
  /** primary → replica: a base copy starts; `startLsn` its redo LSN, `endLsn` its checkpoint's LSN, payload the engine's description (opaque). */
  baseBegin: 9,
  /** primary → replica: consecutive page images (payload u32 first page id, u32 count, then the images). */
  basePage: 10,
  /** primary → replica: raw log bytes `[startLsn, endLsn)` of one segment (its header at the segment's start LSN). */
  baseWal: 11,
  /** primary → replica: the base copy is complete; `endLsn` the LSN it is consistent from. */
  baseEnd: 12,
} as const;

export type FrameTypeName = keyof typeof FrameType;
export type FrameTypeCode = (typeof FrameType)[FrameTypeName];

const typeNames = new Map<number, FrameTypeName>(Object.entries(FrameType).map(([k, v]) => [v, k as FrameTypeName]));

/** The name of a frame type code, for messages. */
export function frameTypeName(type: number): string {
  return typeNames.get(type) ?? `unknown type ${type}`;
}

/** A decoded frame. LSNs and the epoch are numbers: they stay below 2^53. */
export interface Frame {
  readonly type: FrameTypeCode;
  readonly flags: number;
  readonly epoch: number;
  readonly startLsn: number;
  readonly endLsn: number;
  /** A view on the received bytes (not a copy). */
  readonly payload: Buffer;
}

export interface FrameFields {
  type: FrameTypeCode;
  epoch: number;
  startLsn?: number;
  endLsn?: number;
  flags?: number;
  payload?: Uint8Array;
}

function writeU64(buf: Buffer, off: number, v: number, what: string): void {
  if (!Number.isSafeInteger(v) || v < 0) throw raError('RA_ERR_REPL_FRAME', `${what} must be a non-negative safe integer (got ${v})`);
  buf.writeUInt32LE(v >>> 0, off);
  buf.writeUInt32LE(Math.floor(v / 0x1_0000_0000), off + 4);
}

/** Encodes one frame into a new buffer (header, payload, checksum). */
export function encodeFrame(f: FrameFields): Buffer {
  const payload = f.payload ?? new Uint8Array(0);
  const out = Buffer.allocUnsafe(FRAME_HEADER_SIZE + payload.byteLength + FRAME_TRAILER_SIZE);
  out.writeUInt32LE(FRAME_MAGIC, 0);
  out[4] = f.type;
  out[5] = f.flags ?? 0;
  out.writeUInt16LE(0, 6);
  writeU64(out, 8, f.epoch, 'epoch');
  writeU64(out, 16, f.startLsn ?? 0, 'start LSN');
  writeU64(out, 24, f.endLsn ?? 0, 'end LSN');
  out.writeUInt32LE(payload.byteLength, 32);
  out.writeUInt32LE(0, 36);
  out.set(payload, FRAME_HEADER_SIZE);
  const body = FRAME_HEADER_SIZE + payload.byteLength;
  out.writeBigUInt64LE(xxh3(out.subarray(0, body)), body);
  return out;
}

/** Validates a frame's header; returns the whole frame's size. Throws RA_ERR_REPL_FRAME. */
function checkHeader(h: Buffer, maxPayload: number): number {
  const magic = readU32(h, 0);
  if (magic !== FRAME_MAGIC) throw raError('RA_ERR_REPL_FRAME', `replication frame has magic 0x${magic.toString(16)}, not 0x${FRAME_MAGIC.toString(16)}: not a replication stream, or out of step`);
  if (!typeNames.has(h[4]!)) throw raError('RA_ERR_REPL_FRAME', `replication frame of unknown type ${h[4]}`);
  const len = readU32(h, 32);
  if (len > maxPayload) {
    throw raError('RA_ERR_REPL_FRAME', `replication ${frameTypeName(h[4]!)} frame claims a ${len}-byte payload, over the bound of ${maxPayload} bytes`, { details: { length: len, max: maxPayload } });
  }
  return FRAME_HEADER_SIZE + len + FRAME_TRAILER_SIZE;
}

/** Checks a whole frame's checksum and reads its fields (the payload a view on `b`). */
function decodeChecked(b: Buffer): Frame {
  const body = b.byteLength - FRAME_TRAILER_SIZE;
  if (b.readBigUInt64LE(body) !== xxh3(b.subarray(0, body))) {
    throw raError('RA_ERR_REPL_FRAME', `replication ${frameTypeName(b[4]!)} frame [${readU64(b, 16)}, ${readU64(b, 24)}) fails its checksum`);
  }
  return {
    type: b[4] as FrameTypeCode,
    flags: b[5]!,
    epoch: readU64(b, 8),
    startLsn: readU64(b, 16),
    endLsn: readU64(b, 24),
    payload: b.subarray(FRAME_HEADER_SIZE, body),
  };
}

/**
 * Decodes `b`, which must hold exactly one frame (what one sealed unit carries, seal.ts).
 * Throws RA_ERR_REPL_FRAME as the stream decoder does, and when `b` is not exactly one frame.
 */
export function decodeFrame(b: Buffer, maxPayload = DEFAULT_MAX_PAYLOAD): Frame {
  if (b.byteLength < FRAME_HEADER_SIZE + FRAME_TRAILER_SIZE) throw raError('RA_ERR_REPL_FRAME', `replication frame of ${b.byteLength} bytes, shorter than a header and a checksum`);
  const size = checkHeader(b, maxPayload);
  if (size !== b.byteLength) throw raError('RA_ERR_REPL_FRAME', `replication ${frameTypeName(b[4]!)} frame of ${b.byteLength} bytes, its header says ${size}`);
  return decodeChecked(b);
}

/**
 * A streaming frame decoder: feed it the chunks TCP delivers (split or merged anyhow) and it
 * returns the complete frames they finish. After it throws it is dead: a stream that had one bad
 * frame cannot be trusted to be in step, so the connection must close.
 */
export class FrameDecoder {
  private readonly queue = new ByteQueue();
  /** Total bytes of the frame whose header has been checked, or 0. */
  private need = 0;
  private failed: Error | null = null;

  constructor(private readonly maxPayload = DEFAULT_MAX_PAYLOAD) {}

  /** Bytes received but not yet part of a returned frame. */
  get pending(): number {
    return this.queue.length;
  }

  /** Adds received bytes; returns the frames completed by them, in order. Throws RA_ERR_REPL_FRAME. */
  push(chunk: Uint8Array): Frame[] {
    if (this.failed) throw this.failed;
    this.queue.push(chunk);
    const frames: Frame[] = [];
    try {
      for (;;) {
        if (this.need === 0) {
          if (this.queue.length < FRAME_HEADER_SIZE) break;
          this.need = checkHeader(this.queue.peek(FRAME_HEADER_SIZE), this.maxPayload);
        }
        if (this.queue.length < this.need) break;
        frames.push(decodeChecked(this.queue.take(this.need)));
        this.need = 0;
      }
    } catch (err) {
      this.failed = err as Error;
      this.queue.clear();
      throw err;
    }
    return frames;
  }
}

// The rolling checksum lives in rolling.ts (the WAL writer needs it without the stream).
export { roll } from './rolling.js';
