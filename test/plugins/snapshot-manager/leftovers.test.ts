import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkerPool } from '../../../core/workerPool.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { createSnapshot } from '../../../plugins/snapshot-manager/createSnapshot.js';
import { snapshotsDirOf } from '../../../plugins/snapshot-manager/manifest.js';
import { walArchiver } from '../../../plugins/snapshot-manager/walArchive.js';
import { BIN, cli, cliWithClosedPipe } from '../../helpers/cli.js';
import { tmpStoreDir } from '../../helpers/store.js';
import { until } from '../../helpers/wait.js';
import { pagestore } from '../../helpers/engine.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Temporary directories in a snapshot directory (`snapshots/.<id>….tmp`). */
const snapshotTemps = (dir: string) => {
  const d = snapshotsDirOf(dir);
  return existsSync(d) ? readdirSync(d).filter((n) => n.startsWith('.') && n.endsWith('.tmp')).map((n) => path.join(d, n)) : [];
};
/** Restore staging directories of `to` (`<to>.restoring-…`). */
const stagings = (to: string) => readdirSync(path.dirname(to)).filter((n) => n.startsWith(`${path.basename(to)}.restoring-`)).map((n) => path.join(path.dirname(to), n));

function startCli(args: string[]): { child: ChildProcess; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> } {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stderr })));
  return { child, exited };
}

/**
 * Runs a CLI command and SIGKILLs it as soon as `midRun()` holds (polled every 2 ms): a real
 * kill of a real run, mid-way. Tries again (up to 5 times) if a run finishes first.
 */
async function killMidRun(args: string[], midRun: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const { child, exited } = startCli(args);
    let done = false;
    void exited.then(() => (done = true));
    while (!done && !midRun()) await sleep(2);
    if (!done) {
      child.kill('SIGKILL');
      const e = await exited;
      assert.equal(e.signal, 'SIGKILL');
      return;
    }
    const e = await exited;
    assert.equal(e.code, 0, `run finished before it could be killed, and failed: ${e.stderr}`);
  }
  assert.fail(`${args.join(' ')} finished every time before it could be killed mid-run`);
}

/** The owner in a temporary directory's name (`.<id>.<pid>-<start>-<space>.tmp`, `<to>.restoring-<pid>-<start>-<space>`). */
function ownerOfName(p: string): { pid: number; start: string; space: string } {
  const m = /(\d+)-(\d+)-([0-9a-z]+)(?:\.tmp)?$/.exec(path.basename(p));
  assert.ok(m, `an owner in ${p}`);
  return { pid: Number(m[1]), start: m[2]!, space: m[3]! };
}

/** A pid that was a process a moment ago and is none now. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '0']);
  return r.pid!;
}

function twoDeadPids(): [number, number] {
  const a = deadPid();
  for (;;) {
    const b = deadPid();
    if (b !== a) return [a, b];
  }
}

/** A fake temporary directory with a file in it, last changed `ageMs` ago. */
function fakeTemp(p: string, ageMs: number): string {
  mkdirSync(p, { recursive: true });
  writeFileSync(path.join(p, 'chunk-00000.lz4'), Buffer.alloc(4096, 1));
  const t = new Date(Date.now() - ageMs);
  utimesSync(path.join(p, 'chunk-00000.lz4'), t, t);
  utimesSync(p, t, t);
  return p;
}

describe('leftovers of killed snapshot and restore runs', () => {
  const root = path.dirname(tmpStoreDir('ra-leftovers-'));
  const store = path.join(root, 'store');
  const snaps = path.join(root, 'snaps');
  const pool = new WorkerPool({ threads: 1 });

  before(async () => {
    // 32 MiB of pages: a snapshot or a restore of it takes long enough to be killed mid-way.
    const s = await PageStore.open(store, { create: true, pageCount: 8192, pageSize: 4096, archiver: walArchiver(pagestore, snaps) });
    for (let i = 0; i < 400; i++) {
      const tx = s.begin();
      await tx.write(1 + ((i * 97) % 8000), 64, Buffer.from(`v${i};`.repeat(40)));
      await tx.commit();
    }
    await s.close();
    await createSnapshot({ engine: pagestore, store, dir: snaps, pool });
  });
  after(() => pool.close());

  it('snapshot create: a killed run leaves its temp dir; the next run removes it and says so, and spares a live run\'s', async () => {
    const dir = path.join(root, 'snaps-create');
    const args = ['snapshot', 'create', '--store', store, '--dir', dir];
    const hasChunk = (t: string) => existsSync(t) && readdirSync(t).some((n) => n.startsWith('chunk-'));
    // A run that is alive (stopped mid-copy by SIGSTOP) while others run: its temp dir must survive.
    const live = startCli(args);
    try {
      await until(() => snapshotTemps(dir).some(hasChunk), 20_000, 'the live run\'s temp dir');
      live.child.kill('SIGSTOP');
      const [liveTemp] = snapshotTemps(dir);
      assert.ok(liveTemp);
      await killMidRun(args, () => snapshotTemps(dir).some((t) => t !== liveTemp && hasChunk(t)));
      const killed = snapshotTemps(dir).filter((t) => t !== liveTemp);
      assert.equal(killed.length, 1, 'the killed run left its temp dir behind');
      assert.ok(existsSync(liveTemp), 'the killed run, starting, spared the live run\'s temp dir');

      // A pid now held by another process (this one, started at another time) is no owner.
      // An owner that cannot be checked — another pid namespace or boot (a container, a host
      // sharing the directory), or a name from before owners were recorded — is taken for gone
      // only once nothing changed for an hour.
      const space = ownerOfName(liveTemp).space;
      const reused = fakeTemp(path.join(snapshotsDirOf(dir), `.20200101T000000000Z-F.${process.pid}-1-${space}.tmp`), 0);
      const legacyIdle = fakeTemp(path.join(snapshotsDirOf(dir), '.20200101T000000001Z-F.tmp'), 2 * 3600_000);
      const legacyBusy = fakeTemp(path.join(snapshotsDirOf(dir), '.20200101T000000002Z-F.tmp'), 0);
      const foreignIdle = fakeTemp(path.join(snapshotsDirOf(dir), `.20200101T000000003Z-F.${deadPid()}-1-0n1.tmp`), 2 * 3600_000);
      const foreignBusy = fakeTemp(path.join(snapshotsDirOf(dir), `.20200101T000000004Z-F.${deadPid()}-1-0n1.tmp`), 0);

      const r = cli(args);
      assert.equal(r.status, 0, r.stderr);
      for (const gone of [...killed, reused, legacyIdle, foreignIdle]) {
        assert.equal(existsSync(gone), false, `${gone} removed`);
        assert.ok(r.stdout.includes(gone), `the run says it removed ${gone}: ${r.stdout}`);
      }
      assert.match(r.stdout, /leftovers\s+removed 4 temporary directories of killed runs \(\d+ bytes\)/);
      for (const kept of [liveTemp, legacyBusy, foreignBusy]) {
        assert.ok(existsSync(kept), `${kept} survives`);
        assert.ok(!r.stdout.includes(kept), `${kept} is not reported`);
      }
      live.child.kill('SIGCONT');
      const e = await live.exited;
      assert.equal(e.code, 0, `the live run, resumed, completes: ${e.stderr}`);
      assert.equal(existsSync(liveTemp), false, 'renamed into place');
    } finally {
      live.child.kill('SIGKILL');
    }
    const v = cli(['snapshot', 'verify', dir]);
    assert.equal(v.status, 0, v.stdout + v.stderr);
    assert.match(v.stdout, /^2 snapshot\(s\)/);
  });

  it('snapshot prune removes leftovers of killed runs and reports them (--dry-run only reports)', async () => {
    const dir = path.join(root, 'snaps-prune');
    const args = ['snapshot', 'create', '--store', store, '--dir', dir];
    assert.equal(cli(args).status, 0);
    await killMidRun(args, () => snapshotTemps(dir).some((t) => existsSync(t) && readdirSync(t).length > 1));
    const [killed] = snapshotTemps(dir);
    assert.ok(killed);
    const prune = ['snapshot', 'prune', dir, '--keep-full', '1', '--keep-incremental', '0'];
    const dry = cli([...prune, '--dry-run', '--json']);
    assert.equal(dry.status, 0, dry.stderr);
    const d = JSON.parse(dry.stdout) as { leftovers: { removed: Array<{ path: string; bytes: number }> } };
    assert.deepEqual(d.leftovers.removed.map((l) => l.path), [killed]);
    assert.ok(existsSync(killed), 'a dry run removes nothing');
    const r = cli(prune);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.includes(killed), r.stdout);
    assert.match(r.stdout, /removed 1 temporary directory of killed runs/);
    assert.equal(existsSync(killed), false);
    assert.deepEqual(snapshotTemps(dir), []);
  });

  it('snapshot prune removes a killed archiver\'s temporary files once idle, never a fresh one', () => {
    const dir = path.join(root, 'snaps-archive-tmp');
    assert.equal(cli(['snapshot', 'create', '--store', store, '--dir', dir]).status, 0);
    mkdirSync(path.join(dir, 'wal'), { recursive: true });
    const old = path.join(dir, 'wal', '00000000000a0000.wal.lz4.tmp');
    const fresh = path.join(dir, 'wal', '00000000000b0000.wal.json.tmp');
    writeFileSync(old, Buffer.alloc(4096, 1));
    writeFileSync(fresh, '{}');
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    utimesSync(old, twoHoursAgo, twoHoursAgo);
    const r = cli(['snapshot', 'prune', dir, '--keep-full', '1', '--keep-incremental', '0', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const removed = (JSON.parse(r.stdout) as { leftovers: { removed: Array<{ path: string }> } }).leftovers.removed.map((l) => l.path);
    assert.deepEqual(removed, [old]);
    assert.equal(existsSync(old), false);
    assert.ok(existsSync(fresh), 'a file a live archiver may still rename stays');
  });

  it('restore: a killed run leaves <to>.restoring-…; the next restore to it removes it and says so, and spares a live run\'s', async () => {
    const to = path.join(root, 'restored');
    const args = ['restore', '--snapshot-dir', snaps, '--to', to];
    const staged = (s: string) => existsSync(path.join(s, 'pages.db'));
    const live = startCli(args);
    try {
      await until(() => stagings(to).some(staged), 20_000, 'the live restore\'s staging');
      live.child.kill('SIGSTOP');
      const [liveStaging] = stagings(to);
      assert.ok(liveStaging);
      await killMidRun(args, () => stagings(to).some((s) => s !== liveStaging && staged(s)));
      const killed = stagings(to).filter((s) => s !== liveStaging);
      assert.equal(killed.length, 1, 'the killed restore left its staging directory');
      assert.equal(existsSync(to), false);
      const reused = fakeTemp(`${to}.restoring-${process.pid}-1-${ownerOfName(liveStaging).space}`, 0);
      const [idlePid, busyPid] = twoDeadPids();
      const legacyIdle = fakeTemp(`${to}.restoring-${idlePid}`, 2 * 3600_000);
      const legacyBusy = fakeTemp(`${to}.restoring-${busyPid}`, 0);

      const r = cli([...args, '--json']);
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { leftoversRemoved: Array<{ path: string; bytes: number }> };
      assert.deepEqual(out.leftoversRemoved.map((l) => l.path).sort(), [...killed, reused, legacyIdle].sort());
      assert.ok(out.leftoversRemoved.find((l) => l.path === killed[0])!.bytes > 0, 'reports the space freed');
      for (const gone of [...killed, reused, legacyIdle]) assert.equal(existsSync(gone), false, `${gone} removed`);
      assert.ok(existsSync(liveStaging), 'the live restore\'s staging survives');
      assert.ok(existsSync(legacyBusy), 'an ownerless staging directory changed recently survives (its pid may be of another namespace)');
      assert.ok(existsSync(path.join(to, 'pages.db')));

      // Killed now, it is a leftover too: the next restore (text output) removes it and says so.
      live.child.kill('SIGKILL');
      await live.exited;
      const again = cli([...args, '--force']);
      assert.equal(again.status, 0, again.stderr);
      assert.ok(again.stdout.includes(liveStaging), again.stdout);
      assert.match(again.stdout, /leftovers\s+removed 1 temporary directory of killed runs/);
      assert.deepEqual(stagings(to), [legacyBusy]);
    } finally {
      live.child.kill('SIGKILL');
    }
  });

  it('snapshot create into a pipe its reader closed (| head -1) still takes the snapshot, quietly', async () => {
    const dir = path.join(root, 'snaps-pipe');
    const r = await cliWithClosedPipe(['snapshot', 'create', '--store', store, '--dir', dir], 'stdout');
    assert.equal(r.signal, null);
    assert.equal(r.status, 0, r.other);
    assert.equal(r.other, '', 'no EPIPE stack trace');
    const list = cli(['snapshot', 'list', dir, '--json']);
    assert.equal((JSON.parse(list.stdout) as unknown[]).length, 1);
  });
});
