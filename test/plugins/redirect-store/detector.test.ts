// The disk-failure detector against real owners whose log broke under test/fixtures/faultfs.c:
// one on EIO (a failed disk: disk-failure, P1, once per owner), one on ENOSPC (a full disk: not a
// disk failure, logged). The owners report why through their control socket's status (`broken`).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { FailureInput, FailureSink, Failure } from '../../../core/contracts/Failure.js';
import { withOwner } from '../../../core/contracts/PageEngine.js';
import type { StorePaths } from '../../../core/contracts/StorePaths.js';
import { DiskFailureWatch } from '../../../plugins/redirect-store/detector.js';
import { faultLibrary } from '../../crash/ioFaults.js';
import { pagestore } from '../../helpers/engine.js';
import { captureLogger } from '../../helpers/logCapture.js';
import { fixture } from '../../helpers/paths.js';

const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill('SIGTERM');
});

/** A writer on `<tmp>/<name>/store` whose WAL writes fail with `kind` from the 40th on; resolves once its log broke. */
async function brokenOwner(kind: 'eio-write' | 'enospc', name: string): Promise<string> {
  const root = mkdtempSync(path.join(realpathSync(os.tmpdir()), `ra-diskdetect-${name}-`));
  mkdirSync(path.join(root, 'archive'));
  const spec = { dir: path.join(root, 'store'), archive: path.join(root, 'archive'), acks: path.join(root, 'acks.log'), pages: 16 };
  const env = { ...process.env, LD_PRELOAD: await faultLibrary(), UV_USE_IO_URING: '0', FAULTFS_DIR: path.join(spec.dir, 'wal'), FAULTFS_KIND: kind, FAULTFS_AT: '40', FAULTFS_STICKY: '1', FAULTFS_SEED: '1' };
  children.push(spawn(process.execPath, [fixture('diskFailWriter.js'), JSON.stringify(spec)], { env, stdio: 'inherit' }));
  const t0 = Date.now();
  while (!(existsSync(spec.acks) && readFileSync(spec.acks, 'utf8').includes('broken '))) {
    if (Date.now() - t0 > 30_000) throw new Error(`the ${kind} writer's log did not break`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return spec.dir;
}

describe('disk-failure detection', () => {
  it('reports a log broken by EIO as a disk failure, once, and one broken by ENOSPC not at all', async () => {
    const [eio, full] = await Promise.all([brokenOwner('eio-write', 'eio'), brokenOwner('enospc', 'full')]);
    // What the owners say through their control socket.
    const broken = async (dir: string) => (await withOwner(pagestore, dir, (o) => o.status())).broken;
    assert.equal((await broken(eio))?.errno, 'EIO');
    assert.equal((await broken(eio))?.code, 'RA_ERR_WAL_WRITE');
    assert.equal((await broken(full))?.errno, 'ENOSPC');

    const where: Record<string, string> = { eio, full };
    const paths: StorePaths = { pathOf: (id) => where[id], redirects: () => ({}), redirect: () => Promise.reject(new Error('not here')) };
    const published: FailureInput[] = [];
    const sink: FailureSink = { publish: (f) => (published.push(f), f as unknown as Failure) };
    const { log, lines } = captureLogger();
    const watch = new DiskFailureWatch([{ id: 'eio', engine: pagestore, probe: true }, { id: 'full', engine: pagestore, probe: true }], paths, log, 50);
    watch.start(sink);
    await new Promise((r) => setTimeout(r, 1000)); // some 20 polls
    await watch.stop();

    assert.equal(published.length, 1, JSON.stringify(published));
    const f = published[0]!;
    assert.deepEqual([f.kind, f.priority, f.subject], ['disk-failure', 'P1', 'store:eio']);
    assert.equal(f.evidence!.errno, 'EIO');
    assert.equal(f.evidence!.path, eio);
    assert.equal(typeof f.evidence!.flushedLsn, 'number');
    const notDisk = lines().filter((l) => String(l.msg).includes('not a disk failure'));
    assert.equal(notDisk.length, 1, 'the full disk is said once');
    assert.equal(notDisk[0]!.errno, 'ENOSPC');
  });
});
