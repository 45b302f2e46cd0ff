// `replica init --from-snapshot` (#14 item 2): a replica made from a snapshot of its primary's
// store and the WAL archive, with no base copy. The primary (a PageStore with replication.json
// and a WAL archiver, in this process) writes throughout; the replica's log is the primary's
// (the primary's `hello` check accepts it), its session streams from the archive's end without a
// base copy, and it ends with every page equal to the primary's. An archive whose end the primary
// has retired is refused as too far behind even from the archive, leaving no store; an existing
// store is refused without --force and moved aside with it.
import { segmentContentLength } from '../../../plugins/pagestore/walSegments.js';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkerPool } from '../../../core/workerPool.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { ReplicaSession } from '../../../plugins/replication/replicaSession.js';
import { createSnapshot } from '../../../plugins/snapshot-manager/createSnapshot.js';
import { walArchiver } from '../../../plugins/snapshot-manager/walArchive.js';
import { BIN } from '../../helpers/cli.js';
import { pagestore } from '../../helpers/engine.js';
import { captureLogger } from '../../helpers/logCapture.js';
import { until } from './agentHarness.js';

const SECRET = 'snapshot-init-test-secret-32byte';
const PAGE = 4096;
const PAGES = 400;
const SEG = 128 * 1024;

async function openPrimary(dir: string, snaps: string): Promise<PageStore> {
  await (await PageStore.open(dir, { create: true, pageCount: PAGES, pageSize: PAGE, segmentSize: SEG, controlSocket: false })).close();
  writeFileSync(path.join(dir, 'replication.json'), JSON.stringify({ role: 'primary', listen: '127.0.0.1:0', secret: SECRET, epoch: 1, keepaliveMs: 50 }), { mode: 0o600 });
  return PageStore.open(dir, { checkpointIntervalMs: 0, checkpointWalBytes: 1 << 30, cacheBytes: 24 * PAGE, controlSocket: false, archiver: walArchiver(pagestore, snaps) });
}

async function write(store: PageStore, pages: number[], tag: string): Promise<void> {
  const tx = store.begin();
  for (const p of pages) await tx.write(p, (p * 37) % 3000, Buffer.from(`${tag} page ${p} `.repeat(8)));
  await tx.commit();
}

/**
 * A writer on hot and cold pages until `stop()`. It does not checkpoint: at this test's pace (a
 * 128 KiB segment every few commits) checkpoints would retire the log past the archive's end
 * while the init runs, which is the too-far-behind case (the second test).
 */
function runWriter(store: PageStore): { stop(): Promise<number> } {
  let writing = true;
  const done = (async () => {
    let n = 0;
    while (writing) {
      await write(store, [1 + (n % 20), 1 + ((n * 53) % (PAGES - 1))], `w${n}`);
      n++;
      await new Promise((r) => setTimeout(r, 1));
    }
    return n;
  })();
  done.catch(() => undefined);
  return {
    stop: async () => {
      writing = false;
      return done;
    },
  };
}

async function assertPagesEqual(primary: PageStore, replicaDir: string): Promise<void> {
  const data = readFileSync(path.join(replicaDir, 'pages.db'));
  assert.equal(data.byteLength, PAGES * PAGE);
  const differ: number[] = [];
  for (let p = 0; p < PAGES; p++) {
    const { image } = await primary.readPage(p);
    if (!image.equals(data.subarray(p * PAGE, (p + 1) * PAGE))) differ.push(p);
  }
  assert.deepEqual(differ, [], 'pages that differ from the primary\'s');
}

function cliAsync(args: string[], cwd: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr })));
}

const archivedStarts = (snaps: string) =>
  existsSync(path.join(snaps, 'wal')) ? readdirSync(path.join(snaps, 'wal')).filter((f) => f.endsWith('.wal.lz4')).map((f) => parseInt(f, 16)) : [];

/** Writes and checkpoints until the archive holds `segments` segments past the one `fromLsn` is in. */
async function archiveMore(store: PageStore, snaps: string, fromLsn: number, segments: number, tag: string): Promise<void> {
  const want = Math.floor(fromLsn / SEG) * SEG + segments * SEG;
  for (let n = 0; ; n++) {
    await write(store, [1 + (n % 50), 1 + ((n * 71) % (PAGES - 1))], `${tag}${n}`);
    if (n % 50 === 49) {
      await store.checkpoint();
      if (archivedStarts(snaps).some((s) => s >= want)) return;
    }
  }
}

describe('replica init --from-snapshot', () => {
  let root: string;
  let pool: WorkerPool;
  before(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'ra-snapinit-'));
    pool = new WorkerPool({ threads: 2 });
  });
  after(async () => {
    await pool.close();
    rmSync(root, { recursive: true, force: true });
  });

  function config(name: string, port: number): string {
    writeFileSync(path.join(root, `${name}.secret`), SECRET + '\n', { mode: 0o600 });
    const file = path.join(root, `${name}.yaml`);
    writeFileSync(file, `agent: { dataDir: ./${name}-data }\nstores:\n  - id: r\n    path: ${path.join(root, name)}\n    replication: { role: replica, primary: 127.0.0.1:${port}, secretFile: ./${name}.secret, id: ${name} }\n`);
    return file;
  }

  it('restores the snapshot and the archive with the primary\'s log; the replica streams from the archive\'s end (no base copy) and ends equal to the primary', async () => {
    const snaps = path.join(root, 'snaps1');
    const primary = await openPrimary(path.join(root, 'p1'), snaps);
    const replicaDir = path.join(root, 'r1');
    let session: ReplicaSession | undefined;
    try {
      for (let p = 1; p < PAGES; p += 10) await write(primary, Array.from({ length: Math.min(10, PAGES - p) }, (_, k) => p + k), 'v0');
      const snap = await createSnapshot({ engine: pagestore, store: primary.dir, dir: snaps, pool });
      // The archive goes on well past the snapshot: the replica catches up from it, then from the stream.
      await archiveMore(primary, snaps, snap.endLsn, 3, 'a');
      const writer = runWriter(primary);
      const args = ['replica', 'init', '--store', 'r', '--config', config('r1', primary.replicationAddress!.port), '--from-snapshot', '--snapshot-dir', snaps];
      const made = await cliAsync([...args, '--json'], root);
      assert.equal(made.status, 0, made.stderr);
      const out = JSON.parse(made.stdout) as { snapshots: string[]; endLsn: number; redoLsn: number; walSegments: number; epoch: number; replaced: string | null; warnings: string[] };
      assert.deepEqual(out.snapshots, [snap.id]);
      assert.equal(out.redoLsn, snap.startLsn);
      assert.ok(out.endLsn > snap.endLsn, `the log goes past the snapshot, through the archive (${out.endLsn} > ${snap.endLsn})`);
      assert.ok(out.walSegments >= 4, `${out.walSegments} segments`);
      assert.equal(out.epoch, 1);
      assert.equal(out.replaced, null);
      assert.deepEqual(out.warnings, [], 'the primary accepted the replica\'s position');
      assert.deepEqual(readdirSync(root).filter((f) => f.startsWith('r1.restoring-')), [], 'nothing left aside');

      // The replica's segments are the primary's, byte for byte, where both still have them.
      const rWal = path.join(replicaDir, 'wal');
      const pWal = path.join(primary.dir, 'wal');
      let compared = 0;
      for (const f of readdirSync(rWal).filter((x) => existsSync(path.join(pWal, x)) && x !== 'epochs.json')) {
        // Up to its last record (segments are made at full size: zeros after the records).
        const whole = readFileSync(path.join(rWal, f));
        const mine = whole.subarray(0, segmentContentLength(whole));
        assert.ok(readFileSync(path.join(pWal, f)).subarray(0, mine.byteLength).equals(mine), `segment ${f} as the primary wrote it`);
        compared++;
      }
      assert.ok(compared >= 1, 'a segment both have');

      session = new ReplicaSession({ storeId: 'r', dir: replicaDir, engine: pagestore, host: '127.0.0.1', port: primary.replicationAddress!.port, secret: SECRET, id: 'r1', log: captureLogger().log, onRefused: () => undefined });
      await session.start();
      await until('the replica streaming', () => (session!.status().state === 'streaming' ? true : undefined));
      await new Promise((r) => setTimeout(r, 300));
      const n = await writer.stop();
      assert.ok(n > 50, `the writer ran through the init and the stream (${n} commits)`);
      const end = primary.endLsn;
      await until('the replica applied everything', () => {
        const s = session!.status();
        return s.state === 'streaming' && s.durableLsn >= end && s.appliedLsn >= end ? true : undefined;
      });
      assert.equal(session.status().baseCopies, 0, 'no base copy');
      await session.stop();
      session = undefined;
      await assertPagesEqual(primary, replicaDir);

      // There now: refused without --force; with it the old store is moved aside, whole.
      const again = await cliAsync(args, root);
      assert.equal(again.status, 2, again.stderr);
      assert.match(again.stderr, /already exists.*--force/);
      const forced = await cliAsync([...args, '--force', '--snapshot', snap.id], root);
      assert.equal(forced.status, 0, forced.stderr);
      assert.match(forced.stdout, /from snapshot .* and the WAL archive/);
      assert.match(forced.stdout, /old store moved to/);
      const aside = readdirSync(root).filter((f) => f.startsWith('r1.replaced-'));
      assert.equal(aside.length, 1);
      assert.ok(existsSync(path.join(root, aside[0]!, 'control')), 'the old store kept whole');
    } finally {
      await session?.stop();
      await primary.close();
    }
  });

  it('an archive whose end the primary no longer has is refused as too far behind even from the archive; no store is made', async () => {
    const snaps = path.join(root, 'snaps2');
    const primary = await openPrimary(path.join(root, 'p2'), snaps);
    try {
      for (let p = 1; p < PAGES; p += 10) await write(primary, Array.from({ length: Math.min(10, PAGES - p) }, (_, k) => p + k), 'v0');
      const snap = await createSnapshot({ engine: pagestore, store: primary.dir, dir: snaps, pool });
      await archiveMore(primary, snaps, snap.endLsn, 4, 'b');
      // The newest archived segments lost (the primary retired them): the archive ends where the primary has no log.
      const archived = readdirSync(path.join(snaps, 'wal')).filter((f) => f.endsWith('.lz4')).sort();
      for (const f of archived.slice(-2)) {
        rmSync(path.join(snaps, 'wal', f));
        rmSync(path.join(snaps, 'wal', f.replace(/\.lz4$/, '.json')));
      }
      const r = await cliAsync(['replica', 'init', '--store', 'r', '--config', config('r2', primary.replicationAddress!.port), '--from-snapshot', '--snapshot-dir', snaps], root);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /too far behind even from the archive.*no longer has its log at LSN \d+.*take a newer snapshot or use the base copy/);
      assert.ok(!existsSync(path.join(root, 'r2')), 'no store');
      assert.deepEqual(readdirSync(root).filter((f) => f.startsWith('r2.restoring-')), [], 'nothing left aside');
    } finally {
      await primary.close();
    }
  });
});
