// Store data is for its owner only, whatever the umask: under umask 000 a writer (with a WAL
// archive), `snapshot create` (full and incremental) and `restore` run as real processes, and
// every file they leave is 0600 and every directory 0700, parents they made included; while the
// writer has the store open, its LOCK, run/ and the control socket too. A store made by an
// older version (umask-following modes) is tightened when it is opened, and nothing is loosened.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { controlSocketOf } from '../../../plugins/pagestore/controlSocket.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { recover } from '../../../plugins/pagestore/recovery.js';
import { createSnapshot } from '../../../plugins/snapshot-manager/createSnapshot.js';
import { WorkerPool } from '../../../core/workerPool.js';
import { BIN } from '../../helpers/cli.js';
import { captureLogger } from '../../helpers/logCapture.js';
import { fixture, repoRoot } from '../../helpers/paths.js';
import { until } from '../../helpers/wait.js';
import { pagestore } from '../../helpers/engine.js';

const mode = (p: string) => (lstatSync(p).mode & 0o7777).toString(8);

/** `argv` under `umask 000`, set by a shell as an operator's would be. */
function underUmask000(argv: string[], stdio: 'pipe' | 'inherit' = 'pipe'): ChildProcess {
  return spawn('sh', ['-c', 'umask 000; exec "$0" "$@"', ...argv], { cwd: repoRoot(), stdio: ['ignore', stdio, 'pipe'] });
}

function cliUnderUmask000(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('sh', ['-c', 'umask 000; exec "$0" "$@"', process.execPath, BIN, ...args], { cwd: repoRoot(), encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Every file and directory under `root` (root excluded), with its type and permission bits. */
function walk(root: string): Array<{ path: string; kind: 'dir' | 'file' | 'socket' | 'other'; mode: string }> {
  const out: Array<{ path: string; kind: 'dir' | 'file' | 'socket' | 'other'; mode: string }> = [];
  for (const name of readdirSync(root)) {
    const p = path.join(root, name);
    const st = lstatSync(p);
    const kind = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSocket() ? 'socket' : 'other';
    out.push({ path: p, kind, mode: mode(p) });
    if (kind === 'dir') out.push(...walk(p));
  }
  return out;
}

/** Entries whose mode is not 0700 (directories) or 0600 (files, sockets). */
const loose = (entries: ReturnType<typeof walk>) => entries.filter((e) => e.mode !== (e.kind === 'dir' ? '700' : '600'));

describe('store file modes', () => {
  it('the umask-000 shell really gives 0666 files and 0777 directories (the control)', () => {
    const base = mkdtempSync(path.join(os.tmpdir(), 'ra-modes-'));
    const r = spawnSync('sh', ['-c', 'umask 000; : > "$0/f"; mkdir "$0/d"', base]);
    assert.equal(r.status, 0, String(r.stderr));
    assert.equal(mode(path.join(base, 'f')), '666');
    assert.equal(mode(path.join(base, 'd')), '777');
  });

  it('under umask 000: the store, its WAL archive, full and incremental snapshots and a restore are 0600 files in 0700 directories', async () => {
    const base = mkdtempSync(path.join(os.tmpdir(), 'ra-modes-'));
    const store = path.join(base, 'data', 'store');
    const backup = path.join(base, 'backup');
    const restored = path.join(base, 'restored', 'store');
    const writer = underUmask000([process.execPath, fixture('snapshotWriter.js'), JSON.stringify({ dir: store, archive: backup, pages: 64 })]);
    let out = '';
    let err = '';
    writer.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    writer.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => writer.on('exit', resolve));
    try {
      await until(() => existsSync(path.join(backup, 'wal')) && readdirSync(path.join(backup, 'wal')).some((n) => n.endsWith('.wal.json')), 30_000, `an archived WAL segment (writer: ${err})`);
      const full = cliUnderUmask000(['snapshot', 'create', '--store', store, '--dir', backup, '--workers', '1', '--no-progress']);
      assert.equal(full.status, 0, full.stderr);
      const commitsAtFull = out.split('\n').length;
      await until(() => out.split('\n').length > commitsAtFull + 200, 30_000, 'more commits');
      const inc = cliUnderUmask000(['snapshot', 'create', '--store', store, '--dir', backup, '--incremental', '--workers', '1', '--no-progress']);
      assert.equal(inc.status, 0, inc.stderr);
      // While the writer holds the store: the lock, the socket's directory and the socket.
      assert.equal(mode(path.join(store, 'LOCK')), '600');
      assert.equal(mode(path.dirname(controlSocketOf(store))), '700');
      assert.ok(lstatSync(controlSocketOf(store)).isSocket());
      assert.equal(mode(controlSocketOf(store)), '600');
    } finally {
      writer.kill('SIGTERM');
    }
    assert.equal(await exited, 0, err);
    const restore = cliUnderUmask000(['restore', '--snapshot-dir', backup, '--to', restored, '--no-progress']);
    assert.equal(restore.status, 0, restore.stderr);

    const entries = walk(base);
    assert.deepEqual(loose(entries), [], 'every directory 0700, every file 0600');
    // What the walk must have seen, so that an empty or partial tree cannot pass.
    const seen = (re: RegExp) => entries.some((e) => re.test(path.relative(base, e.path)));
    for (const re of [
      /^data$/, /^data\/store\/pages\.db$/, /^data\/store\/control$/, /^data\/store\/wal\/[0-9a-f]{16}\.wal$/, /^data\/store\/run$/,
      /^backup\/wal\/[0-9a-f]{16}\.wal\.lz4$/, /^backup\/wal\/[0-9a-f]{16}\.wal\.json$/,
      /^backup\/snapshots\/[^/]+-F\/manifest\.json$/, /^backup\/snapshots\/[^/]+-I\/manifest\.json$/, /^backup\/snapshots\/[^/]+-F\/wal$/,
      /^restored$/, /^restored\/store\/pages\.db$/, /^restored\/store\/control$/, /^restored\/store\/wal\/[0-9a-f]{16}\.wal$/,
    ]) {
      assert.ok(seen(re), `${re} in ${entries.map((e) => path.relative(base, e.path)).join(' ')}`);
    }
    assert.ok(entries.filter((e) => /^backup\/snapshots\/[^/]+-F\/[^/]+$/.test(path.relative(base, e.path)) && e.kind === 'file').length >= 2, 'chunk files and the manifest');
    assert.equal(entries.some((e) => e.kind === 'socket'), false, 'the socket is gone with its owner');
  });

  it('a store with umask-following modes is tightened when opened (logged), and nothing is loosened', async () => {
    const base = mkdtempSync(path.join(os.tmpdir(), 'ra-modes-'));
    const dir = path.join(base, 'store');
    const s0 = await PageStore.open(dir, { create: true, pageCount: 8, pageSize: 4096, checkpointIntervalMs: 0 });
    await s0.close();
    // As an older version under umask 000 (or 022) left it.
    chmodSync(dir, 0o777);
    chmodSync(path.join(dir, 'wal'), 0o755);
    chmodSync(path.join(dir, 'pages.db'), 0o666);
    chmodSync(path.join(dir, 'control'), 0o644);
    const seg = path.join(dir, 'wal', readdirSync(path.join(dir, 'wal'))[0]!);
    chmodSync(seg, 0o604);
    const logs = captureLogger();
    const s1 = await PageStore.open(dir, { log: logs.log, checkpointIntervalMs: 0 });
    try {
      assert.deepEqual([dir, path.join(dir, 'wal'), path.join(dir, 'pages.db')].map(mode), ['700', '700', '600']);
      const warning = logs.lines().find((l) => l.msg === 'store files were open to other users (group or other permission bits); removed those bits');
      assert.ok(warning, 'a warning says the store was open');
      const tightened = warning.tightened as Array<{ path: string; from: string; to: string }>;
      assert.deepEqual(tightened.find((t) => t.path === path.join(dir, 'pages.db')), { path: path.join(dir, 'pages.db'), from: '666', to: '600' });
      assert.ok(tightened.some((t) => t.path === seg && t.from === '604' && t.to === '600'), JSON.stringify(tightened));
    } finally {
      await s1.close();
    }
    assert.deepEqual(loose(walk(dir)), []);

    // Never loosened: modes tighter than 0600/0700 stay as they are. (The store still opens: as
    // root, which the suite runs as and the other-user tests insist on.)
    assert.equal(process.geteuid?.(), 0, 'this step writes through 0400/0500 modes, as only root can; run the suite as root');
    chmodSync(path.join(dir, 'pages.db'), 0o400);
    chmodSync(dir, 0o500);
    await recover(dir);
    assert.equal(mode(path.join(dir, 'pages.db')), '400');
    assert.equal(mode(dir), '500');
    chmodSync(dir, 0o700);
    chmodSync(path.join(dir, 'pages.db'), 0o600);

    // Offline recovery tightens too.
    chmodSync(path.join(dir, 'pages.db'), 0o644);
    await recover(dir);
    assert.equal(mode(path.join(dir, 'pages.db')), '600');
  });

  it('a snapshot directory an older version left open is tightened by the next snapshot', async () => {
    const base = mkdtempSync(path.join(os.tmpdir(), 'ra-modes-'));
    const dir = path.join(base, 'store');
    const snaps = path.join(base, 'snaps');
    const s = await PageStore.open(dir, { create: true, pageCount: 8, pageSize: 4096, checkpointIntervalMs: 0 });
    const pool = new WorkerPool({ threads: 1 });
    try {
      await createSnapshot({ engine: pagestore, store: dir, dir: snaps, pool });
      chmodSync(snaps, 0o755);
      chmodSync(path.join(snaps, 'snapshots'), 0o777);
      await createSnapshot({ engine: pagestore, store: dir, dir: snaps, pool, incremental: true });
      assert.deepEqual([snaps, path.join(snaps, 'snapshots')].map((p) => (statSync(p).mode & 0o777).toString(8)), ['700', '700']);
    } finally {
      await pool.close();
      await s.close();
    }
  });
});
