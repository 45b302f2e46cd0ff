/**
 * `recovery-agent replica init --from-snapshot`: the replica store from a snapshot of its
 * primary's store and the WAL archive (plugins/snapshot-manager/replicaRestore.ts), for a new
 * replica or one too far behind, without the primary's checkpoint and page reads a base copy
 * costs. Before the result replaces anything, the primary is asked (one `hello`, nothing
 * streamed) whether it still has its log at the archive's end: a replica that would only be
 * told "too far behind" is not worth a store, and the operator should hear it now.
 */
import type { PageEngine, ReplicaPosition } from '../core/contracts/PageEngine.js';
import { describeError, isRaError, raError } from '../core/errors.js';
import type { AgentConfig } from '../core/config/schema.js';
import type { ReplicaConfig } from '../plugins/replication/configSection.js';
import { splitHostPort, type ReplicaInitOptions } from './replicaCommand.js';

type StoreEntry = AgentConfig['stores'][number];

/** How long the primary has to answer the probe's `hello` (it refuses at once; it accepts with a frame within its keepalive, 1 s). */
const kProbeMs = 10_000;

export async function replicaFromSnapshot(engine: PageEngine, s: StoreEntry, r: ReplicaConfig, opts: ReplicaInitOptions): Promise<void> {
  const [{ restoreReplica }, { describeLeftovers }, { WorkerPool }, { ProgressBar }, { readSecret }] = await Promise.all([
    import('../plugins/snapshot-manager/replicaRestore.js'),
    import('../plugins/snapshot-manager/leftovers.js'),
    import('../core/workerPool.js'),
    import('./progressBar.js'),
    import('../plugins/replication/secret.js'),
  ]);
  const snapshotDir = opts.snapshotDir ?? (s as { snapshots?: { dir?: string } }).snapshots?.dir;
  if (!snapshotDir) throw raError('RA_ERR_USAGE', `--from-snapshot needs the primary store's snapshot directory: pass --snapshot-dir D, or set \`snapshots: { dir: D }\` on store "${s.id}"`);
  const secret = readSecret(s.id, r);
  const id = r.id ?? s.id;
  const bar = ProgressBar.forStderr(!opts.json);
  const warn = (message: string) => {
    bar?.clear();
    if (!opts.json) process.stderr.write(`recovery-agent: warning: ${message}\n`);
  };
  const warnings: string[] = [];
  const pool = new WorkerPool({});
  try {
    const out = await restoreReplica({
      engine,
      snapshotDir,
      to: s.path,
      force: Boolean(opts.force),
      pool,
      ...(opts.snapshot !== undefined ? { snapshot: opts.snapshot } : {}),
      onProgress: (phase, d, t) => bar?.update(`replica from snapshot: ${phase}`, d, t),
      onWarning: (m) => {
        warnings.push(m);
        warn(m);
      },
      check: async (pos) => {
        const problem = await probePrimary(r.primary, secret, id, pos);
        if (!problem) return;
        warnings.push(problem);
        warn(problem);
      },
    });
    bar?.clear();
    const result = { store: s.id, path: s.path, primary: r.primary, from: 'snapshot', snapshotDir, ...out, warnings };
    if (opts.json) return void process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    process.stdout.write(
      [
        `replica ${s.id} made at ${s.path} from snapshot ${out.snapshots.join(' + ')} and the WAL archive in ${snapshotDir}`,
        `  pages              ${out.pagesRestored}; WAL segments ${out.walSegments}`,
        `  redo from LSN      ${out.redoLsn}; log ends at LSN ${out.endLsn} (the archive's end: the primary streams from here)`,
        `  epoch              ${out.epoch}`,
        ...(out.replaced ? [`  old store moved to ${out.replaced}`] : []),
        ...(out.leftoversRemoved.length > 0 ? [`  leftovers          ${describeLeftovers(out.leftoversRemoved)}`] : []),
        '  the agent streams from here when it runs',
      ].join('\n') + '\n',
    );
  } finally {
    bar?.clear();
    await pool.close();
  }
}

/**
 * Says `hello` at the staged replica's position and waits for the primary's first answer: a
 * frame (catch-up or keepalive) means it has the log there; a refusal is thrown — "too far
 * behind" (it retired the segment the archive ends in) with what to do instead, any other
 * (divergence: the snapshot is not of this primary's store; authentication) as it is. A primary
 * that cannot be reached, or says nothing in time, is no reason to throw the restore away: the
 * agent's own `hello` decides when it connects; returns the warning to give.
 */
async function probePrimary(primary: string, secret: string, id: string, pos: ReplicaPosition): Promise<string | null> {
  const [{ connectChannel, helloFrame }, { NO_CLUSTER_EPOCH }] = await Promise.all([import('../core/replication/protocol.js'), import('../plugins/replication/replicaSession.js')]);
  const [host, port] = splitHostPort(primary);
  const epoch = pos.epoch > 0 ? pos.epoch : NO_CLUSTER_EPOCH;
  let ch;
  try {
    ch = await connectChannel({ host, port, secret, epoch });
  } catch (err) {
    if (isRaError(err, 'RA_ERR_REPL_AUTH')) throw err;
    return `could not ask the primary ${primary} whether it still has its log at LSN ${pos.durableLsn} (${describeError(err)}); the replica agent will learn it when it connects`;
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    ch.send(helloFrame({ epoch, lsn: pos.durableLsn, rolling: pos.rolling, id: `${id} (replica init probe)` }));
    const answer = await Promise.race([ch.next().then(() => 'accepted' as const), new Promise<'silent'>((resolve) => (timer = setTimeout(() => resolve('silent'), kProbeMs)))]);
    if (answer === 'silent') return `the primary ${primary} did not answer the replica's hello at LSN ${pos.durableLsn} within ${kProbeMs / 1000} s; the replica agent will learn whether it has the log there when it connects`;
    return null;
  } catch (err) {
    if (/too far behind/i.test(describeError(err))) {
      throw raError('RA_ERR_REPL_PROTOCOL', `too far behind even from the archive: the primary ${primary} no longer has its log at LSN ${pos.durableLsn}, where the WAL archive ends (the segments after it are neither archived nor kept by the primary); take a newer snapshot or use the base copy (replica init without --from-snapshot)`, {
        cause: err,
        details: { lsn: pos.durableLsn },
      });
    }
    throw err;
  } finally {
    clearTimeout(timer);
    ch.close();
  }
}
