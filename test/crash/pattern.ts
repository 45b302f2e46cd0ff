/**
 * What the crash writer (test/fixtures/crashWriter.ts) and the harness (harness.ts) share: a
 * seeded PRNG, the page pattern a transaction writes, its decoder, stamps, and the messages the
 * writer sends its parent.
 *
 * Page pattern: the payload is cut into 16-byte cells; cell i of the pattern of stamp S on page
 * P is
 *
 *   0 u64 S   8 u32 P   12 u32 hash(S, P, i)
 *
 * so cell 0 starts with the stamp, every cell says which transaction and page it belongs to,
 * and a page holding pieces of several transactions (a torn or half-applied write) decodes into
 * the exact byte ranges of each: the checker can say what is mixed where.
 */

/** A transaction's stamp: run id * 2^20 + a counter, unique over the life of a store. */
export const STAMP_RUN_FACTOR = 2 ** 20;
export const CELL_SIZE = 16;

export function makeStamp(runId: number, counter: number): number {
  if (counter <= 0 || counter >= STAMP_RUN_FACTOR) throw new Error(`stamp counter ${counter} out of range`);
  return runId * STAMP_RUN_FACTOR + counter;
}

export function stampRun(stamp: number): number {
  return Math.floor(stamp / STAMP_RUN_FACTOR);
}

export function stampSeq(stamp: number): number {
  return stamp % STAMP_RUN_FACTOR;
}

/** `stamp 3145740 (run 3 tx #12)`, or `the initial zeros` for 0. */
export function stampName(stamp: number): string {
  return stamp === 0 ? 'the initial zeros' : `stamp ${stamp} (run ${stampRun(stamp)} tx #${stampSeq(stamp)})`;
}

/** sfc32 seeded through splitmix32: small, fast, and the same sequence on every platform. */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    let s = seed >>> 0 || 0x9e3779b9;
    const split = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = split();
    this.b = split();
    this.c = split();
    this.d = split();
    for (let i = 0; i < 12; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** In [0, 1). */
  float(): number {
    return this.u32() / 0x1_0000_0000;
  }

  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.float() * items.length)]!;
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.float() * (i + 1));
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }

  /** A seed for a child PRNG or process. */
  seed(): number {
    return this.u32() || 1;
  }
}

function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function cellHash(lo: number, hi: number, pageId: number, cell: number): number {
  let h = fmix32(lo ^ 0x9e3779b9);
  h = fmix32(h ^ Math.imul(hi + 0x632be5ab, 0x27d4eb2f));
  h = fmix32(h ^ Math.imul(pageId + 0x165667b1, 0x85ebca6b));
  return fmix32(h ^ Math.imul(cell + 1, 0xc2b2ae35));
}

function checkPayloadSize(payloadSize: number): void {
  if (payloadSize % CELL_SIZE !== 0) throw new Error(`payload size ${payloadSize} is not a multiple of ${CELL_SIZE}`);
}

/** The full payload transaction `stamp` writes to `pageId`. */
export function pagePattern(payloadSize: number, stamp: number, pageId: number): Buffer {
  checkPayloadSize(payloadSize);
  const out = Buffer.alloc(payloadSize);
  const lo = stamp >>> 0;
  const hi = Math.floor(stamp / 0x1_0000_0000);
  for (let cell = 0, at = 0; at < payloadSize; cell++, at += CELL_SIZE) {
    out.writeUInt32LE(lo, at);
    out.writeUInt32LE(hi, at + 4);
    out.writeUInt32LE(pageId, at + 8);
    out.writeUInt32LE(cellHash(lo, hi, pageId, cell), at + 12);
  }
  return out;
}

/** A run of cells of one kind in a decoded payload; byte range [from, to). */
export interface Segment {
  from: number;
  to: number;
  /** zero: all zero bytes; stamp: the pattern of `stamp` for this page; foreign: the pattern of
   * `stamp` for another page (`pageId`); garbage: anything else. */
  kind: 'zero' | 'stamp' | 'foreign' | 'garbage';
  stamp?: number;
  pageId?: number;
}

export interface DecodedPayload {
  /** The one stamp the whole payload belongs to (0: all zeros), or null when it is mixed. */
  stamp: number | null;
  segments: Segment[];
}

/** Decodes a page payload into runs of zero cells, pattern cells and garbage. */
export function decodePayload(payload: Uint8Array, pageId: number): DecodedPayload {
  checkPayloadSize(payload.byteLength);
  const b = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  const segments: Segment[] = [];
  for (let cell = 0, at = 0; at < b.byteLength; cell++, at += CELL_SIZE) {
    const lo = b.readUInt32LE(at);
    const hi = b.readUInt32LE(at + 4);
    const pid = b.readUInt32LE(at + 8);
    const h = b.readUInt32LE(at + 12);
    let seg: Segment;
    if ((lo | hi | pid | h) === 0) seg = { from: at, to: at + CELL_SIZE, kind: 'zero' };
    else if (h === cellHash(lo, hi, pid, cell) && (lo | hi) !== 0) {
      const stamp = hi * 0x1_0000_0000 + lo;
      seg = pid === pageId ? { from: at, to: at + CELL_SIZE, kind: 'stamp', stamp } : { from: at, to: at + CELL_SIZE, kind: 'foreign', stamp, pageId: pid };
    } else seg = { from: at, to: at + CELL_SIZE, kind: 'garbage' };
    const last = segments[segments.length - 1];
    if (last && last.kind === seg.kind && last.stamp === seg.stamp && last.pageId === seg.pageId) last.to = seg.to;
    else segments.push(seg);
  }
  const only = segments.length === 1 ? segments[0]! : null;
  const stamp = only?.kind === 'zero' ? 0 : only?.kind === 'stamp' ? only.stamp! : null;
  return { stamp, segments };
}

/** `[0,2032) stamp 3145740 (run 3 tx #12), [2032,4064) garbage` */
export function describeSegments(segments: readonly Segment[], maxParts = 8): string {
  const parts = segments.slice(0, maxParts).map((s) => {
    const range = `[${s.from},${s.to})`;
    if (s.kind === 'zero') return `${range} zeros`;
    if (s.kind === 'garbage') return `${range} garbage`;
    if (s.kind === 'foreign') return `${range} ${stampName(s.stamp!)} written for page ${s.pageId}`;
    return `${range} ${stampName(s.stamp!)}`;
  });
  if (segments.length > maxParts) parts.push(`… ${segments.length - maxParts} more runs`);
  return parts.join(', ');
}

/** Lines the writer sends its parent on fd 3, one JSON object each. */
export type WriterMessage =
  | { t: 'ready'; pid: number; pageCount: number; payloadSize: number; recovery: { redone: number; rolledBack: number; undone: number; durationMs: number } }
  /** Sent (synchronously) right before commit() is called: from here the stamp may be durable. */
  | { t: 'commit-req'; stamp: number; pages: number[] }
  /** Sent right after commit() resolved: the stamp is durable. */
  | { t: 'ack'; stamp: number }
  /**
   * The transaction was rolled back (sent after abort() resolved, or for a deadlock victim). The
   * model needs no abort message for correctness: a stamp without a commit-req must never be
   * visible whether or not its abort was reported (a kill may come first). It names the stamp
   * in violations and is counted.
   */
  | { t: 'abort'; stamp: number; deadlock?: boolean }
  /** A read inside a transaction saw what it must not (mixed, uncommitted or stale data). */
  | { t: 'bad-read'; stamp: number; page: number; detail: string }
  /** A record of this writer's ended exactly at a WAL segment boundary (`lsn`). */
  | { t: 'boundary'; lsn: number }
  /**
   * A store operation failed and the writer goes on (--tolerate-store-errors, under injected
   * I/O faults). `wal`: the failure is the WAL writer's; from then on no commit may be
   * acknowledged.
   */
  | { t: 'store-error'; phase: 'open' | 'transaction' | 'checkpoint'; wal: boolean; error: string }
  /** The writer hit an unexpected error and exits. */
  | { t: 'fatal'; error: string };
