/**
 * The background scrub (scrubber.ts, tokenBucket.ts, scrubState.ts): the token bucket's
 * arithmetic; the configured rate holds within ±5 % over a real window, two scrubs at once;
 * the position is saved and a new scrubber resumes from it; suspects go first, and the
 * neighbours of a corrupt page become suspects.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import type { PageFinding } from '../../../plugins/corruption-detector/reasons.js';
import { Scrubber, type ScrubberOptions } from '../../../plugins/corruption-detector/scrubber.js';
import { scrubStateFile, type ScrubState } from '../../../plugins/corruption-detector/scrubState.js';
import { TokenBucket } from '../../../core/tokenBucket.js';
import { pageStoreEngine } from '../../../plugins/pagestore/index.js';
import { createStore } from '../../../plugins/pagestore/storeFiles.js';
import { captureLogger } from '../../helpers/logCapture.js';
import { flipBits } from './damage.js';
import { until } from '../../helpers/wait.js';

const tmpDir = () => mkdtempSync(path.join(os.tmpdir(), 'ra-scrub-'));

interface Seen {
  ranges: Array<{ first: number; count: number }>;
  corrupt: PageFinding[];
}

function scrubber(o: Partial<ScrubberOptions> & Pick<ScrubberOptions, 'dir' | 'dataDir' | 'rate'>, seen: Seen = { ranges: [], corrupt: [] }): { s: Scrubber; seen: Seen; lines: () => Array<Record<string, unknown>> } {
  const cap = captureLogger();
  const s = new Scrubber({
    storeId: 'st',
    engine: pageStoreEngine(),
    intervalMs: 0,
    log: cap.log,
    recheckDelayMs: 1,
    onScanned: (range, corrupt) => {
      seen.ranges.push(range);
      seen.corrupt.push(...corrupt);
    },
    ...o,
  });
  return { s, seen, lines: cap.lines };
}

describe('token bucket', () => {
  it('lets a full bucket through, then makes each reservation wait for its tokens', () => {
    let now = 0;
    const b = new TokenBucket(1000, 500, () => now);
    assert.equal(b.reserve(500), 0);
    assert.equal(b.reserve(250), 250); // 250 tokens of debt at 1000/s
    now = 250;
    assert.equal(b.available(), 0);
    now = 10_000; // idle: refills to capacity, never beyond
    assert.equal(b.available(), 500);
    assert.equal(b.reserve(1500), 1000);
    assert.throws(() => new TokenBucket(0, 1), RangeError);
    assert.throws(() => new TokenBucket(1, Number.NaN), RangeError);
  });

  it('over many reservations, the rate is the configured one', () => {
    let now = 0;
    const b = new TokenBucket(50 * 2 ** 20, 5 * 2 ** 20, () => now);
    let bytes = 0;
    while (now < 10_000) {
      now += b.reserve(5 * 2 ** 20);
      bytes += 5 * 2 ** 20;
    }
    // One bucket of burst over the rate, at most.
    assert.ok(Math.abs(bytes - (50 * 2 ** 20 * now) / 1000) <= 5 * 2 ** 20 + 1, `${bytes} bytes in ${now} ms`);
  });
});

describe('background scrub', () => {
  it('holds the configured rate within ±5 %, on two stores at once', async () => {
    const base = tmpDir();
    const rate = 8 * 2 ** 20;
    const runs = await Promise.all(
      ['a', 'b'].map(async (name) => {
        const dir = path.join(base, name);
        await createStore(dir, { pageCount: 8192, pageSize: 4096 }); // 32 MiB: no pass ends in the window
        const { s } = scrubber({ dir, dataDir: path.join(base, `state-${name}`), rate });
        return { name, s };
      }),
    );
    for (const { s } of runs) s.start();
    try {
      await sleep(500); // past the first (free) batch
      const b0 = runs.map(({ s }) => s.stats.bytesScanned);
      const t0 = performance.now();
      await sleep(3000);
      const secs = (performance.now() - t0) / 1000;
      runs.forEach(({ name, s }, i) => {
        const measured = (s.stats.bytesScanned - b0[i]!) / secs;
        assert.ok(Math.abs(measured - rate) <= 0.05 * rate, `${name}: ${(measured / 2 ** 20).toFixed(2)} MiB/s, configured ${rate / 2 ** 20}`);
        assert.equal(s.stats.state, 'scanning');
        assert.equal(s.stats.rateBytesPerSec, rate);
      });
    } finally {
      await Promise.all(runs.map(({ s }) => s.stop()));
    }
  });

  it('saves its position, and a new scrubber resumes there, suspects first', async () => {
    const base = tmpDir();
    const dir = path.join(base, 'store');
    const dataDir = path.join(base, 'agent');
    // 4096 pages: a pass at 1 MiB/s takes 16 s, so a stalled test process cannot see the first
    // scrubber finish its pass (and start over) between its progress check and its stop.
    const pageCount = 4096;
    await createStore(dir, { pageCount, pageSize: 4096 });
    const first = scrubber({ dir, dataDir, rate: 1 << 20 }); // 25 pages per batch, ~250 pages a second
    first.s.start();
    await until(() => first.s.stats.position > 60, 5000, 'the first scrubber to get going');
    await first.s.stop();
    const saved = JSON.parse(readFileSync(scrubStateFile(dataDir, 'st'), 'utf8')) as ScrubState;
    assert.equal(saved.nextPage, first.s.stats.position);
    assert.ok(saved.nextPage > 60 && saved.nextPage < pageCount, `saved position ${saved.nextPage}`);
    assert.equal(saved.passes, 0);
    assert.ok(saved.passStartedAt > 0);
    assert.equal(first.s.stats.state, 'stopped');

    const second = scrubber({ dir, dataDir, rate: 64 << 20, intervalMs: 3_600_000 });
    second.s.suspect([450, 451, 3]);
    second.s.start();
    await until(() => second.s.stats.passes >= 1, 5000, 'the second scrubber to finish the pass');
    await until(() => second.s.stats.state === 'waiting', 2000, 'the scrubber to wait for the next pass');
    await second.s.stop();
    const ranges = second.seen.ranges;
    // Suspects first (the lowest run, then the next), then the pass from where it stopped.
    assert.deepEqual(ranges.slice(0, 3), [{ first: 3, count: 1 }, { first: 450, count: 2 }, { first: saved.nextPage, count: ranges[2]!.count }]);
    const passPages = ranges.slice(2).reduce((a, r) => a + r.count, 0);
    assert.equal(passPages, pageCount - saved.nextPage, 'the pass read only what was left, once');
    assert.ok(second.lines().some((l) => l.msg === 'scrub resumes where it stopped' && l.position === saved.nextPage));
    assert.ok(second.lines().some((l) => l.msg === 'scrub pass complete'));
    const done = JSON.parse(readFileSync(scrubStateFile(dataDir, 'st'), 'utf8')) as ScrubState;
    assert.equal(done.passes, 1);
    assert.equal(done.nextPage, pageCount);
    assert.ok(done.lastPassDurationMs > 0);
  });

  it('starts over when the saved state is of another geometry or unreadable', async () => {
    const base = tmpDir();
    const dir = path.join(base, 'store');
    const dataDir = path.join(base, 'agent');
    await createStore(dir, { pageCount: 64, pageSize: 4096 });
    const file = scrubStateFile(dataDir, 'st');
    for (const content of ['{ not json', JSON.stringify({ version: 1, storeId: 'st', path: dir, pageSize: 4096, pageCount: 99, nextPage: 50, passStartedAt: 1, passes: 3, lastPassCompletedAt: 1, lastPassDurationMs: 1, suspects: [] })]) {
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, content);
      const { s, seen, lines } = scrubber({ dir, dataDir, rate: 64 << 20 });
      s.start();
      await until(() => s.stats.passes >= 1, 5000, 'a pass');
      await s.stop();
      assert.equal(seen.ranges[0]!.first, 0);
      assert.ok(lines().some((l) => l.level === 40 && typeof l.msg === 'string' && /starting over|cannot read|not a scrub state/.test(l.msg)), JSON.stringify(lines()));
    }
  });

  it('reports corrupt pages and scrubs their neighbours next; a store that appears later is picked up', async () => {
    const base = tmpDir();
    const dir = path.join(base, 'store');
    const dataDir = path.join(base, 'agent');
    const { s, seen, lines } = scrubber({ dir, dataDir, rate: 2 << 20, retryMs: 100 }); // 51 pages (of 4 KiB) a batch
    s.start();
    try {
      await until(() => s.stats.lastError !== null, 2000, 'the missing store to be noticed');
      assert.equal(s.stats.state, 'unavailable');
      assert.ok(lines().some((l) => l.msg === 'scrub cannot read the store; retrying later'));
      await createStore(dir, { pageCount: 256, pageSize: 4096 });
      const hit = flipBits(dir, 4096, 256, 1, 5);
      const [bad] = [...hit.keys()];
      // (The flip may land after the pass went by: then the next pass finds it.)
      await until(() => seen.corrupt.length > 0, 5000, 'the corrupt page to be found');
      assert.deepEqual(seen.corrupt.map((c) => c.pageId).slice(0, 1), [bad]);
      assert.ok(s.stats.corruptFound >= 1);
      // Right after the batch that found it, the neighbours outside that batch were checked.
      const rangesBefore = seen.ranges.length;
      await until(() => seen.ranges.length > rangesBefore, 2000, 'the next batch');
      const at = seen.ranges.findLastIndex((r) => bad! >= r.first && bad! < r.first + r.count);
      const found = seen.ranges[at]!;
      const outside = [bad! - 4, bad! - 3, bad! - 2, bad! - 1, bad! + 1, bad! + 2, bad! + 3, bad! + 4].filter((p) => p >= 0 && p < 256 && (p < found.first || p >= found.first + found.count));
      if (outside.length > 0) {
        const next = seen.ranges[at + 1]!;
        assert.equal(next.first, outside[0], `ranges after the find: ${JSON.stringify(seen.ranges.slice(at, at + 3))}`);
      }
      assert.equal(s.stats.lastError, null);
    } finally {
      await s.stop();
    }
  });
});
