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
import './errors.js';

export const FRAME_MAGIC = 0x50524152; // "RARP"
export const FRAME_HEADER_SIZE = 40;
export const FRAME_TRAILER_SIZE = 8;
/**
 * Default bound on a frame's payload. The sender cuts `wal` frames at record boundaries well below
 * it; a single record (a page change with its full image, or a checkpoint's JSON) fits easily.
 */
export const DEFAULT_MAX_PAYLOAD = 64 * 1024 * 1024;

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

/**
 * A streaming frame decoder: feed it the chunks TCP delivers (split or merged anyhow) and it
 * returns the complete frames they finish. After it throws it is dead: a stream that had one bad
 * frame cannot be trusted to be in step, so the connection must close.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Total bytes of the frame whose header has been checked, or 0. */
  private need = 0;
  private failed: Error | null = null;

  constructor(private readonly maxPayload = DEFAULT_MAX_PAYLOAD) {}

  /** Bytes received but not yet part of a returned frame. */
  get pending(): number {
    return this.buffered;
  }

  /** Adds received bytes; returns the frames completed by them, in order. Throws RA_ERR_REPL_FRAME. */
  push(chunk: Uint8Array): Frame[] {
    if (this.failed) throw this.failed;
    if (chunk.byteLength > 0) {
      this.chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      this.buffered += chunk.byteLength;
    }
    const frames: Frame[] = [];
    try {
      for (;;) {
        if (this.need === 0) {
          if (this.buffered < FRAME_HEADER_SIZE) break;
          this.need = this.checkHeader(this.peek(FRAME_HEADER_SIZE));
        }
        if (this.buffered < this.need) break;
        frames.push(this.decode(this.take(this.need)));
        this.need = 0;
      }
    } catch (err) {
      this.failed = err as Error;
      this.chunks = [];
      this.buffered = 0;
      throw err;
    }
    return frames;
  }

  /** Validates a header; returns the whole frame's size. */
  private checkHeader(h: Buffer): number {
    const magic = readU32(h, 0);
    if (magic !== FRAME_MAGIC) throw raError('RA_ERR_REPL_FRAME', `replication frame has magic 0x${magic.toString(16)}, not 0x${FRAME_MAGIC.toString(16)}: not a replication stream, or out of step`);
    if (!typeNames.has(h[4]!)) throw raError('RA_ERR_REPL_FRAME', `replication frame of unknown type ${h[4]}`);
    const len = readU32(h, 32);
    if (len > this.maxPayload) {
      throw raError('RA_ERR_REPL_FRAME', `replication ${frameTypeName(h[4]!)} frame claims a ${len}-byte payload, over the bound of ${this.maxPayload} bytes`, { details: { length: len, max: this.maxPayload } });
    }
    return FRAME_HEADER_SIZE + len + FRAME_TRAILER_SIZE;
  }

  private decode(b: Buffer): Frame {
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

  /** The first `n` buffered bytes, left in place. */
  private peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.byteLength >= n) return first.subarray(0, n);
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    for (const c of this.chunks) {
      const k = Math.min(c.byteLength, n - at);
      c.copy(out, at, 0, k);
      at += k;
      if (at === n) break;
    }
    return out;
  }

  /** Removes and returns the first `n` buffered bytes (one copy at most). */
  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.byteLength >= n) {
      out = first.subarray(0, n);
    } else {
      out = Buffer.allocUnsafe(n);
      let at = 0;
      while (at < n) {
        const c = this.chunks[0]!;
        const k = Math.min(c.byteLength, n - at);
        c.copy(out, at, 0, k);
        at += k;
        if (k < c.byteLength) {
          this.chunks[0] = c.subarray(k);
          break;
        }
        this.chunks.shift();
      }
      this.buffered -= n;
      return out;
    }
    if (first.byteLength === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return out;
  }
}

/**
 * The rolling checksum of a log (DESIGN.md "Position"): `R ← XXH3-64(R ‖ checksum)`, both as
 * little-endian u64, folded over every record's own trailing checksum in LSN order; R is 0 before
 * the first record. Two logs with the same R at the same LSN hold the same records (up to a
 * 64-bit collision); a replica whose R differs from its primary's at its LSN diverged.
 */
export function roll(r: bigint, recordChecksum: bigint): bigint {
  rollScratch.writeBigUInt64LE(r, 0);
  rollScratch.writeBigUInt64LE(recordChecksum, 8);
  return xxh3(rollScratch);
}

/** `roll`'s 16 bytes, reused: the WAL writer folds every record it appends. */
const rollScratch = Buffer.alloc(16);
