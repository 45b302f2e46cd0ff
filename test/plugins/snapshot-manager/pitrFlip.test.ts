// A byte flipped in a commit record of a WAL segment before it is archived: every restore that
// needs the record fails, naming the damaged record (not the log's end), and one that stops
// before it works (#16 item 3, adversarial review).
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync, readdirSync, writeSync } from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { WorkerPool } from '../../../core/workerPool.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { createSnapshot } from '../../../plugins/snapshot-manager/createSnapshot.js';
import { walArchiver } from '../../../plugins/snapshot-manager/walArchive.js';
import { pagestore } from '../../helpers/engine.js';
import { tmpStoreDir } from '../../helpers/store.js';
import { commits, restore, restoreJson, storeOptions } from './pitrHelpers.js';

it('a commit record damaged on disk before archiving: the error names it', async () => {
  const root = path.dirname(tmpStoreDir('ra-pitr-flip-'));
  const store = path.join(root, 'store');
  const snaps = path.join(root, 'snaps');
  const pool = new WorkerPool({ threads: 2 });
  const s = await PageStore.open(store, { ...storeOptions, checkpointWalBytes: 1 << 30, archiver: walArchiver(pagestore, snaps) });
  await createSnapshot({ engine: pagestore, store, dir: snaps, pool });
  await commits(s, 400, 'a');
  // Damage one byte of the time of a commit record in the second segment, on disk.
  const { log } = pagestore;
  const walDir = pagestore.files.logDir(store);
  const startLsn = 65536;
  const file = path.join(walDir, readdirSync(walDir).sort()[1]!);
  const raw = readFileSync(file);
  let victim = -1;
  log.scanRecords(raw, log.segmentHeaderSize, raw.byteLength, startLsn + log.segmentHeaderSize, (p) => {
    if (victim < 0 && p > 20000 && log.recordKind(raw, p) === 'commit') victim = p;
  });
  assert.ok(victim > 0);
  const fd = openSync(file, 'r+');
  writeSync(fd, Buffer.from([raw[victim + 58]! ^ 0x40]), 0, 1, victim + 58);
  closeSync(fd);
  const damaged = startLsn + victim;
  await s.checkpoint(); // retires and archives the damaged segment as it is on disk
  const last = await commits(s, 200, 'c');
  await createSnapshot({ engine: pagestore, store, dir: snaps, pool, incremental: true });
  await s.close();
  await pool.close();
  for (const args of [[], ['--time', String(Date.now())], ['--lsn', String(last.end)]]) {
    const r = restore(snaps, path.join(root, `r${args.join('')}`), ...args);
    assert.equal(r.status, 4, `restore ${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, new RegExp(`the WAL record at LSN ${damaged} is damaged .*restore --lsn ${damaged}\\) \\[RA_ERR_SNAPSHOT_CORRUPT\\]`), `restore ${args.join(' ')}`);
  }
  // Up to the damaged record the WAL is good: the restore the message offers works.
  const ok = restoreJson(snaps, path.join(root, 'r-ok'), '--lsn', String(damaged));
  assert.ok(ok.stoppedAt!.endLsn <= damaged);
});
