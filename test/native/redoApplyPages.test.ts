/**
 * The native redo kernels (native/src/redo.rs) against a small JS reference — the per-record
 * loop redoApplyPages replaced — on random logs written with the store's own record encoder:
 * updates, CLRs, full page images, records no newer than their page, torn pages rebuilt from an
 * image or reported without one, header damage, batches cut anywhere, views on
 * SharedArrayBuffers at odd offsets. Then malformed records (redoCheckRecords' codes and
 * redoApplyPages' status), applyRedo on a real data file (result shape, corrupt pages,
 * out-of-range records applying nothing), and bad arguments that throw instead of crashing.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { adviseHugePages, redoApplyHeld, redoApplyPages, redoCheckRecords } from 'recovery-agent/native';
import { PageType, initPageHeader, pageLsn, sealPage, setPageLsn, verifyPage, writeU32, writeU64 } from '../../plugins/pagestore/format.js';
import { applyRedo } from '../../plugins/pagestore/redoApply.js';
import { RECORD_HEADER_SIZE, RecordType, encodeRecord, encodedSize, kFlagFullPage, kRecFlags, kRecLsn, kRecOffset, kRecRangeLength, kRecType, type RecordFields } from '../../plugins/pagestore/walRecord.js';
import { prng } from '../helpers/prng.js';

const STATUS_UNCHANGED = 0;
const STATUS_CHANGED = 1;
const STATUS_MALFORMED = 6;
const CORRUPT_STATUS: Record<string, number> = { checksum: 2, magic: 3, version: 4, 'page-id': 5 };

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function randomFill(target: Uint8Array, next: () => number): void {
  for (let i = 0; i < target.length; i++) target[i] = next() & 0xff;
}

/** A sound page `id` with LSN `lsn` and random payload. */
function makePage(pageSize: number, id: number, lsn: number, next: () => number): Buffer {
  const page = Buffer.alloc(pageSize);
  randomFill(page.subarray(32), next);
  initPageHeader(page, id, PageType.Data, lsn);
  sealPage(page);
  return page;
}

/** A log being written: records at their own LSN (= position + base), as the store writes them. */
class Log {
  readonly parts: Buffer[] = [];
  length = 64; // a segment header's worth of nothing before the first record
  push(f: RecordFields): number {
    const at = this.length;
    const rec = Buffer.alloc(encodedSize(f));
    encodeRecord(rec, at, f);
    this.parts.push(rec);
    this.length += rec.length;
    return at;
  }
  /** The log on a SharedArrayBuffer, starting `pad` bytes into it (positions are unchanged). */
  shared(pad = 0): Uint8Array<SharedArrayBuffer> {
    const buf = new Uint8Array(new SharedArrayBuffer(pad + this.length), pad, this.length);
    let at = 64;
    for (const p of this.parts) {
      buf.set(p, at);
      at += p.length;
    }
    return buf;
  }
}

/**
 * A log of three records: page 7's first carries a full image (a), page 9's has none (b), then a
 * CLR on page 7 (c). 4 KiB pages.
 */
function imageThenTwo(seed: number) {
  const pageSize = 4096;
  const next = prng(seed);
  const log = new Log();
  const image = makePage(pageSize, 7, 0, next);
  const a = log.push({ type: RecordType.Update, txId: 1, prevLsn: 0, pageId: 7, offset: 100, before: new Uint8Array(3), after: Uint8Array.of(1, 2, 3), fullPage: image });
  const b = log.push({ type: RecordType.Update, txId: 1, prevLsn: a, pageId: 9, offset: 200, before: new Uint8Array(1), after: Uint8Array.of(4) });
  const c = log.push({ type: RecordType.Clr, txId: 1, prevLsn: b, pageId: 7, offset: 300, after: Uint8Array.of(5, 6), undoNextLsn: 0 });
  return { pageSize, next, log, image, a, b, c, wal: log.shared() };
}

/** The reference: redoApply.ts's per-record loop before the native kernel, for one page. */
function referencePage(wal: Uint8Array, recs: number[], pageId: number, page: Buffer): { status: number; applied: number; skipped: number } {
  const dv = new DataView(wal.buffer, wal.byteOffset, wal.byteLength);
  const firstHasImage = (wal[recs[0]! + kRecFlags]! & kFlagFullPage) !== 0;
  const fault = verifyPage(page, pageId);
  if (fault && !firstHasImage) return { status: CORRUPT_STATUS[fault]!, applied: 0, skipped: 0 };
  let lsn = fault ? -1 : pageLsn(page);
  let applied = 0;
  let skipped = 0;
  for (const at of recs) {
    const recLsn = Number(dv.getBigUint64(at + kRecLsn, true));
    if (recLsn <= lsn) {
      skipped++;
      continue;
    }
    const length = dv.getUint32(at + kRecRangeLength, true);
    const update = wal[at + kRecType] === RecordType.Update;
    if (wal[at + kRecFlags]! & kFlagFullPage) {
      const img = at + RECORD_HEADER_SIZE + (update ? 2 * length : length);
      page.set(wal.subarray(img, img + page.length));
    } else {
      const after = at + RECORD_HEADER_SIZE + (update ? length : 0);
      page.set(wal.subarray(after, after + length), dv.getUint32(at + kRecOffset, true));
    }
    setPageLsn(page, recLsn);
    lsn = recLsn;
    applied++;
  }
  if (applied > 0) sealPage(page);
  return { status: applied > 0 ? STATUS_CHANGED : STATUS_UNCHANGED, applied, skipped };
}

interface Scenario {
  pageSize: number;
  log: Log;
  /** Page id of each slot (ascending), its records (log positions, LSN order). */
  pages: number[];
  recs: number[][];
  /** The pages as they are on disk before redo, slot order. */
  disk: Buffer[];
  /** Every record in LSN order, with its page id. */
  positions: number[];
  pageIds: number[];
  /** Slots damaged on purpose: torn (checksum) or a header field (resealed). */
  torn: number[];
}

/** A random store and log: `n` pages, `records` changes, some pages torn, some ahead of the log. */
function scenario(seed: number, pageSize: number, n: number, records: number): Scenario {
  const next = prng(seed);
  const pages = Array.from({ length: n }, (_, i) => 1 + 3 * i + (next() % 3)); // gaps: runs and holes
  const disk = pages.map((id) => makePage(pageSize, id, 0, next));
  const recs: number[][] = pages.map(() => []);
  const log = new Log();
  const positions: number[] = [];
  const pageIds: number[] = [];
  for (let r = 0; r < records; r++) {
    const s = next() % n;
    const length = next() % 300;
    const offset = 32 + (next() % (pageSize - 32 - length + 1));
    const after = new Uint8Array(length);
    randomFill(after, next);
    const clr = next() % 5 === 0;
    const before = new Uint8Array(length);
    randomFill(before, next);
    // Most pages' first change carries a full image, as the first change after a checkpoint does.
    const fullPage = recs[s]!.length === 0 && next() % 4 !== 0 ? makePage(pageSize, pages[s]!, 0, next) : undefined;
    const at = log.push({
      type: clr ? RecordType.Clr : RecordType.Update,
      txId: 1 + (next() % 9),
      prevLsn: 0,
      pageId: pages[s]!,
      offset,
      after,
      ...(clr ? { undoNextLsn: 0 } : { before }),
      ...(fullPage ? { fullPage } : {}),
    });
    recs[s]!.push(at);
    positions.push(at);
    pageIds.push(pages[s]!);
  }
  // Some pages already hold the changes up to a middle record: redo skips those.
  recs.forEach((r, s) => {
    if (r.length > 2 && next() % 3 === 0) {
      setPageLsn(disk[s]!, r[r.length >> 1]!);
      sealPage(disk[s]!);
    }
  });
  // Damage: torn pages (a flipped payload bit), and header fields with a valid checksum.
  const torn: number[] = [];
  for (let k = 0; k < Math.max(1, n >> 3); k++) {
    const s = next() % n;
    if (torn.includes(s) || recs[s]!.length === 0) continue;
    torn.push(s);
    const page = disk[s]!;
    switch (k % 4) {
      case 3:
        page[8] = page[8]! ^ 0x01; // magic, resealed
        sealPage(page);
        break;
      case 2:
        writeU32(page, 16, pages[s]! + 1); // page id: a misdirected write
        sealPage(page);
        break;
      default:
        page[40 + (next() % (pageSize - 40))] ^= 0x10; // torn
    }
  }
  return { pageSize, log, pages, recs, disk, positions, pageIds, torn };
}

function grouping(sc: Scenario): { ordered: Uint32Array; starts: Uint32Array; pages: Uint32Array } {
  const starts = new Uint32Array(sc.pages.length + 1);
  sc.recs.forEach((r, s) => (starts[s + 1] = starts[s]! + r.length));
  return { ordered: Uint32Array.from(sc.recs.flat()), starts, pages: Uint32Array.from(sc.pages) };
}

describe('native redoApplyPages', () => {
  test('agrees with the JS reference on random logs, in any batching, on shared memory at odd offsets', () => {
    const seen = { skipped: 0, changed: 0, rebuilt: 0, reported: 0, headerDamage: 0 };
    for (const [seed, pageSize, n, records] of [
      [1, 4096, 40, 900],
      [2, 8192, 25, 500],
      [3, 4096, 64, 300],
      [4, 16384, 9, 200],
      [5, 4096, 120, 4000],
    ] as const) {
      const sc = scenario(seed, pageSize, n, records);
      const wal = sc.log.shared(5);
      const { ordered, starts, pages } = grouping(sc);

      const want = sc.disk.map((p) => Buffer.from(p));
      const ref = sc.recs.map((r, s) => (r.length ? referencePage(wal, r, sc.pages[s]!, want[s]!) : { status: STATUS_UNCHANGED, applied: 0, skipped: 0 }));

      const slabBacking = new SharedArrayBuffer(3 + n * pageSize);
      const slab = new Uint8Array(slabBacking, 3, n * pageSize);
      sc.disk.forEach((p, s) => slab.set(p, s * pageSize));
      const status: number[] = [];
      let applied = 0;
      // Batches of random sizes, empty ones included.
      const next = prng(seed * 77);
      for (let s = 0; s < n; ) {
        const e = Math.min(n, s + (next() % 9));
        const out = new Uint32Array(e - s + 2).fill(99);
        applied += redoApplyPages(wal, ordered, starts, pages, s, e, slab.subarray(s * pageSize), pageSize, out);
        status.push(...out.subarray(0, e - s));
        assert.deepEqual([...out.subarray(e - s)], [99, 99], 'status past the batch untouched');
        s = e;
      }
      const label = `seed ${seed}, pageSize ${pageSize}`;
      assert.deepEqual(status, ref.map((r) => r.status), label);
      assert.equal(applied, ref.reduce((a, r) => a + r.applied, 0), label);
      for (let s = 0; s < n; s++) assert.ok(Buffer.from(slab.subarray(s * pageSize, (s + 1) * pageSize)).equals(want[s]!), `${label}: page slot ${s}`);
      for (const s of sc.torn) {
        const hasImage = (wal[sc.recs[s]![0]! + kRecFlags]! & kFlagFullPage) !== 0;
        if (hasImage) assert.equal(status[s], STATUS_CHANGED, `${label}: torn slot ${s} rebuilt from its image`);
        else assert.ok(status[s]! >= 2 && status[s]! <= 5, `${label}: damaged slot ${s} without an image reported (${status[s]})`);
        seen[hasImage ? 'rebuilt' : 'reported']++;
        if (status[s]! >= 3 && status[s]! <= 5) seen.headerDamage++;
      }
      seen.skipped += ref.reduce((a, r) => a + r.skipped, 0);
      seen.changed += status.filter((x) => x === STATUS_CHANGED).length;
    }
    // The mix covered what it should.
    for (const [what, n] of Object.entries(seen)) assert.ok(n > 0, `no case of ${what}`);
  });

  test('redoApplyHeld: records over several calls, pages held unsealed between them, end as one redoApplyPages call does once sealed', () => {
    let trusted = 0;
    for (const [seed, pageSize, n, records] of [
      [21, 4096, 40, 900],
      [22, 8192, 30, 600],
    ] as const) {
      const sc = scenario(seed, pageSize, n, records);
      const wal = sc.log.shared(3);
      const label = `seed ${seed}`;
      // The oracle: one redoApplyPages call over all the records.
      const once = { ...grouping(sc) };
      const onceSlab = Buffer.concat(sc.disk);
      const onceStatus = new Uint32Array(n);
      const onceApplied = redoApplyPages(wal, once.ordered, once.starts, once.pages, 0, n, onceSlab, pageSize, onceStatus);

      // The same records in three calls (each page's records cut at random points), as PageRedo applies.
      const next = prng(seed * 31);
      const cuts = sc.recs.map((r) => [0, next() % (r.length + 1), 0, r.length].sort((a, b) => a - b).slice(1));
      const slab = Buffer.concat(sc.disk);
      const held = new Uint8Array(n);
      const changed = new Set<number>();
      const corrupt = new Set<number>();
      let applied = 0;
      for (let call = 0; call < 3; call++) {
        const parts = sc.recs.map((r, s) => (corrupt.has(s) ? [] : r.slice(call === 0 ? 0 : cuts[s]![call - 1]!, cuts[s]![call]!)));
        const starts = new Uint32Array(n + 1);
        parts.forEach((r, s) => (starts[s + 1] = starts[s]! + r.length));
        const status = new Uint32Array(n);
        // A page held from an earlier call is trusted: damage its checksum to prove it is not verified again
        // (undone below when the call left the page alone; a changed page is sealed at the end anyway).
        const damaged: number[] = [];
        for (let s = 0; s < n; s++) {
          if (held[s] && parts[s]!.length > 0) {
            slab[s * pageSize] ^= 0xff;
            damaged.push(s);
          }
        }
        trusted += damaged.length;
        applied += redoApplyHeld(wal, Uint32Array.from(parts.flat()), starts, once.pages, 0, n, slab, pageSize, status, held);
        for (const s of damaged) if (status[s] !== STATUS_CHANGED) slab[s * pageSize] ^= 0xff;
        status.forEach((st, s) => {
          if (st === STATUS_CHANGED) changed.add(s);
          if (st >= 2 && st <= 5) corrupt.add(s);
        });
      }
      assert.equal(applied, onceApplied, label);
      for (let s = 0; s < n; s++) {
        const page = slab.subarray(s * pageSize, (s + 1) * pageSize);
        if (onceStatus[s]! >= 2) {
          assert.ok(corrupt.has(s), `${label}: slot ${s} reported corrupt`);
          assert.equal(held[s], 0, `${label}: a corrupt page is not held`);
          continue;
        }
        assert.equal(changed.has(s), onceStatus[s] === STATUS_CHANGED, `${label}: slot ${s} changed`);
        if (sc.recs[s]!.length > 0) assert.equal(held[s], 1, `${label}: slot ${s} held`);
        if (changed.has(s)) sealPage(page);
        assert.ok(page.equals(onceSlab.subarray(s * pageSize, (s + 1) * pageSize)), `${label}: page slot ${s}`);
      }
    }
    assert.ok(trusted > 0, 'some held page was applied to again');
  });

  test('adviseHugePages changes no byte and advises whole 2 MiB pages at most', () => {
    const buf = Buffer.alloc(9 << 20, 0x5a);
    const advised = adviseHugePages(buf);
    assert.ok(advised >= 0 && advised <= buf.length && advised % (2 << 20) === 0, `advised ${advised}`);
    assert.ok(buf.every((b) => b === 0x5a));
    assert.equal(adviseHugePages(new Uint8Array(0)), 0);
    assert.equal(adviseHugePages(new Uint8Array(100)), 0);
  });

  test('a torn page is rebuilt from the image in its first record; one without is reported and left alone', () => {
    const { pageSize, next, image, a, b, c, wal } = imageThenTwo(11);
    const torn = makePage(pageSize, 7, 1e9, next); // claims to be newer than every record
    torn[2000] ^= 1;
    const tornNoImage = makePage(pageSize, 9, 0, next);
    tornNoImage[4095] ^= 1;
    const slab = Buffer.concat([torn, tornNoImage]);
    const status = new Uint32Array(2);
    assert.equal(redoApplyPages(wal, Uint32Array.of(a, c, b), Uint32Array.of(0, 2, 3), Uint32Array.of(7, 9), 0, 2, slab, pageSize, status), 2);
    assert.deepEqual([...status], [STATUS_CHANGED, CORRUPT_STATUS.checksum]);
    const want = Buffer.from(image);
    want.set([5, 6], 300);
    setPageLsn(want, c);
    sealPage(want);
    assert.ok(slab.subarray(0, pageSize).equals(want));
    assert.equal(verifyPage(slab.subarray(0, pageSize), 7), null);
    assert.ok(slab.subarray(pageSize).equals(tornNoImage), 'left alone');
  });

  test('redoApplyHeld, unread bit (2): the image applies whatever the slot holds, then every later record; no image is malformed', () => {
    const { pageSize, next, log, image, a, b, c, wal } = imageThenTwo(12);
    // Slot 0: a sound page claiming to be newer than every record (read, redo would skip them
    // all); unread, it is never looked at. Slot 1: unread, but its first record has no image.
    const slab = Buffer.concat([makePage(pageSize, 7, 1e9, next), makePage(pageSize, 9, 0, next)]);
    const slot1Before = Buffer.from(slab.subarray(pageSize));
    const held = Uint8Array.of(2, 2);
    const status = new Uint32Array(2);
    const applied = redoApplyHeld(wal, Uint32Array.of(a, c, b), Uint32Array.of(0, 2, 3), Uint32Array.of(7, 9), 0, 2, slab, pageSize, status, held);
    assert.equal(applied, 2, 'both records of page 7, none of page 9');
    assert.deepEqual([...status], [STATUS_CHANGED, STATUS_MALFORMED]);
    assert.equal(held[0], 1, 'verified from now on, the unread bit cleared');
    const want = Buffer.from(image); // the image is the page as of its record
    want.set([5, 6], 300);
    setPageLsn(want, c);
    const got = Buffer.from(slab.subarray(0, pageSize));
    sealPage(got); // held pages are left unsealed
    sealPage(want);
    assert.ok(got.equals(want));
    assert.ok(slab.subarray(pageSize).equals(slot1Before), 'a malformed page is left alone');
    // Once verified, the bit no longer matters: a later call applies only newer records.
    const d = log.push({ type: RecordType.Update, txId: 2, prevLsn: 0, pageId: 7, offset: 400, before: new Uint8Array(1), after: Uint8Array.of(9) });
    const wal2 = log.shared();
    const st2 = new Uint32Array(1);
    assert.equal(redoApplyHeld(wal2, Uint32Array.of(d), Uint32Array.of(0, 1), Uint32Array.of(7), 0, 1, slab.subarray(0, pageSize), pageSize, st2, held.subarray(0, 1)), 1);
    assert.equal(slab[400], 9);
  });

  test('malformed records: redoCheckRecords names them; redoApplyPages marks their page and counts none of it', () => {
    const pageSize = 4096;
    const next = prng(12);
    const log = new Log();
    const clr = (pageId: number, offset: number, after: Uint8Array) => log.push({ type: RecordType.Clr, txId: 1, prevLsn: 0, pageId, offset, after, undoNextLsn: 0 });
    const good = clr(1, 64, Uint8Array.of(1, 2));
    const inHeader = clr(1, 31, Uint8Array.of(1));
    const pastEnd = clr(1, pageSize - 2, Uint8Array.of(1, 2, 3));
    const commit = log.push({ type: RecordType.Commit, txId: 1, prevLsn: 0 });
    const superblock = clr(0, 64, Uint8Array.of(1));
    const beyond = clr(40, 64, Uint8Array.of(1));
    const longRange = clr(1, 64, new Uint8Array(8));
    const noImage = clr(1, 64, Uint8Array.of(1));
    const wal = log.shared();
    writeU32(wal, longRange + kRecRangeLength, 500); // promises more body than the record holds
    wal[noImage + kRecFlags] = kFlagFullPage; // an image flag without the image
    const positions = Uint32Array.of(good, inHeader, pastEnd, commit, superblock, beyond, longRange, noImage, wal.length - 8, wal.length + 64);
    const pageIds = Uint32Array.of(1, 1, 1, 1, 0, 40, 1, 1, 1, 1);
    const out = new Uint32Array(40);
    const bad = redoCheckRecords(wal, positions, pageIds, positions.length, pageSize, 40, out);
    assert.deepEqual([...out.subarray(0, 2 * bad)], [1, 5, 2, 5, 3, 3, 4, 4, 5, 4, 6, 2, 7, 2, 8, 1, 9, 1]);
    assert.equal(redoCheckRecords(wal, positions, pageIds, 1, pageSize, 40, out), 0);
    assert.equal(redoCheckRecords(wal, positions, Uint32Array.of(2), 1, pageSize, 40, out), 1, 'grouped under another page');
    assert.equal(redoCheckRecords(wal, positions, pageIds, positions.length, pageSize, 40, new Uint32Array(3)), 9, 'counted beyond what fits');

    for (const badAt of [inHeader, pastEnd, commit, longRange, noImage, 0xffff_fff0]) {
      const slab = Buffer.concat([makePage(pageSize, 1, 0, next), makePage(pageSize, 2, 0, next)]);
      const other = clr(2, 64, Uint8Array.of(9));
      const wal2 = log.shared();
      writeU32(wal2, longRange + kRecRangeLength, 500);
      wal2[noImage + kRecFlags] = kFlagFullPage;
      const status = new Uint32Array(2);
      const applied = redoApplyPages(wal2, Uint32Array.of(good, badAt, other), Uint32Array.of(0, 2, 3), Uint32Array.of(1, 2), 0, 2, slab, pageSize, status);
      assert.deepEqual([applied, ...status], [1, STATUS_MALFORMED, STATUS_CHANGED], `bad record at ${badAt}`);
    }
  });

  test('bad arguments throw TypeError or RangeError with a code, never crash', () => {
    const pageSize = 4096;
    const log = new Log();
    const a = log.push({ type: RecordType.Clr, txId: 1, prevLsn: 0, pageId: 1, offset: 64, after: Uint8Array.of(1), undoNextLsn: 0 });
    const wal = log.shared();
    const ordered = Uint32Array.of(a);
    const starts = Uint32Array.of(0, 1);
    const pages = Uint32Array.of(1);
    const slab = makePage(pageSize, 1, 0, prng(13));
    const status = new Uint32Array(1);
    const apply = redoApplyPages as unknown as (...args: unknown[]) => number;
    const check = redoCheckRecords as unknown as (...args: unknown[]) => number;
    const ok = [wal, ordered, starts, pages, 0, 1, slab, pageSize, status];
    const withArg = (i: number, v: unknown) => ok.map((x, k) => (k === i ? v : x));
    const cases: Array<[(...args: unknown[]) => number, unknown[], typeof TypeError | typeof RangeError, string, RegExp]> = [
      [apply, ok.slice(0, 8), TypeError, 'ERR_INVALID_ARG_TYPE', /expected 9 arguments/],
      [apply, withArg(0, Buffer.alloc(4).buffer), TypeError, 'ERR_INVALID_ARG_TYPE', /'wal' must be a Uint8Array/],
      [apply, withArg(1, Int32Array.of(a)), TypeError, 'ERR_INVALID_ARG_TYPE', /'ordered' must be a Uint32Array, got a Int32Array/],
      [apply, withArg(3, [1]), TypeError, 'ERR_INVALID_ARG_TYPE', /'pages' must be a Uint32Array/],
      [apply, withArg(4, '0'), TypeError, 'ERR_INVALID_ARG_TYPE', /'firstSlot' must be a number/],
      [apply, withArg(6, new Uint16Array(2048)), TypeError, 'ERR_INVALID_ARG_TYPE', /'slab' must be a Uint8Array/],
      [apply, withArg(8, new BigUint64Array(1)), TypeError, 'ERR_INVALID_ARG_TYPE', /'status' must be a Uint32Array/],
      [apply, withArg(4, -1), RangeError, 'ERR_OUT_OF_RANGE', /'firstSlot' must be an integer/],
      [apply, withArg(5, 1.5), RangeError, 'ERR_OUT_OF_RANGE', /'endSlot'/],
      [apply, withArg(7, 0), RangeError, 'ERR_OUT_OF_RANGE', /'pageSize' must be a positive integer/],
      [apply, withArg(7, 16), RangeError, 'ERR_OUT_OF_RANGE', /at least 32/],
      [apply, withArg(4, 2), RangeError, 'ERR_INVALID_ARG_VALUE', /after endSlot/],
      [apply, withArg(5, 2), RangeError, 'ERR_INVALID_ARG_VALUE', /passes the 1 page ids/],
      [apply, withArg(2, Uint32Array.of(0)), RangeError, 'ERR_INVALID_ARG_VALUE', /'starts' has 1 elements/],
      [apply, withArg(2, Uint32Array.of(0, 2)), RangeError, 'ERR_INVALID_ARG_VALUE', /must ascend/],
      [apply, withArg(6, new Uint8Array(pageSize - 1)), RangeError, 'ERR_INVALID_ARG_VALUE', /'slab' holds 4095 bytes/],
      [apply, withArg(8, new Uint32Array(0)), RangeError, 'ERR_INVALID_ARG_VALUE', /'status' has 0 elements/],
      [apply, withArg(6, wal.subarray(0, pageSize)), RangeError, 'ERR_INVALID_ARG_VALUE', /'slab' must not share memory with 'wal'/],
      [apply, withArg(8, new Uint32Array(ordered.buffer)), RangeError, 'ERR_INVALID_ARG_VALUE', /'status' must not share memory with 'ordered'/],
      [check, [wal, ordered, pages, 1, pageSize, 2], TypeError, 'ERR_INVALID_ARG_TYPE', /expected 7 arguments/],
      [check, [wal, ordered, pages, 2, pageSize, 2, status], RangeError, 'ERR_INVALID_ARG_VALUE', /count \(2\) passes/],
      [check, [wal, ordered, pages, 1, pageSize, 2 ** 32 + 1, status], RangeError, 'ERR_OUT_OF_RANGE', /'pageCount'/],
      [check, [wal, ordered, pages, 1, 31, 2, status], RangeError, 'ERR_OUT_OF_RANGE', /at least 32/],
      [check, [wal, ordered, pages, 1, pageSize, 2, new Uint32Array(wal.buffer, 0, 4)], RangeError, 'ERR_INVALID_ARG_VALUE', /'out' must not share memory with 'wal'/],
    ];
    for (const [fn, args, Kind, code, message] of cases) {
      assert.throws(() => fn(...args), (err: Error & { code?: string }) => err instanceof Kind && err.code === code && message.test(err.message), `${fn.name} ${message}`);
    }
    // Nothing was touched by the failed calls; the good call still works.
    assert.equal(apply(...ok), 1);
    assert.equal(status[0], STATUS_CHANGED);
  });
});

describe('applyRedo on a data file', () => {
  /** Writes the scenario's pages into a data file of `pageCount` pages (others zero). */
  function dataFile(sc: Scenario, pageCount: number): string {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ra-redo-'));
    dirs.push(dir);
    const file = path.join(dir, 'pages.db');
    const bytes = Buffer.alloc(pageCount * sc.pageSize);
    sc.pages.forEach((id, s) => bytes.set(sc.disk[s]!, id * sc.pageSize));
    writeFileSync(file, bytes);
    return file;
  }

  function input(sc: Scenario, file: string, pageCount: number, wal = sc.log.shared()) {
    const shared = (xs: number[]) => {
      const a = new Uint32Array(new SharedArrayBuffer(Math.max(4, xs.length * 4)));
      a.set(xs);
      return a;
    };
    return { wal, positions: shared(sc.positions), pageIds: shared(sc.pageIds), count: sc.positions.length, dataFile: file, pageSize: sc.pageSize, pageCount };
  }

  test('applies what the reference applies, writes only changed pages, reports the corrupt ones', () => {
    for (const [seed, pageSize, n, records] of [
      [21, 4096, 70, 2000],
      [22, 8192, 1, 30],
      [23, 4096, 2, 10],
    ] as const) {
      const sc = scenario(seed, pageSize, n, records);
      const pageCount = sc.pages.at(-1)! + 5;
      const file = dataFile(sc, pageCount);
      const before = readFileSync(file);
      const wal = sc.log.shared();
      const want = Buffer.from(before);
      let applied = 0;
      let skipped = 0;
      let written = 0;
      const corrupt: Array<{ pageId: number; reason: string }> = [];
      sc.recs.forEach((r, s) => {
        if (r.length === 0) return;
        const id = sc.pages[s]!;
        const page = want.subarray(id * pageSize, (id + 1) * pageSize);
        const fault = verifyPage(page, id);
        const ref = referencePage(wal, r, id, page);
        if (ref.status >= 2) corrupt.push({ pageId: id, reason: fault! });
        applied += ref.applied;
        skipped += ref.skipped;
        if (ref.status === STATUS_CHANGED) written++;
      });
      const result = applyRedo(input(sc, file, pageCount, wal));
      assert.deepEqual(result, { applied, skipped, pagesWritten: written, corrupt, outOfRange: [] }, `seed ${seed}`);
      assert.ok(readFileSync(file).equals(want), `seed ${seed}: data file`);
      // Redo again: everything is skipped now (corrupt pages stay corrupt), nothing written.
      const again = applyRedo(input(sc, file, pageCount, wal));
      assert.deepEqual({ ...again, corrupt: again.corrupt.length }, { applied: 0, skipped: applied + skipped, pagesWritten: 0, corrupt: corrupt.length, outOfRange: [] });
    }
  });

  test('a record outside the store applies nothing and is reported with its LSN', () => {
    const sc = scenario(31, 4096, 30, 400);
    const pageCount = sc.pages.at(-1)! + 1;
    // A record for the page past the last one, in the middle of the log.
    const at = sc.log.push({ type: RecordType.Clr, txId: 1, prevLsn: 0, pageId: pageCount, offset: 64, after: Uint8Array.of(1), undoNextLsn: 0 });
    sc.positions.splice(200, 0, at);
    sc.pageIds.splice(200, 0, pageCount);
    const file = dataFile(sc, pageCount);
    const before = readFileSync(file);
    const wal = sc.log.shared();
    // And one whose range runs past the page.
    const r = sc.positions[50]!;
    writeU32(wal, r + kRecOffset, sc.pageSize + 1);
    const result = applyRedo(input(sc, file, pageCount, wal));
    assert.deepEqual(result.outOfRange, [
      { lsn: r, pageId: sc.pageIds[50] },
      { lsn: at, pageId: pageCount },
    ]);
    assert.deepEqual([result.applied, result.skipped, result.pagesWritten, result.corrupt], [0, 0, 0, []]);
    assert.ok(readFileSync(file).equals(before), 'nothing written');
  });

  test('no records: nothing to do', () => {
    const sc = scenario(41, 4096, 3, 0);
    const file = dataFile(sc, 20);
    assert.deepEqual(applyRedo(input(sc, file, 20)), { applied: 0, skipped: 0, pagesWritten: 0, corrupt: [], outOfRange: [] });
  });

  test('writeU64 keeps LSNs exact past 2^32 (page LSN compare)', () => {
    // A page whose LSN is above 2^32 skips records below it: the kernel compares u64s.
    const pageSize = 4096;
    const next = prng(51);
    const log = new Log();
    const a = log.push({ type: RecordType.Clr, txId: 1, prevLsn: 0, pageId: 3, offset: 64, after: Uint8Array.of(1), undoNextLsn: 0 });
    const wal = log.shared();
    writeU64(wal, a + kRecLsn, 2 ** 32 + 10);
    const page = makePage(pageSize, 3, 2 ** 32 + 9, next);
    const status = new Uint32Array(1);
    assert.equal(redoApplyPages(wal, Uint32Array.of(a), Uint32Array.of(0, 1), Uint32Array.of(3), 0, 1, page, pageSize, status), 1);
    assert.equal(pageLsn(page), 2 ** 32 + 10);
    setPageLsn(page, 2 ** 32 + 10);
    sealPage(page);
    assert.equal(redoApplyPages(wal, Uint32Array.of(a), Uint32Array.of(0, 1), Uint32Array.of(3), 0, 1, page, pageSize, status), 0);
    assert.equal(status[0], STATUS_UNCHANGED);
  });
});
