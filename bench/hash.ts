/**
 * XXH3-64 throughput over 256 MiB of random bytes in a SharedArrayBuffer, cut into 8 KiB pages:
 * - native xxh3Pages: all pages in one call (the way the page store checksums);
 * - native xxh3 per page: one call per page;
 * - xxhash-addon per page: the baseline, one `XXHash3.hash` per page;
 * - native xxh3 / `xxhsum -H3` over the whole 256 MiB as one input, for a reference point
 *   (xxhsum reads a file in /tmp that is read once first so it sits in the page cache; its time
 *   is the whole process, best of 3).
 * All hashes are checked against each other before anything is reported.
 *
 * Goal: xxh3Pages ≥ 1.2× xxhash-addon per page. Run: npm run bench:hash
 */
import { spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import xxhashAddon from 'xxhash-addon';
import { xxh3, xxh3Pages } from 'recovery-agent/native';
import { bestOf, report, type BenchRow } from './lib/report.js';

const TOTAL_BYTES = 256 << 20;
const PAGE_SIZE = 8192;
const PAGES = TOTAL_BYTES / PAGE_SIZE;
const REPEAT = 7;
const XXHSUM_REPEAT = 3;

function gbps(bytes: number, seconds: number): number {
  return bytes / 1e9 / seconds;
}

function row(name: string, seconds: number, bytes = TOTAL_BYTES, calls = PAGES): BenchRow {
  return {
    name,
    value: gbps(bytes, seconds),
    unit: 'GB/s',
    extra: { ms: Number((seconds * 1e3).toFixed(2)), GiBps: Number((bytes / 2 ** 30 / seconds).toFixed(2)), nsPerCall: Number(((seconds * 1e9) / calls).toFixed(1)) },
  };
}

async function main(): Promise<void> {
  const sab = new SharedArrayBuffer(TOTAL_BYTES);
  const bytes = new Uint8Array(sab);
  // randomFillSync takes at most 2^31-1 bytes at once, and smaller chunks keep memory flat.
  for (let off = 0; off < TOTAL_BYTES; off += 1 << 20) randomFillSync(bytes.subarray(off, off + (1 << 20)));

  // The per-page views are made before timing, so the per-page rows measure the hash calls only.
  const pageViews = Array.from({ length: PAGES }, (_, i) => bytes.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
  const pageBuffers = Array.from({ length: PAGES }, (_, i) => Buffer.from(sab, i * PAGE_SIZE, PAGE_SIZE));

  const pagesOut = new BigUint64Array(PAGES);
  const perPageOut = new BigUint64Array(PAGES);
  const addonOut = new BigUint64Array(PAGES);

  const runPages = () => xxh3Pages(bytes, PAGE_SIZE, pagesOut);
  const runPerPage = () => {
    for (let i = 0; i < PAGES; i++) perPageOut[i] = xxh3(pageViews[i]);
  };
  const runAddon = () => {
    for (let i = 0; i < PAGES; i++) addonOut[i] = xxhashAddon.XXHash3.hash(pageBuffers[i]).readBigUInt64BE(0);
  };
  let whole = 0n;
  const runWhole = () => {
    whole = xxh3(bytes);
  };

  // Warm up once (and fill every output for the cross-check below), then time best-of-REPEAT,
  // interleaving nothing else between repeats of one row.
  for (const fn of [runPages, runPerPage, runAddon, runWhole]) fn();
  for (let i = 0; i < PAGES; i++) {
    if (pagesOut[i] !== perPageOut[i] || pagesOut[i] !== addonOut[i]) {
      throw new Error(`page ${i}: xxh3Pages ${pagesOut[i]}, xxh3 ${perPageOut[i]}, xxhash-addon ${addonOut[i]} disagree`);
    }
  }

  const rows: BenchRow[] = [
    row('native xxh3Pages (one call)', await bestOf(REPEAT, runPages), TOTAL_BYTES, 1),
    row('native xxh3 per page', await bestOf(REPEAT, runPerPage)),
    row('xxhash-addon per page', await bestOf(REPEAT, runAddon)),
    row('native xxh3 whole 256 MiB (one call)', await bestOf(REPEAT, runWhole), TOTAL_BYTES, 1),
  ];

  const file = path.join(os.tmpdir(), `ra-bench-hash-${process.pid}.bin`);
  let xxhsumNote = 'measured';
  try {
    writeFileSync(file, bytes);
    readFileSync(file); // into the page cache
    const probe = spawnSync('xxhsum', ['-H3', file], { encoding: 'utf8' });
    if (probe.error || probe.status !== 0) {
      xxhsumNote = `skipped: xxhsum -H3 failed (${probe.error?.message ?? probe.stderr.trim()})`;
    } else {
      const hex = /\b([0-9a-f]{16})\b/.exec(probe.stdout)?.[1];
      if (hex === undefined || BigInt(`0x${hex}`) !== whole) {
        throw new Error(`xxhsum -H3 printed ${JSON.stringify(probe.stdout.trim())}, native xxh3 gives ${whole.toString(16)}`);
      }
      const seconds = await bestOf(XXHSUM_REPEAT, () => {
        const r = spawnSync('xxhsum', ['-H3', file], { stdio: 'ignore' });
        if (r.status !== 0) throw new Error(`xxhsum exited with ${r.status}`);
      });
      rows.push(row('xxhsum -H3 whole file (process)', seconds, TOTAL_BYTES, 1));
    }
  } finally {
    rmSync(file, { force: true });
  }

  const base = rows.find((r) => r.name === 'xxhash-addon per page')!;
  const pages = rows.find((r) => r.name === 'native xxh3Pages (one call)')!;
  report({
    bench: 'hash',
    baseline: 'xxhash-addon per page',
    rows,
    goal: { description: 'xxh3Pages ≥ 1.2× xxhash-addon per page', met: pages.value >= 1.2 * base.value },
    params: { totalBytes: TOTAL_BYTES, pageSize: PAGE_SIZE, pages: PAGES, repeat: REPEAT, xxhsumRepeat: XXHSUM_REPEAT, xxhsum: xxhsumNote, buffer: 'SharedArrayBuffer, random bytes' },
  });
}

await main();
