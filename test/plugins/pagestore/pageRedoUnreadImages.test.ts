// Adversarial (session 12, adv12), on c2a0e5f's claim ("redo need not read a page whose first
// record in a batch carries a full page image: the image is the page as of that record and every
// later record follows it"). PageRedo (pageRedo.ts) is driven directly with logs written the way
// the store writes them — the first change to a page after each checkpoint carries the image of
// the page after that change, updates and CLRs mixed — against a model of every page's history:
// the data file holds each page as of some point of its history (the redo point, or later: a
// checkpoint's writes whose control-file switch a crash prevented), torn, or missing; applies are
// cut at random places; page budgets of one page up force early write-back and a cleared cache,
// so later batches start pages again, some from an image, most from the file; and the store is
// small (the flat slot table) or past its limit (the map, page ids at 2^22 and at 2^31). Whatever
// the mix, every page must end as of the last record for it, sealed, and no other page written.
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { PageType, initPageHeader, sealPage, setPageLsn } from '../../../plugins/pagestore/format.js';
import { PageRedo } from '../../../plugins/pagestore/pageRedo.js';
import { RecordType, encodeRecord, encodedSize, type RecordFields } from '../../../plugins/pagestore/walRecord.js';
import { prng } from '../../helpers/prng.js';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const PAGE_SIZE = 4096;
const LOG_BASE = 64;

interface Written {
  /** Each record's position in the log (= its LSN) and page id, in LSN order. */
  records: Array<{ at: number; pageId: number }>;
  wal: Uint8Array<SharedArrayBuffer>;
  /** Each page's versions, oldest first: the page after each record of it (the first: before any). */
  history: Map<number, Buffer[]>;
  /** Index into history of the version as of the redo point (the checkpoint redo starts from). */
  atRedo: Map<number, number>;
}

/**
 * A log as the store writes it: checkpoints at random between records (each makes every page
 * clean again), the first change to a clean page logged with the page's full image after the
 * change. Records before the last checkpoint before `redoFrom` are not part of the redo range.
 */
function writeLog(pageIds: number[], count: number, next: () => number): Written {
  const history = new Map<number, Buffer[]>();
  for (const id of pageIds) {
    const page = Buffer.alloc(PAGE_SIZE);
    for (let i = 32; i < PAGE_SIZE; i++) page[i] = next() & 0xff;
    initPageHeader(page, id, PageType.Data, 0);
    sealPage(page);
    history.set(id, [page]);
  }
  const parts: Buffer[] = [];
  let length = LOG_BASE;
  const records: Written['records'] = [];
  const atRedo = new Map<number, number>();
  const dirty = new Set<number>();
  // The redo point: a checkpoint a quarter of the way in; records before it are not replayed.
  const redoAt = Math.floor(count / 4);
  for (let k = 0; k < count; k++) {
    if (k === redoAt || next() % 40 === 0) {
      dirty.clear(); // a checkpoint: the next change to any page logs its image
      if (k === redoAt) for (const id of pageIds) atRedo.set(id, history.get(id)!.length - 1);
    }
    const id = pageIds[next() % pageIds.length]!;
    const versions = history.get(id)!;
    const page = Buffer.from(versions.at(-1)!);
    const len = 1 + (next() % 48);
    const offset = 32 + (next() % (PAGE_SIZE - 32 - len));
    const before = Buffer.from(page.subarray(offset, offset + len));
    const bytes = Buffer.alloc(len);
    for (let i = 0; i < len; i++) bytes[i] = next() & 0xff;
    page.set(bytes, offset);
    const clr = next() % 4 === 0; // an undo's compensation: after image only
    const f: RecordFields = { type: clr ? RecordType.Clr : RecordType.Update, txId: 1 + (next() % 5), prevLsn: 0, pageId: id, offset, after: bytes, ...(clr ? { undoNextLsn: 0 } : { before }) };
    if (!dirty.has(id)) {
      f.fullPage = Buffer.from(page); // the page after the change, its header as it was (stale LSN and checksum)
      dirty.add(id);
    }
    const rec = Buffer.alloc(encodedSize(f));
    encodeRecord(rec, length, f);
    setPageLsn(page, length);
    sealPage(page);
    versions.push(page);
    if (k >= redoAt) records.push({ at: length, pageId: id });
    parts.push(rec);
    length += rec.length;
  }
  const wal = new Uint8Array(new SharedArrayBuffer(length));
  let at = LOG_BASE;
  for (const p of parts) {
    wal.set(p, at);
    at += p.length;
  }
  return { records, wal, history, atRedo };
}

function readPage(fd: number, id: number): Buffer {
  const page = Buffer.alloc(PAGE_SIZE);
  readSync(fd, page, 0, PAGE_SIZE, id * PAGE_SIZE);
  return page;
}

/**
 * One trial: lays each page out in a fresh data file as of a point of its history at or after
 * the redo point (or torn, when its first record in the redo range has an image — the only
 * torn page redo can rebuild), redoes the range with PageRedo cut into random applies under
 * `budgetPages`, and checks every page.
 */
function trial(seed: number, pageCount: number, pageIds: number[], budgetPages: number): void {
  const next = prng(seed);
  const log = writeLog(pageIds, 300 + (next() % 300), next);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ra-unread-'));
  dirs.push(dir);
  const file = path.join(dir, 'pages.db');
  const fd = openSync(file, 'w+');
  try {
    const firstHasImage = new Map<number, boolean>();
    for (const r of log.records) if (!firstHasImage.has(r.pageId)) firstHasImage.set(r.pageId, (log.wal[r.at + 5]! & 1) !== 0);
    const untouched = new Map<number, Buffer>();
    for (const id of pageIds) {
      const versions = log.history.get(id)!;
      const from = log.atRedo.get(id)!;
      let page: Buffer;
      const roll = next() % 8;
      if (roll === 0 && firstHasImage.get(id)) {
        page = Buffer.from(versions[from + (next() % (versions.length - from))]!);
        page.fill(0x5a, PAGE_SIZE / 2); // torn: half of a newer write
      } else if (roll === 1) {
        page = versions.at(-1)!; // written as of the end of the log (a checkpoint not recorded)
      } else {
        page = versions[from + (next() % (versions.length - from))]!; // the redo point, or later
      }
      writeSync(fd, page, 0, PAGE_SIZE, id * PAGE_SIZE);
      if (!firstHasImage.has(id)) untouched.set(id, page);
    }
    const redo = new PageRedo(log.wal, file, PAGE_SIZE, pageCount, budgetPages * PAGE_SIZE);
    for (const r of log.records) {
      redo.add(r.at, r.pageId);
      if (next() % 25 === 0) redo.apply();
    }
    const result = redo.finish(true);
    assert.deepEqual(result.corrupt, [], `seed ${seed}: no page reported corrupt`);
    assert.deepEqual(result.outOfRange, [], `seed ${seed}: no record refused`);
    for (const id of pageIds) {
      const want = untouched.get(id) ?? log.history.get(id)!.at(-1)!;
      const got = readPage(fd, id);
      assert.ok(got.equals(want), `seed ${seed}, budget ${budgetPages} page(s): page ${id} is not the page as of its last record`);
    }
  } finally {
    closeSync(fd);
  }
}

describe('redo from full page images without reading the page (PageRedo)', () => {
  it('ends every page as of its last record, whatever the file held, with the flat slot table', () => {
    const ids = Array.from({ length: 24 }, (_, i) => 1 + i);
    for (let seed = 1; seed <= 60; seed++) trial(seed, 64, ids, 1 + (seed % 7) * (seed % 3));
  });

  it('does the same with the map of a store past the flat table (page ids at 2^22 and past 2^31)', () => {
    const nearFlat = Array.from({ length: 12 }, (_, i) => (1 << 22) - 6 + i);
    for (let seed = 101; seed <= 120; seed++) trial(seed, (1 << 22) + 64, nearFlat, 1 + (seed % 5));
    const high = [...Array.from({ length: 6 }, (_, i) => 2 ** 31 - 3 + i), 2 ** 31 + 1000, 2 ** 32 - 3];
    for (let seed = 201; seed <= 212; seed++) trial(seed, 2 ** 32 - 2, high, 1 + (seed % 4));
  });
});
