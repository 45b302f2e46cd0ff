/**
 * `recovery-agent snapshot create|list|verify|prune`: LZ4 snapshots of a page store taken
 * online (no lock), their listing, their verification and their retention. The store is read
 * through its engine's page face (cli/engines.ts): the one named by --engine, else the one that
 * recognises the store, else the default. A snapshot directory does not record its engine, so
 * verify and prune take --engine too.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { SnapshotReport } from '../plugins/snapshot-manager/createSnapshot.js';
import { raError } from '../core/errors.js';
import { failAfterOutput, withFailure } from './commandFailure.js';
import { ProgressBar } from './progressBar.js';

const print = (s: string): void => void process.stdout.write(s + '\n');
const json = (v: unknown): void => print(JSON.stringify(v, null, 2));
/** The --json failure line, as every snapshot command's --help ends. */
const JSON_ERROR_HELP = '\nWith --json a failure also writes {"error":{"code","message","exitCode"}} on stdout.';

export function registerSnapshotCommands(program: Command): void {
  const snap = program.command('snapshot').description('take, list, verify and prune LZ4 snapshots of a page store');

  snap
    .command('create')
    .description('take a snapshot of a store while it runs (no lock needed): a fuzzy page copy plus the WAL that makes it consistent')
    .requiredOption('-s, --store <dir>', 'the store directory')
    .requiredOption('-d, --dir <dir>', 'the snapshot directory')
    .option('-i, --incremental', 'only pages changed since the newest snapshot in --dir')
    .option('-w, --workers <n>', 'compression worker threads (default: CPU count)', positiveInt('--workers'))
    .option('--engine <name>', 'the storage engine of the store (default: the one that recognises the store, else pagestore)')
    .option('--json', 'print the manifest as JSON')
    .option('--no-progress', 'no progress bar')
    .addHelpText('after', `\nExit codes: 0 snapshot taken; 2 bad usage, or --store holds no store; 1 an I/O error.${JSON_ERROR_HELP}`)
    .action(async (o: { store: string; dir: string; incremental?: boolean; workers?: number; engine?: string; json?: boolean; progress?: boolean }) => {
      const [{ pageEngineFor }, { createSnapshot }, { describeLeftovers }, { WorkerPool }] = await Promise.all([
        import('./engines.js'),
        import('../plugins/snapshot-manager/createSnapshot.js'),
        import('../plugins/snapshot-manager/leftovers.js'),
        import('../core/workerPool.js'),
      ]);
      const engine = await pageEngineFor(o.store, o.engine);
      const pool = new WorkerPool({ threads: o.workers });
      const bar = ProgressBar.forStderr(o.progress !== false);
      try {
        const t0 = performance.now();
        const report: Partial<SnapshotReport> = {};
        const m = await createSnapshot({ engine, store: o.store, dir: o.dir, pool, incremental: Boolean(o.incremental), report, onProgress: (d, t) => bar?.update('snapshot', Math.round(d / 2 ** 20), Math.round(t / 2 ** 20), ' MiB') });
        bar?.clear();
        const leftovers = report.leftoversRemoved ?? [];
        if (o.json) {
          // stdout holds the manifest alone; what was cleaned up goes to stderr.
          if (leftovers.length > 0) process.stderr.write(`recovery-agent: ${describeLeftovers(leftovers)}\n`);
          return json(m);
        }
        const raw = m.chunks.reduce((n, c) => n + c.rawBytes, 0);
        const packed = m.chunks.reduce((n, c) => n + c.bytes, 0);
        print(`snapshot ${m.id} (${m.kind}${m.baseId ? ` on ${m.baseId}` : ''}) of ${path.resolve(o.store)} in ${Math.round(performance.now() - t0)} ms`);
        print(`  pages       ${m.pagesCopied} in ${m.chunks.length} chunk(s), ${raw} bytes -> ${packed} (ratio ${(raw / Math.max(1, packed)).toFixed(2)}), ${m.pagesReread} re-read`);
        print(`  LSN         ${m.startLsn} .. ${m.endLsn} (consistent from ${m.endLsn}); WAL copied from ${m.walFromLsn} in ${m.wal.length} segment(s)`);
        if (leftovers.length > 0) print(`  leftovers   ${describeLeftovers(leftovers)}`);
      } finally {
        bar?.clear();
        await pool.close();
      }
    });

  snap
    .command('list')
    .description('list the snapshots in a snapshot directory, with the time each covers')
    .argument('<dir>', 'the snapshot directory')
    .option('--engine <name>', 'the storage engine of the snapshotted store (default: pagestore)')
    .option('--json', 'print JSON')
    .addHelpText('after', `
Each snapshot's time range: when its copy started and finished (finished: the time a restore by
--time can reach it from), and the first and last commit in the WAL it copied (from the
checkpoint in force when it started to its end LSN; read from its WAL copy), with their times
("unknown" for a log written before commit records carried their time).

Exit codes: 0 listed (an unreadable snapshot is listed as such); 2 bad usage, or <dir> does not
exist or is not a directory.${JSON_ERROR_HELP}`)
    .action(async (dir: string, o: { engine?: string; json?: boolean }) => {
      const [{ loadAll }, { pageEngineFor }, { snapshotCommitSpan }] = await Promise.all([
        import('../plugins/snapshot-manager/manifest.js'),
        import('./engines.js'),
        import('../plugins/snapshot-manager/commitTimes.js'),
      ]);
      assertDirectory(dir);
      const all = await loadAll(dir);
      const engine = all.some((s) => s.manifest) ? await pageEngineFor(dir, o.engine) : null;
      const isoOrNull = (t: number | null) => (t === null ? null : new Date(t).toISOString());
      const rows = [];
      for (const s of all) {
        const m = s.manifest;
        if (!m || !engine) {
          rows.push({ id: s.id, error: s.error!.message });
          continue;
        }
        const span = await snapshotCommitSpan(engine, dir, m).catch((e: Error) => ({ error: e.message }));
        const commit = (c: { lsn: number; txId: number; time: number | null } | null) => (c ? { lsn: c.lsn, txId: c.txId, time: isoOrNull(c.time) } : null);
        rows.push({
          id: s.id, kind: m.kind, base: m.baseId, startLsn: m.startLsn, endLsn: m.endLsn, pages: m.pagesCopied, bytes: m.chunks.reduce((n, c) => n + c.bytes, 0),
          startedAt: new Date(m.startedAt).toISOString(), finishedAt: new Date(m.finishedAt).toISOString(),
          walFromLsn: m.walFromLsn,
          ...('error' in span ? { commitsError: span.error } : { firstCommit: commit(span.first), lastCommit: commit(span.last), commitsWithoutTime: span.untimed }),
        });
      }
      if (o.json) return json(rows);
      if (rows.length === 0) return print(`no snapshots in ${dir}`);
      for (const r of rows) {
        if ('error' in r) {
          print(`${r.id}  UNREADABLE: ${r.error}`);
          continue;
        }
        const when = (c: { time: string | null } | null | undefined) => (c ? (c.time ?? 'time unknown') : '');
        const commits = 'commitsError' in r ? `commits unreadable: ${r.commitsError}` : r.firstCommit ? `commits ${when(r.firstCommit)} .. ${when(r.lastCommit)} (LSN ${r.firstCommit.lsn}..${r.lastCommit!.lsn})` : 'no commit in its WAL';
        print(`${r.id}  ${r.kind.padEnd(11)} LSN ${r.startLsn}..${r.endLsn}  ${r.pages} pages  ${r.bytes} bytes  ${r.startedAt} .. ${r.finishedAt}  ${commits}${r.base ? `  base ${r.base}` : ''}`);
      }
    });

  snap
    .command('verify')
    .description('decompress every chunk and WAL file, check every page and manifest; exit 4 on damage')
    .argument('<dir>', 'the snapshot directory')
    .option('--engine <name>', 'the storage engine of the snapshotted store (default: pagestore)')
    .option('--json', 'print JSON')
    .option('--no-progress', 'no progress bar')
    .addHelpText('after', `\nExit codes: 0 everything verifies; 4 damage found (each problem is named, RA_ERR_SNAPSHOT_CORRUPT); 2 bad usage,\nor <dir> holds no snapshot and no archived WAL.${JSON_ERROR_HELP} (damage: that "error" member in the result)`)
    .action(async (dir: string, o: { engine?: string; json?: boolean; progress?: boolean }) => {
      const [{ pageEngineFor }, { verifySnapshots }] = await Promise.all([import('./engines.js'), import('../plugins/snapshot-manager/verify.js')]);
      const engine = await pageEngineFor(dir, o.engine);
      const bar = ProgressBar.forStderr(o.progress !== false);
      const r = await verifySnapshots(engine, dir, (d, t) => bar?.update('verify', d, t, ' files')).finally(() => bar?.clear());
      const damage = r.problems.length > 0 ? raError('RA_ERR_SNAPSHOT_CORRUPT', `${dir}: ${r.problems.length} problem(s) found by verify`) : undefined;
      if (damage) failAfterOutput(damage);
      if (o.json) json(await withFailure(r, damage));
      else {
        print(`${r.snapshots} snapshot(s), ${r.chunks} chunk(s), ${r.pages} page(s), ${r.walFiles} WAL file(s), ${r.bytes} bytes checked`);
        for (const p of r.problems) print(`BAD ${p.where}${p.file ? ` ${p.file}` : ''}${p.pageId !== undefined ? ` page ${p.pageId}` : ''}: ${p.problem}`);
        print(r.problems.length === 0 ? 'all good' : `${r.problems.length} problem(s)`);
      }
    });

  snap
    .command('prune')
    .description('delete old snapshots and archived WAL, never what a kept snapshot or the WAL chain needs; remove temporary directories of killed snapshot runs')
    .argument('<dir>', 'the snapshot directory')
    .requiredOption('--keep-full <n>', 'full snapshots to keep', nonNegativeInt('--keep-full'))
    .requiredOption('--keep-incremental <n>', 'incremental snapshots to keep', nonNegativeInt('--keep-incremental'))
    .option('--max-age <duration>', 'also drop snapshots older than this (e.g. 7d), unless a kept one needs them')
    .option('--dry-run', 'only say what would be deleted')
    .option('--engine <name>', 'the storage engine of the snapshotted store (default: pagestore)')
    .option('--json', 'print JSON')
    .addHelpText('after', `\nExit codes: 0 pruned (or nothing to prune, which it says); 2 bad usage, or <dir> does not exist or is\nnot a directory; 1 an I/O error.${JSON_ERROR_HELP}`)
    .action(async (dir: string, o: { keepFull: number; keepIncremental: number; maxAge?: string; dryRun?: boolean; engine?: string; json?: boolean }) => {
      // --max-age is parsed here rather than by commander, so that --help never loads the unit parsers.
      const { parseDuration } = await import('../core/config/units.js');
      const maxAgeMs = o.maxAge === undefined ? undefined : parseDuration(o.maxAge);
      if (o.maxAge !== undefined && maxAgeMs === undefined) throw raError('RA_ERR_USAGE', `--max-age must be a duration like 12h or 7d (got "${o.maxAge}")`);
      const [{ pageEngineFor }, { pruneSnapshots }, { describeLeftovers }] = await Promise.all([import('./engines.js'), import('../plugins/snapshot-manager/prune.js'), import('../plugins/snapshot-manager/leftovers.js')]);
      assertDirectory(dir);
      const engine = await pageEngineFor(dir, o.engine);
      const r = await pruneSnapshots(dir, { engine, keepFull: o.keepFull, keepIncremental: o.keepIncremental, ...(maxAgeMs !== undefined ? { maxAgeMs } : {}), dryRun: Boolean(o.dryRun) });
      if (o.json) return json(r);
      if (r.deleted.length === 0 && r.walSegmentsDeleted.length === 0 && r.leftovers.removed.length === 0) {
        return print(`nothing to prune in ${dir}: every snapshot is within --keep-full ${o.keepFull}, --keep-incremental ${o.keepIncremental}${o.maxAge ? ` and --max-age ${o.maxAge}` : ''} or needed by one that is (kept ${r.kept.length})`);
      }
      print(`${o.dryRun ? 'would delete' : 'deleted'} ${r.deleted.length} snapshot(s)${r.deleted.length ? `: ${r.deleted.join(', ')}` : ''}; ${r.walSegmentsDeleted.length} archived WAL segment(s); kept ${r.kept.length}`);
      if (r.leftovers.removed.length > 0) print(describeLeftovers(r.leftovers.removed, o.dryRun ? 'would remove' : 'removed'));
    });
}

/**
 * A snapshot directory that is not there is a mistake (a typo, an unmounted disk) to say, exit 2
 * as verify does, not "no snapshots" or "nothing to prune" with exit 0.
 */
function assertDirectory(dir: string): void {
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) throw raError('RA_ERR_SNAPSHOT_INVALID', `${dir} does not exist or is not a directory`);
}

function positiveInt(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw raError('RA_ERR_USAGE', `${flag} must be a positive integer (got "${v}")`);
    return n;
  };
}

function nonNegativeInt(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw raError('RA_ERR_USAGE', `${flag} must be a non-negative integer (got "${v}")`);
    return n;
  };
}
