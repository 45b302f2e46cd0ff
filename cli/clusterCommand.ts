/**
 * `recovery-agent cluster status [--json]`: the cluster as one member's agent sees it, from its
 * `GET /cluster` (members, roles, epochs, lag, leader — like `patronictl list`). Any member
 * answers for the whole cluster: the table comes from the member keys in etcd.
 */
import type { Command } from 'commander';
import { raError } from '../core/errors.js';
import type { ClusterDoc } from '../plugins/cluster/routes.js';
import { failAfterOutput, withFailure } from './commandFailure.js';

export function registerClusterCommands(program: Command): void {
  const cluster = program.command('cluster').description('the cluster this agent is a member of (etcd election, issue #15)');
  cluster
    .command('status')
    .description('list the members of the cluster, their roles, epochs and lag (from a running agent\'s GET /cluster)')
    .option('-c, --config <file>', 'read the API address from this config file')
    .option('-u, --url <url>', 'the API base URL (default http://127.0.0.1:9464)')
    .option('--json', 'print the raw /cluster document')
    .addHelpText('after', '\nExit codes: 0 the cluster has a leader; 1 it has none (RA_ERR_CLUSTER_NO_LEADER, after the table) or no agent\nanswers (RA_ERR_AGENT_UNREACHABLE); 2 bad usage, or the agent is in no cluster (RA_ERR_CLUSTER_NOT_MEMBER). With --json a\nfailure also writes {"error":{"code","message","exitCode"}} on stdout (no leader: that "error" member in its document).')
    .action(async (opts: { config?: string; url?: string; json?: boolean }) => {
      await import('../plugins/cluster/errors.js'); // this command's codes (loaded here: --help loads nothing)
      const config = opts.config ? (await import('./config.js')).loadConfigFile(opts.config) : undefined;
      const base = opts.url ?? (config ? `http://${config.agent.http.listen}` : 'http://127.0.0.1:9464');
      let res: Response;
      try {
        res = await fetch(new URL('/cluster', base), { signal: AbortSignal.timeout(5000) });
      } catch (err) {
        throw raError('RA_ERR_AGENT_UNREACHABLE', `no agent answers at ${base} (${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}): is it running?`);
      }
      if (res.status === 404) throw raError('RA_ERR_CLUSTER_NOT_MEMBER', `the agent at ${base} is in no cluster (no cluster: section in its config)`);
      if (!res.ok) throw raError('RA_ERR_AGENT_STATE', `the agent at ${base} answered HTTP ${res.status} to GET /cluster`);
      const doc = (await res.json()) as ClusterDoc;
      const leaderless = doc.leader === null ? raError('RA_ERR_CLUSTER_NO_LEADER', `cluster ${doc.cluster} has no leader (${doc.member}: ${doc.self.reason})`) : undefined;
      if (leaderless) failAfterOutput(leaderless);
      if (opts.json) process.stdout.write(JSON.stringify(await withFailure(doc, leaderless), null, 2) + '\n');
      else process.stdout.write(clusterTable(doc));
    });
}

/** The members as a table, `patronictl list`'s way. */
export function clusterTable(doc: ClusterDoc): string {
  const head = ['Member', 'Host', 'Role', 'Health', 'Epoch', 'Durable LSN', 'Applied LSN', 'Lag (bytes)'];
  const rows = doc.members.map((m) => [
    m.member + (m.member === doc.member ? ' *' : ''),
    m.httpAddress ?? '-',
    m.role === 'leader' ? 'Leader' : m.streaming ? 'Replica (streaming)' : 'Replica',
    m.health,
    String(m.epoch),
    String(m.durableLsn),
    String(m.appliedLsn),
    m.lagBytes === null ? '-' : String(m.lagBytes),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const rule = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const title = `Cluster: ${doc.cluster} (${doc.leader ? `leader ${doc.leader.member}, epoch ${doc.leader.epoch}` : 'NO LEADER'}; * = the member asked)`;
  const out = [title, rule, line(head), rule, ...rows.map(line), rule];
  if (!doc.self.eligible && !doc.self.leader) out.push(`${doc.member} may not lead: ${doc.self.reason}`);
  return out.join('\n') + '\n';
}
