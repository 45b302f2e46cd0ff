// Stores set aside by rebuilds (asideStores.ts): the diverged ones pruned to the newest N, with a
// log line per removal; names not of asidePath's making, other reasons and other stores left alone.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { describe, it } from 'node:test';
import { asidePath, pruneAside } from '../../../plugins/replication/asideStores.js';

/** A logger whose lines are kept. */
function capture(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

describe('stores set aside by rebuilds', () => {
  it('asidePath names sort by time', () => {
    const a = asidePath('/x/s', 'diverged', new Date('2026-01-02T03:04:05.006Z'));
    assert.equal(a, '/x/s.diverged-2026-01-02T03-04-05-006Z');
    assert.ok(a < asidePath('/x/s', 'diverged', new Date('2026-01-02T03:04:05.007Z')));
  });

  it('keeps the newest N diverged stores, removes and logs the older, leaves every other name', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'ra-aside-'));
    const dir = path.join(root, 'store');
    mkdirSync(dir);
    const times = ['2026-03-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z', '2026-12-07T10:00:00.000Z', '2026-06-01T00:00:00.000Z'];
    const diverged = times.map((t) => asidePath(dir, 'diverged', new Date(t)));
    const others = [asidePath(dir, 'replaced', new Date(times[1]!)), `${dir}.diverged-notes`, asidePath(path.join(root, 'other'), 'diverged', new Date(times[1]!))];
    for (const p of [...diverged, ...others]) {
      mkdirSync(p);
      writeFileSync(path.join(p, 'pages.db'), 'x');
    }
    const { log, lines } = capture();
    const removed = await pruneAside(dir, 'diverged', 2, log, 'store-1');
    const oldest = [diverged[1]!, diverged[0]!];
    assert.deepEqual(removed, oldest);
    for (const p of oldest) assert.ok(!existsSync(p), `${p} removed`);
    for (const p of [diverged[2]!, diverged[3]!, ...others, dir]) assert.ok(existsSync(p), `${p} kept`);
    assert.deepEqual(lines.filter((l) => l.removed).map((l) => [l.store, l.removed, l.kept]), oldest.map((p) => ['store-1', p, 2]));
    // Nothing more to remove: a second call removes nothing.
    assert.deepEqual(await pruneAside(dir, 'diverged', 2, log, 'store-1'), []);
    assert.equal(readdirSync(root).length, 1 + 2 + others.length);
  });

  it('never fails the rebuild it follows: a parent it cannot list is logged, nothing removed', async () => {
    const { log, lines } = capture();
    const gone = path.join(os.tmpdir(), `ra-aside-none-${process.pid}`, 'no-such-dir', 'store');
    assert.deepEqual(await pruneAside(gone, 'diverged', 2, log, 's'), []);
    assert.equal(lines.filter((l) => l.level === 40).length, 1);
  });

  it('keep 1 leaves only the newest', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'ra-aside1-'));
    const dir = path.join(root, 'store');
    const a = asidePath(dir, 'diverged', new Date('2026-01-01T00:00:00.000Z'));
    const b = asidePath(dir, 'diverged', new Date('2026-01-01T00:00:00.001Z'));
    mkdirSync(a);
    mkdirSync(b);
    assert.deepEqual(await pruneAside(dir, 'diverged', 1, capture().log, 's'), [a]);
    assert.ok(existsSync(b));
  });
});
