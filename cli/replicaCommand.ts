/**
 * `recovery-agent replica init --store ID [--config FILE] [--force] [--json]`: makes the replica
 * store `ID` of the config from a base copy of its primary (plugins/replication/DESIGN.md, "A new
 * replica"), as the agent does by itself for a replica store that does not exist. It never
 * overwrites a store: with `--force` an existing one (not open by a live process) is moved aside
 * to `<path>.replaced-<time>` first, never deleted. The agent then streams from where the copy
 * ends. With `--from-snapshot` the store is made from a snapshot of the primary's store and its
 * WAL archive instead, with no load on the primary (replicaSnapshot.ts).
 */
import type { Command } from 'commander';
import { raError } from '../core/errors.js';

export interface ReplicaInitOptions {
  store: string;
  config?: string;
  force?: boolean;
  json?: boolean;
  fromSnapshot?: boolean;
  snapshot?: string;
  snapshotDir?: string;
}

export function registerReplicaCommands(program: Command): void {
  const replica = program.command('replica').description('replication replicas: make one from its primary');
  replica
    .command('init')
    .description('make a replica store from a base copy of its primary (its config\'s `replication: { role: replica }`), or from a snapshot and the WAL archive (--from-snapshot), to stream from there')
    .requiredOption('-s, --store <id>', 'the replica store\'s id in the config')
    .option('-c, --config <file>', 'the YAML config file (default: $RECOVERY_AGENT_CONFIG, else /etc/recovery-agent/agent.yaml)')
    .option('--from-snapshot', 'restore a snapshot of the primary\'s store and its WAL archive instead (no load on the primary), then stream from the archive\'s end')
    .option('--snapshot <id>', 'with --from-snapshot: the snapshot to start from (default: the newest)')
    .option('--snapshot-dir <dir>', 'with --from-snapshot: the primary store\'s snapshot directory as this host sees it (default: the store\'s `snapshots.dir` in the config)')
    .option('--force', 'move an existing store aside (<path>.replaced-<time>) instead of refusing')
    .option('--json', 'print the outcome as JSON')
    .addHelpText(
      'after',
      '\nExit codes: 0 the replica store is made; 2 bad usage, a store that is not a replica, or a store already there\n(without --force); 3 the store is open by a live process; 1 the primary could not be reached or the copy failed\n(nothing is left where the store belongs); with --from-snapshot, a failure (no usable snapshot, a WAL gap, the primary\nno longer has the log at the archive\'s end) leaves any old store in place. With --json a failure also writes\n{"error":{"code","message","exitCode"}} on stdout.',
    )
    .action(async (opts: ReplicaInitOptions) => replicaInit(opts));
}

async function replicaInit(opts: ReplicaInitOptions): Promise<void> {
  const [{ configFileFor }, { loadConfigFile }, { pageEngineNamed }, { readSecret }, { connectChannel }, { NO_CLUSTER_EPOCH }, { ProgressBar }, { rename }, { existsSync }] = await Promise.all([
    import('./runCommand.js'),
    import('./config.js'),
    import('./engines.js'),
    import('../plugins/replication/secret.js'),
    import('../core/replication/protocol.js'),
    import('../plugins/replication/replicaSession.js'),
    import('./progressBar.js'),
    import('node:fs/promises'),
    import('node:fs'),
  ]);
  const cfg = loadConfigFile(await configFileFor(opts.config));
  const s = cfg.stores.find((x) => x.id === opts.store);
  if (!s) throw raError('RA_ERR_USAGE', `no store "${opts.store}" in ${cfg.source ?? 'the config'} (stores: ${cfg.stores.map((x) => x.id).join(', ') || 'none'})`);
  const r = s.replication;
  if (r?.role !== 'replica') throw raError('RA_ERR_USAGE', `store "${s.id}" is not a replica (its config has no \`replication: { role: replica }\`)`);
  const engine = await pageEngineNamed(s.engine);
  if (opts.fromSnapshot) {
    const { replicaFromSnapshot } = await import('./replicaSnapshot.js');
    return replicaFromSnapshot(engine, s, r, opts);
  }
  if (opts.snapshot !== undefined || opts.snapshotDir !== undefined) throw raError('RA_ERR_USAGE', '--snapshot and --snapshot-dir go with --from-snapshot');
  let replaced: string | null = null;
  if (existsSync(s.path)) {
    if (!opts.force) throw raError('RA_ERR_USAGE', `${s.path} already exists; replica init never overwrites a store (--force moves it aside to ${s.path}.replaced-<time>)`);
    const holder = await engine.files.lockHolder(s.path);
    if (holder !== null) throw raError('RA_ERR_STORE_LOCKED', `${s.path} is open by process ${holder} (stop the agent that replicates it first)`, { details: { pid: holder } });
    replaced = `${s.path}.replaced-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    await rename(s.path, replaced);
  }
  const [host, port] = splitHostPort(r.primary);
  const ch = await connectChannel({ host, port, secret: readSecret(s.id, r) });
  const bar = ProgressBar.forStderr(!opts.json);
  let lastTenth = -1;
  try {
    const out = await engine.replica.initReplica(s.path, ch, {
      id: r.id ?? s.id,
      epoch: NO_CLUSTER_EPOCH,
      onProgress: ({ pagesCopied, pagesTotal }) => {
        if (bar) return bar.update('base copy', pagesCopied, pagesTotal, ' pages');
        // Not a terminal: a line every tenth, for logs.
        const tenth = Math.floor((pagesCopied * 10) / Math.max(1, pagesTotal));
        if (!opts.json && tenth !== lastTenth) {
          lastTenth = tenth;
          process.stderr.write(`base copy: ${pagesCopied}/${pagesTotal} pages\n`);
        }
      },
    });
    bar?.clear();
    const result = { store: s.id, path: s.path, primary: r.primary, ...out, replaced };
    if (opts.json) {
      process.stdout.write(JSON.stringify(result, null, 2) + '\n');
      return;
    }
    process.stdout.write(
      [
        `replica ${s.id} made at ${s.path} from a base copy of ${r.primary}`,
        `  pages              ${out.pages}`,
        `  redo from LSN      ${out.redoLsn}, consistent from LSN ${out.consistentLsn}`,
        `  epoch              ${out.epoch}`,
        ...(replaced ? [`  old store moved to ${replaced}`] : []),
        '  the agent streams from here when it runs',
      ].join('\n') + '\n',
    );
  } finally {
    bar?.clear();
    ch.close();
  }
}

export function splitHostPort(v: string): [string, number] {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(v);
  if (!m) throw raError('RA_ERR_USAGE', `bad primary address "${v}"`);
  return [m[1]!, Number(m[2])];
}
