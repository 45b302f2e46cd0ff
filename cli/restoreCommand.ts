/**
 * `recovery-agent restore --snapshot-dir D --to DIR [--lsn N | --time T] [--force]`: rebuilds a
 * store from snapshots and archived WAL, to the end of the WAL chain or to a past point.
 */
import type { Command } from 'commander';
import { raError } from '../core/errors.js';
import { ProgressBar } from './progressBar.js';

const HELP = `
Target: with neither --lsn nor --time, as far as the WAL chain goes. --time T restores to the
last commit at or before T: commit records carry the wall-clock time (ms) the commit was issued,
replay stops right after that commit, and transactions that committed later are rolled back.
T must be at or after the oldest snapshot's end, and some commit in the WAL from the snapshot
used must be at or before T (else exit 2); a log written before commits carried their time
cannot be restored by time (restore it by --lsn). --lsn N (unchanged): every record ending at
or before N is replayed, so every transaction whose commit record ends by N stays committed and
the rest are rolled back (N must be at or after some snapshot's end LSN, its consistency
point). --exclusive leaves out a commit exactly at the target (time T, or a record ending at N).
The restore names the commit it stopped at: LSN, transaction id and time ("stoppedAt" in --json).

The target directory must be empty or absent unless --force; a store whose lock is held by a
live process is never replaced. The restore is built beside the target (<to>.restoring-<owner>)
and moved into place only after recovery and a check of every page, so a failure leaves the
target untouched; staging directories of earlier restores to it that were killed are removed.

A snapshot whose manifest cannot be read is skipped with a warning naming it (and listed under
"skipped" with --json), unless the chain the restore needs holds it: then the restore refuses.

Exit codes: 0 restored; 2 bad usage, no usable snapshot, or a non-empty target without --force;
3 the target store is open by a live process; 4 a damaged snapshot, WAL or page, or a gap in
the WAL chain (the message names the missing LSN range). With --json a failure also writes
{"error":{"code","message","exitCode"}} on stdout.`;

export function registerRestoreCommand(program: Command): void {
  program
    .command('restore')
    .description('restore a store from snapshots + archived WAL, to the latest state or to a past LSN or time')
    .requiredOption('-d, --snapshot-dir <dir>', 'the snapshot directory')
    .requiredOption('-t, --to <dir>', 'where the restored store goes')
    .option('--lsn <n>', 'restore to this LSN', (v) => {
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n < 0) throw raError('RA_ERR_USAGE', `--lsn must be a non-negative integer (got "${v}")`);
      return n;
    })
    .option('--time <iso>', 'restore to the last commit at or before this time (ISO 8601 or ms since epoch)', (v) => {
      const t = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
      if (!Number.isFinite(t)) throw raError('RA_ERR_USAGE', `--time must be an ISO 8601 time or ms since epoch (got "${v}")`);
      return t;
    })
    .option('--exclusive', 'stop before a commit exactly at the target (its time = --time, or its record ending at --lsn)')
    .option('--force', 'replace whatever is at --to, a store or not (never a store a live process holds)')
    .option('-w, --workers <n>', 'worker threads for redo (default: CPU count)', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw raError('RA_ERR_USAGE', `--workers must be a positive integer (got "${v}")`);
      return n;
    })
    .option('--engine <name>', 'the storage engine of the restored store (default: pagestore)')
    .option('--json', 'print the result as JSON')
    .option('--no-progress', 'no progress bar')
    .addHelpText('after', HELP)
    .action(async (o: { snapshotDir: string; to: string; lsn?: number; time?: number; exclusive?: boolean; force?: boolean; workers?: number; engine?: string; json?: boolean; progress?: boolean }) => {
      if (o.lsn !== undefined && o.time !== undefined) throw raError('RA_ERR_USAGE', 'restore takes --lsn or --time, not both');
      if (o.exclusive && o.lsn === undefined && o.time === undefined) throw raError('RA_ERR_USAGE', '--exclusive needs --lsn or --time');
      const [{ pageEngineFor }, { describeLeftovers }, { restoreSnapshot }, { WorkerPool }] = await Promise.all([
        import('./engines.js'),
        import('../plugins/snapshot-manager/leftovers.js'),
        import('../plugins/snapshot-manager/restore.js'),
        import('../core/workerPool.js'),
      ]);
      const engine = await pageEngineFor(o.to, o.engine);
      const pool = new WorkerPool({ threads: o.workers });
      const bar = ProgressBar.forStderr(o.progress !== false);
      try {
        const r = await restoreSnapshot({
          engine, snapshotDir: o.snapshotDir, to: o.to, force: Boolean(o.force), pool,
          ...(o.lsn !== undefined ? { lsn: o.lsn } : {}), ...(o.time !== undefined ? { time: o.time } : {}), exclusive: Boolean(o.exclusive),
          onProgress: (phase, d, t) => bar?.update(`restore ${phase}`, d, t),
          onWarning: (message) => {
            bar?.clear();
            process.stderr.write(`recovery-agent: warning: ${message}\n`);
          },
        });
        bar?.clear();
        if (o.json) return void process.stdout.write(JSON.stringify(r, null, 2) + '\n');
        process.stdout.write([
          `restored ${o.to} from ${r.snapshots.join(' + ')} in ${r.durationMs} ms`,
          `  pages restored  ${r.pagesRestored}; WAL segments ${r.walSegments}; records redone ${r.recordsRedone}; transactions rolled back ${r.transactionsRolledBack}`,
          `  stopped at      ${r.stoppedAt ? `commit at LSN ${r.stoppedAt.lsn} (transaction ${r.stoppedAt.txId}, ${r.stoppedAt.time !== null ? new Date(r.stoppedAt.time).toISOString() : 'time unknown: the log predates commit times'})` : 'no commit in the replayed WAL'}`,
          `  end LSN         ${r.endLsn}${r.targetLsn !== null ? ` (target ${r.targetLsn})` : ''}; ${r.pagesVerified} pages verified`,
          ...(r.leftoversRemoved.length > 0 ? [`  leftovers       ${describeLeftovers(r.leftoversRemoved)}`] : []),
        ].join('\n') + '\n');
      } finally {
        bar?.clear();
        await pool.close();
      }
    });
}
