/**
 * `recovery-agent repair --store DIR --page N[,N…] [--snapshot-dir D]`: rewrites corrupt pages
 * from a verified copy — the owner's cached copy through the store's control socket when an
 * application has the store open, else — a replication primary's — a copy from its lowest-lag
 * replica (asked through the owner), else the newest snapshot's image plus the WAL — the
 * `repair-page` healing action run by hand (plugins/data-repairer).
 */
import path from 'node:path';
import type { Command } from 'commander';
import type { PageRepairOutcome } from '../plugins/data-repairer/repair.js';
import { describeError, raError } from '../core/errors.js';

function parsePages(v: string): number[] {
  const pages = v.split(',').map((x) => Number(x.trim()));
  if (pages.length === 0 || pages.some((n) => !Number.isInteger(n) || n < 0)) throw raError('RA_ERR_USAGE', `--page expects page ids, comma-separated (got "${v}")`);
  return pages;
}

export function registerRepairCommand(program: Command): void {
  program
    .command('repair')
    .description('repair corrupt pages of a store from its owner\'s memory, a replica (primaries) or a snapshot + WAL; never writes a page that does not verify')
    .requiredOption('-s, --store <dir>', 'the store directory')
    .requiredOption('-p, --page <ids>', 'page ids to repair, comma-separated', parsePages)
    .option('-d, --snapshot-dir <dir>', 'the store\'s snapshot directory (snapshots + WAL archive)')
    .option('--engine <name>', 'the storage engine of the store (default: the one that recognises it, else pagestore)')
    .option('--json', 'print the outcome as JSON')
    .addHelpText('after', '\nExit codes: 0 every page repaired or already valid; 4 a page no source could rebuild (without --snapshot-dir,\nonly the owner\'s memory is a source); 3 the store is open by a process that serves no control socket; 2 bad usage\nor not a store. With --json a failure also writes {"error":{"code","message","exitCode"}} on stdout, after the outcome.')
    .action(async (opts: { store: string; page: number[]; snapshotDir?: string; engine?: string; json?: boolean }) => {
      const [{ pageEngineFor }, { repairPage }, { snapshotPageSource }, { replicaPageSource }] = await Promise.all([
        import('./engines.js'),
        import('../plugins/data-repairer/repair.js'),
        import('../plugins/snapshot-manager/index.js'),
        import('../plugins/replication/pageSource.js'),
      ]);
      const engine = await pageEngineFor(opts.store, opts.engine);
      // The page sources the CLI knows: the snapshot directory given (none: the source says so).
      const snapshotDir = opts.snapshotDir ? path.resolve(opts.snapshotDir) : undefined;
      // Without --snapshot-dir the source's own word ("no snapshots.dir", a config key) would
      // mislead at the command line: say which flag gives it.
      const snapshots = snapshotPageSource(() => snapshotDir);
      const source: typeof snapshots = snapshotDir ? snapshots : { ...snapshots, pageFor: (_store, pageId) => Promise.reject(raError('RA_ERR_REPAIR_NO_SOURCE', `page ${pageId} cannot be rebuilt from a snapshot: no --snapshot-dir given (the store's snapshot directory)`, { details: { pageId } })) };
      // A primary's replicas, through its live owner (a store that is none: nothing to say).
      const target = { store: opts.store, sources: [replicaPageSource(() => undefined), source] };
      const outcomes: PageRepairOutcome[] = [];
      const failed: Array<{ pageId: number; error: string }> = [];
      let firstError: unknown;
      for (const pageId of opts.page) {
        try {
          outcomes.push(await repairPage(engine, target, pageId));
        } catch (err) {
          firstError ??= err;
          failed.push({ pageId, error: describeError(err) });
        }
      }
      if (opts.json) {
        process.stdout.write(JSON.stringify({ repaired: outcomes, failed }, null, 2) + '\n');
      } else {
        for (const o of outcomes) {
          const how = o.result === 'already-valid' ? 'verifies already; nothing written' : `repaired from ${o.source === 'owner-cache' || !o.rebuilt ? "its owner's cached copy" : `${o.rebuilt.from} + ${o.rebuilt.recordsApplied} WAL record(s)`}`;
          process.stdout.write(`page ${o.pageId}: ${how} (${o.mode}, LSN ${o.lsn}, ${o.durationMs} ms)\n`);
        }
      }
      if (firstError) {
        if (!opts.json) for (const f of failed) process.stderr.write(`page ${f.pageId}: not repaired: ${f.error}\n`);
        throw firstError;
      }
    });
}
