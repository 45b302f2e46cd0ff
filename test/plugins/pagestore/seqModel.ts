/**
 * The model of the ENOSPC reproduction (enospc.test.ts, writer test/fixtures/enospcWriter.ts):
 * writer loops that each own their pages and commit increasing sequence numbers.
 *
 * Loop i owns the pages p with (p - 1) % loops === i, and runs one transaction at a time, so the
 * versions of a page are that loop's sequence numbers in order. A page may then hold:
 *
 *   - the last acknowledged sequence number that wrote it (or the initial zeros if none did), or
 *   - a later one whose commit was requested but not acknowledged (in doubt: the writer was
 *     killed, or its commit failed after its record may have reached the disk);
 *
 * never an older one (an acknowledged commit lost), never one whose commit was never requested,
 * never a torn or mixed payload. An in-doubt transaction visible on one of its pages must be on
 * all of them (or be superseded there by a later one): all or nothing. And once any transaction
 * has failed (the store failed), no commit may be acknowledged any more.
 *
 * Rounds: the test fills the disk, recovers, grows it and fills it again with a new writer. A
 * round's stamps are makeStamp(round * loops + loop + 1, seq), and a page this round
 * acknowledged nothing on may also hold its `baseline`: what the last round's checked recovery
 * left there (the initial zeros at first).
 */
import type { PageObservation } from '../../crash/harness.js';
import { makeStamp, stampName, stampRun, stampSeq } from '../../crash/pattern.js';

/** Lines the writer sends its parent on fd 3. */
export type LoopMessage =
  | { t: 'ready'; pid: number; pageCount: number; payloadSize: number }
  | { t: 'req'; loop: number; seq: number; pages: number[] }
  | { t: 'ack'; loop: number; seq: number; flushedLsn: number; afterFailure: boolean }
  | { t: 'error'; loop: number; seq: number; phase: 'write' | 'commit'; code: string; error: string }
  | { t: 'done'; attemptsAfterFailure: number; blockedLoops: number }
  | { t: 'fatal'; error: string };

interface Req {
  readonly seq: number;
  readonly pages: readonly number[];
  acked: boolean;
}

export class SeqModel {
  /** Per loop, its requested transactions by sequence number. */
  private readonly reqs: Array<Map<number, Req>>;
  /** The first failed transaction, as the writer reported it. */
  firstError: Extract<LoopMessage, { t: 'error' }> | null = null;
  /** Acknowledgements that came after the first failure: each a violation. */
  readonly lateAcks: string[] = [];
  /** The highest flushed LSN an acknowledgement reported: the WAL below it must be on disk. */
  maxAckedFlushedLsn = 0;
  requested = 0;
  acked = 0;
  errors = 0;

  constructor(
    readonly pageCount: number,
    readonly loops: number,
    readonly round = 0,
    /** Index = page id: the stamp each page held when the round began. */
    readonly baseline: readonly number[] = new Array<number>(pageCount).fill(0),
  ) {
    this.reqs = Array.from({ length: loops }, () => new Map<number, Req>());
  }

  /** The stamp the writer of this round gives `loop`'s transaction `seq`. */
  stampOf(loop: number, seq: number): number {
    return makeStamp(this.round * this.loops + loop + 1, seq);
  }

  ownerOf(pageId: number): number {
    return (pageId - 1) % this.loops;
  }

  /** Feeds one message, in the order received; returns a protocol problem, or null. */
  onMessage(msg: LoopMessage): string | null {
    switch (msg.t) {
      case 'req': {
        const bad = msg.pages.find((p) => !Number.isInteger(p) || p < 1 || p >= this.pageCount || this.ownerOf(p) !== msg.loop);
        if (bad !== undefined || msg.pages.length === 0) return `req of loop ${msg.loop} seq ${msg.seq} names pages ${JSON.stringify(msg.pages)}`;
        if (this.reqs[msg.loop]!.has(msg.seq)) return `req of loop ${msg.loop} seq ${msg.seq} received twice`;
        this.reqs[msg.loop]!.set(msg.seq, { seq: msg.seq, pages: [...msg.pages], acked: false });
        this.requested++;
        return null;
      }
      case 'ack': {
        const r = this.reqs[msg.loop]?.get(msg.seq);
        if (!r || r.acked) return `ack of loop ${msg.loop} seq ${msg.seq}, which has no open req`;
        r.acked = true;
        this.acked++;
        this.maxAckedFlushedLsn = Math.max(this.maxAckedFlushedLsn, msg.flushedLsn);
        if (this.firstError || msg.afterFailure) {
          this.lateAcks.push(`loop ${msg.loop} seq ${msg.seq} acknowledged after the store failed (first failure: loop ${this.firstError?.loop} seq ${this.firstError?.seq}: ${this.firstError?.error})`);
        }
        return null;
      }
      case 'error':
        this.errors++;
        this.firstError ??= msg;
        return null;
      default:
        return null;
    }
  }

  /** The last acknowledged sequence number of the loop that wrote `pageId` (0: none). */
  lastAck(pageId: number): number {
    let last = 0;
    for (const r of this.reqs[this.ownerOf(pageId)]!.values()) if (r.acked && r.seq > last && r.pages.includes(pageId)) last = r.seq;
    return last;
  }

  /** Violations of the model by a recovered store's pages (index = page id, [0] the superblock). */
  check(pages: readonly PageObservation[]): string[] {
    const v: string[] = [];
    if (pages.length !== this.pageCount) v.push(`observed ${pages.length} pages; the store has ${this.pageCount}`);
    const seqOn = new Map<number, number>();
    for (const o of pages) {
      if (o.fault) v.push(`page ${o.pageId}: fails its ${o.fault} check (LSN ${o.lsn})`);
      if (o.pageId === 0) continue;
      if (o.stamp === null) {
        v.push(`page ${o.pageId}: payload is not one transaction's whole pattern (torn or half-applied): ${o.detail}`);
        continue;
      }
      const loop = this.ownerOf(o.pageId);
      const last = this.lastAck(o.pageId);
      const base = this.baseline[o.pageId] ?? 0;
      if (o.stamp === base) {
        if (last !== 0) v.push(`page ${o.pageId}: holds ${describeBase(base)}, what it held before this round, but loop ${loop} seq ${last} was acknowledged on it: an acknowledged commit is lost`);
        continue;
      }
      const run = o.stamp === 0 ? 0 : stampRun(o.stamp) - 1;
      const seq = stampSeq(o.stamp);
      if (o.stamp === 0 || Math.floor(run / this.loops) !== this.round || run % this.loops !== loop) {
        v.push(`page ${o.pageId}: holds ${describeBase(o.stamp)}, neither what it held before this round (${describeBase(base)}) nor a version loop ${loop} wrote in round ${this.round}`);
        continue;
      }
      seqOn.set(o.pageId, seq);
      const r = this.reqs[loop]!.get(seq);
      const lastText = last === 0 ? 'none' : `seq ${last}`;
      if (!r) v.push(`page ${o.pageId}: holds loop ${loop} seq ${seq}, whose commit was never requested (last acknowledged on the page: ${lastText})`);
      else if (!r.pages.includes(o.pageId)) v.push(`page ${o.pageId}: holds loop ${loop} seq ${seq}, which did not write this page`);
      else if (seq < last) v.push(`page ${o.pageId}: holds loop ${loop} seq ${seq}, older than seq ${last} acknowledged on it: an acknowledged commit is lost`);
    }
    // All or nothing: an in-doubt transaction visible anywhere is on all its pages (or superseded).
    const visible = new Map<string, { loop: number; seq: number; on: number[] }>();
    for (const [pageId, seq] of seqOn) {
      const loop = this.ownerOf(pageId);
      const key = `${loop}:${seq}`;
      visible.set(key, { loop, seq, on: [...(visible.get(key)?.on ?? []), pageId] });
    }
    for (const { loop, seq, on } of visible.values()) {
      const r = this.reqs[loop]!.get(seq);
      if (!r || r.acked) continue;
      for (const q of r.pages) {
        const there = seqOn.get(q) ?? 0; // 0: what it held before this round
        if (there < seq) v.push(`page ${q}: holds ${there === 0 ? 'what it held before this round' : `seq ${there}`}, but in-doubt loop ${loop} seq ${seq} (pages ${r.pages.join(', ')}) is visible on page(s) ${on.join(', ')}: not all-or-nothing`);
      }
    }
    return v;
  }
}

function describeBase(stamp: number): string {
  return stamp === 0 ? 'the initial zeros' : stampName(stamp);
}
