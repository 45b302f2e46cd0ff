/**
 * `recovery-agent recover --store DIR`: crash recovery of a store no process has open —
 * redo of what was committed, rollback of what was not — then prints what it did.
 */
import type { Command } from 'commander';
import { raError } from '../core/errors.js';

export function registerRecoverCommand(program: Command): void {
  program
    .command('recover')
    .description('recover a store after a crash: redo committed changes, roll back unfinished transactions, checkpoint')
    .requiredOption('-s, --store <dir>', 'the store directory')
    .option('--json', 'print the statistics as JSON')
    .option('-w, --workers <n>', 'worker threads for parallel redo (default: CPU count)', parsePositiveInt)
    .option('--serial', 'redo on one thread (the baseline)')
    .addHelpText('after', '\nExit codes: 0 recovered, 2 not a store or bad usage, 3 the store is open by a live process, 4 WAL or page corruption.\nWith --json a failure also writes {"error":{"code","message","exitCode"}} on stdout.')
    .action(async (opts: { store: string; json?: boolean; workers?: number; serial?: boolean }) => {
      // The pool first, its workers loading the redo task while this thread loads the rest:
      // their start-up then overlaps the imports instead of recovery (WorkerPool `preload`).
      const [{ WorkerPool }, { redoStreamTask }] = await Promise.all([import('../core/workerPool.js'), import('../plugins/pagestore/redoStreamTaskRef.js')]);
      const pool = opts.serial ? undefined : new WorkerPool({ threads: opts.workers, preload: redoStreamTask });
      try {
        const [{ readArchiveLink }, { recover }, { walArchiver }, { pageEngineFor }] = await Promise.all([
          import('../plugins/pagestore/archiveLink.js'),
          import('../plugins/pagestore/recovery.js'),
          import('../plugins/snapshot-manager/walArchive.js'),
          import('./engines.js'),
        ]);
        // A store that archives its WAL is archived before recovery recycles any of it.
        const remembered = await readArchiveLink(opts.store).catch(() => null);
        const archiver = remembered ? walArchiver(await pageEngineFor(opts.store), remembered) : undefined;
        const stats = await recover(opts.store, { ...(pool ? { pool } : {}), ...(archiver ? { archiver } : {}), serialRedo: Boolean(opts.serial) });
        if (opts.json) {
          process.stdout.write(JSON.stringify(stats, null, 2) + '\n');
          return;
        }
        const p = stats.passes;
        process.stdout.write(
          [
            `recovered ${opts.store} in ${stats.durationMs} ms`,
            `  transactions rolled back  ${stats.transactionsRolledBack}`,
            `  records redone            ${stats.recordsRedone} (${stats.recordsSkipped} already on disk), on ${stats.redoWorkers} thread(s)`,
            `  records undone            ${stats.recordsUndone}`,
            `  WAL read                  ${stats.walBytesRead} bytes, ${stats.walRecordsScanned} records, LSN ${stats.redoLsn}..${stats.endLsn}`,
            `  torn tail                 ${stats.tornTail ? `at LSN ${stats.tornTail.lsn} (${stats.tornTail.reason}), cut` : 'none'}`,
            `  passes (ms)               analysis ${p.analysisMs}, redo ${p.redoMs}, undo ${p.undoMs}, checkpoint ${p.checkpointMs}`,
          ].join('\n') + '\n',
        );
      } finally {
        await pool?.close();
      }
    });
}

function parsePositiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw raError('RA_ERR_USAGE', `--workers must be a positive integer (got "${v}")`);
  return n;
}
