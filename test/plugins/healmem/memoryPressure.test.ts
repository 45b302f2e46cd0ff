// Memory pressure: the health monitor's memory reading scores below 50 on its threshold line
// (here a line that puts any real host there: good 1, bad 0.999, so the reading is the host's
// own /proc/meminfo) → memory-pressure (P2) → the default rule's clear-caches asks the owner of
// the supervised application's store to drop its clean cached pages; verified by the owner's
// status read afterwards.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ControlClient } from '../../../plugins/pagestore/controlClient.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { tmpStoreDir } from '../../helpers/store.js';
import { startAgent, waitFor } from './harness.js';

describe('drop-caches control op', () => {
  it('drops the clean cached pages, keeps the dirty ones, and says how many bytes it let go', async () => {
    const dir = tmpStoreDir();
    const s = await PageStore.open(dir, { create: true, pageCount: 128, pageSize: 8192, checkpointIntervalMs: 0 });
    try {
      const tx = s.begin();
      for (let p = 1; p < 128; p++) await tx.read(p);
      await tx.write(5, 0, Buffer.from('dirty'));
      await tx.commit();
      const before = s.status().cache;
      assert.ok(before.pages >= 127 && before.dirty === 1, JSON.stringify(before));
      const d = await ControlClient.with(dir, (c) => c.dropCaches());
      assert.deepEqual(d, { pagesDropped: before.pages - 1, bytesReleased: (before.pages - 1) * 8192, pagesBefore: before.pages, pagesAfter: 1 });
      const after = await ControlClient.with(dir, (c) => c.status());
      assert.equal(after.cache.pages, 1);
      assert.equal(after.cache.dirty, 1);
      // The dropped pages read again from disk, and the dirty one kept its change.
      const t2 = s.begin();
      assert.equal((await t2.read(5)).subarray(0, 5).toString(), 'dirty');
      await t2.commit();
    } finally {
      await s.close();
    }
  });
});

describe('memory-pressure → clear-caches', () => {
  it('clears the application store\'s cache when host memory is under its threshold', async () => {
    const h = await startAgent({ readPages: true }, { health: { interval: '100ms', sustain: 30, thresholds: { memory: { good: 1, bad: 0.999 } }, prediction: { enabled: false } } });
    try {
      await waitFor(() => h.ready().length > 0, 15_000, 'the application to read its store');
      const r = await waitFor(() => h.recoveries('memory-pressure').find((x) => x.outcome !== undefined), 15_000, 'the memory-pressure recovery');
      assert.equal(r.outcome, 'recovered', JSON.stringify(r));
      assert.equal(r.subject, 'host');
      assert.deepEqual(r.attempts.map((a) => [a.action, a.verified]), [['clear-caches', true]]);
      assert.match(r.attempts[0]!.summary!, /cleared the caches of "demo" \(pid \d+, \d+ pages\): \d+ bytes released/);
      const released = Number(/(\d+) bytes released/.exec(r.attempts[0]!.summary!)![1]);
      assert.ok(released >= 500 * 8192, `released ${released} bytes`);
      // Independently: the owner holds (almost) no clean pages now.
      const st = await ControlClient.with(h.store, (c) => c.status());
      assert.ok(st.cache.pages - st.cache.dirty <= 8, JSON.stringify(st.cache));
    } finally {
      await h.stop();
    }
  });
});
