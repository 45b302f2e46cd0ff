// A damaged WAL segment header is corruption, never a torn tail: the segment's header is durable
// before any record is written to it, so dropping a segment whose header does not check would
// drop acknowledged commits with it (issue #11, defect 2).
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync, readdirSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { SEGMENT_HEADER_SIZE, segmentContentLength, withoutFullSize } from '../../../plugins/pagestore/walSegments.js';
import { cli } from '../../helpers/cli.js';
import { prng } from '../../helpers/prng.js';
import { copyStoreDir, dataBytes, killedWriter, tmpStoreDir } from '../../helpers/store.js';

function segments(dir: string): string[] {
  return readdirSync(path.join(dir, 'wal')).filter((n) => n.endsWith('.wal')).sort().map((n) => path.join(dir, 'wal', n));
}

function walBytes(dir: string): Map<string, Buffer> {
  return new Map(segments(dir).map((f) => [path.basename(f), readFileSync(f)]));
}

function flipByte(file: string, at: number, mask: number): void {
  const b = readFileSync(file);
  b[at]! ^= mask;
  writeFileSync(file, b);
}

/** Every committed stamp of the pagestoreKill fixture, read through a fresh open. */
async function committedStamps(dir: string, commits: number, pages: number): Promise<void> {
  const store = await PageStore.open(dir);
  try {
    const tx = store.begin();
    // The last commit to each page wins; check the last one that wrote at its offset.
    const last = new Map<number, number>();
    for (let i = 0; i < commits; i++) last.set(1 + (i % (pages - 1)), i);
    for (const [page, i] of last) {
      const p = await tx.read(page);
      const at = (i * 37) % 1000;
      const want = `c${i}p${page};`;
      assert.equal(p.subarray(at, at + want.length).toString(), want, `page ${page} holds commit ${i}`);
    }
    await tx.commit();
  } finally {
    await store.close();
  }
}

describe('a damaged WAL segment header (walScan.ts)', () => {
  const commits = 700;
  const pages = 48;
  // Small segments, so the killed writer leaves several and the newest holds acknowledged commits.
  const base = tmpStoreDir('ra-walhdr-');
  killedWriter({ dir: base, commits, open: 2, pages, segmentSize: 64 * 1024 });

  it('is refused in the newest segment for any byte of its header, and nothing is deleted', () => {
    const rng = prng(0x5eed_0011);
    const tried = new Set<number>();
    while (tried.size < 8) tried.add(rng() % SEGMENT_HEADER_SIZE);
    assert.ok(segments(base).length >= 3, `the fixture left ${segments(base).length} segments`);
    for (const at of tried) {
      const dir = tmpStoreDir('ra-walhdr-case-');
      copyStoreDir(base, dir);
      const newest = segments(dir).at(-1)!;
      assert.ok(readFileSync(newest).byteLength > SEGMENT_HEADER_SIZE + 1000, 'the newest segment holds records');
      flipByte(newest, at, 1 << rng() % 8);
      const before = walBytes(dir);
      const pagesBefore = dataBytes(dir);
      const r = cli(['recover', '--store', dir, '--json']);
      assert.equal(r.status, 4, `byte ${at}: exit ${r.status}\n${r.stdout}${r.stderr}`);
      assert.match(r.stdout + r.stderr, /RA_ERR_WAL_CORRUPT/);
      assert.match(r.stdout + r.stderr, /segment header|header/);
      assert.deepEqual(walBytes(dir), before, `byte ${at}: the WAL is untouched`);
      assert.ok(dataBytes(dir).equals(pagesBefore), `byte ${at}: no page was written`);
    }
  });

  it('is refused by PageStore.open too, and the store opens whole once the byte is put back', async () => {
    const dir = tmpStoreDir('ra-walhdr-open-');
    copyStoreDir(base, dir);
    const newest = segments(dir).at(-1)!;
    flipByte(newest, 20, 0x10);
    await assert.rejects(PageStore.open(dir), (err: Error & { code?: string }) => err.code === 'RA_ERR_WAL_CORRUPT');
    flipByte(newest, 20, 0x10);
    await committedStamps(dir, commits, pages);
  });

  it('a newest segment left empty or all zeros by a crash while it was created is the end of the log', async () => {
    for (const fill of ['empty', 'short', 'zeros'] as const) {
      const dir = tmpStoreDir('ra-walhdr-torn-');
      copyStoreDir(base, dir);
      const newest = segments(dir).at(-1)!;
      // A crash state of a writer whose segments grow as written (before FULL_SIZE, which creates
      // a segment aside and renames it in whole): its last segment ends with its last record.
      const whole = readFileSync(newest);
      writeFileSync(newest, withoutFullSize(whole.subarray(0, segmentContentLength(whole))));
      const next = path.join(path.dirname(newest), (parseInt(path.basename(newest).slice(0, 16), 16) + 64 * 1024).toString(16).padStart(16, '0') + '.wal');
      const fd = openSync(next, 'w');
      if (fill === 'short') writeSync(fd, Buffer.alloc(SEGMENT_HEADER_SIZE / 2, 0x52));
      if (fill === 'zeros') writeSync(fd, Buffer.alloc(4096));
      closeSync(fd);
      const r = cli(['recover', '--store', dir, '--json']);
      assert.equal(r.status, 0, `${fill}: ${r.stdout}${r.stderr}`);
      await committedStamps(dir, commits, pages);
    }
  });
});

describe('a WAL segment cut short in the middle of the log (walScan.ts)', () => {
  const base = tmpStoreDir('ra-walcut-');
  killedWriter({ dir: base, commits: 900, open: 1, pages: 64, segmentSize: 64 * 1024 });

  // Lengths not a multiple of 8 shift every later segment in the scan's buffer; a segment cut to
  // its header alone holds no record at all; the others cut a record or the records after one.
  for (const length of [1, 7, 40, 63, 64, 65, 1001, 30001]) {
    it(`cut to ${length} bytes: refused, nothing deleted or written`, () => {
      const dir = tmpStoreDir('ra-walcut-case-');
      copyStoreDir(base, dir);
      const segs = segments(dir);
      assert.ok(segs.length >= 4, `the fixture left ${segs.length} segments`);
      const victim = segs[Math.floor(segs.length / 2)]!;
      const b = readFileSync(victim);
      assert.ok(b.byteLength > length, `segment is ${b.byteLength} bytes`);
      writeFileSync(victim, b.subarray(0, length));
      const before = walBytes(dir);
      const pagesBefore = dataBytes(dir);
      const r = cli(['recover', '--store', dir, '--json']);
      assert.equal(r.status, 4, `cut to ${length}: exit ${r.status}\n${r.stdout}${r.stderr}`);
      assert.match(r.stdout + r.stderr, /RA_ERR_WAL_CORRUPT/);
      assert.deepEqual(walBytes(dir), before, 'the WAL is untouched');
      assert.ok(dataBytes(dir).equals(pagesBefore), 'no page was written');
    });
  }
});

describe('scan reports a store whose WAL recovery would refuse', () => {
  const base = tmpStoreDir('ra-walscan-');
  killedWriter({ dir: base, commits: 500, open: 1, pages: 48, segmentSize: 64 * 1024 });

  const damages: Array<[string, (dir: string) => void]> = [
    ['a flipped byte in the newest header', (dir) => flipByte(segments(dir).at(-1)!, 30, 0x04)],
    ['a middle segment missing', (dir) => unlinkSync(segments(dir)[1]!)],
    ['a middle segment cut short', (dir) => writeFileSync(segments(dir)[1]!, readFileSync(segments(dir)[1]!).subarray(0, 3001))],
    ['a damaged record with valid ones after it', (dir) => flipByte(segments(dir)[1]!, 2000, 0x01)],
    ['a damaged archive file', (dir) => writeFileSync(path.join(dir, 'archive'), '{"target": 7}')],
  ];
  for (const [what, damage] of damages) {
    it(`${what}: exit 4, named under storeProblems`, () => {
      const dir = tmpStoreDir('ra-walscan-case-');
      copyStoreDir(base, dir);
      assert.equal(cli(['scan', '--store', dir, '--json']).status, 0, 'clean before');
      damage(dir);
      const r = cli(['scan', '--store', dir, '--json']);
      assert.equal(r.status, 4, `${what}: ${r.stdout}${r.stderr}`);
      const out = JSON.parse(r.stdout) as { storeProblems: string[] };
      assert.ok(out.storeProblems.some((p) => /recovery would refuse/.test(p)), JSON.stringify(out.storeProblems));
    });
  }
});
