/**
 * `recovery-agent cluster status [--json]`: the cluster as one member's agent sees it, from its
 * `GET /cluster` (members, roles, epochs, lag, leader — like `patronictl list`). Any member
 * answers for the whole cluster: the table comes from the member keys in etcd.
 *
 * `recovery-agent cluster switchover --to MEMBER [--timeout 30s] [--json]`: `POST
 * /cluster/switchover` on the agent asked; when it is not the leader, its answer names the
 * leader's API address and the request is sent there once (like `patronictl switchover`, which
 * any member can start).
 */
import type { Command } from 'commander';
import { raError } from '../core/errors.js';
import type { ClusterDoc } from '../plugins/cluster/routes.js';
import type { SwitchoverRecord } from '../plugins/cluster/switchover.js';
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
  cluster
    .command('switchover')
    .description('hand leadership to MEMBER with no acknowledged commit lost (POST /cluster/switchover on the leader)')
    .requiredOption('--to <member>', 'the member to lead next (a live, streaming replica)')
    .option('--timeout <duration>', 'how long the target may take to catch up, and again to take over', '30s')
    .option('-c, --config <file>', 'read the API address and token from this config file')
    .option('-u, --url <url>', 'the API base URL of any member (default http://127.0.0.1:9464); a replica forwards to the leader')
    .option('--json', 'print the switchover\'s record')
    .addHelpText('after', '\nNeeds the agent\'s token: RECOVERY_AGENT_TOKEN, or agent.http.token from --config.\nExit codes: 0 the target leads; 1 refused or not completed (RA_ERR_CLUSTER_SWITCHOVER: unknown or non-streaming\ntarget, not caught up within the timeout — the leader then resumed —, no takeover; RA_ERR_CLUSTER_NOT_LEADER: no\nleader to forward to) or no agent answers (RA_ERR_AGENT_UNREACHABLE); 2 bad usage or a missing or wrong token.\nWith --json a failure also writes {"error":{"code","message","exitCode"}} on stdout.')
    .action(async (opts: { to: string; timeout: string; config?: string; url?: string; json?: boolean }) => {
      await import('../plugins/cluster/errors.js');
      const { parseDuration } = await import('../core/config/units.js');
      let timeoutMs: number | undefined;
      try {
        timeoutMs = parseDuration(opts.timeout);
      } catch {
        timeoutMs = undefined;
      }
      if (timeoutMs === undefined || !(timeoutMs >= 100 && timeoutMs <= 600_000)) throw raError('RA_ERR_USAGE', `--timeout: expected a duration from 100ms to 10m such as 30s, got ${JSON.stringify(opts.timeout)}`);
      const config = opts.config ? (await import('./config.js')).loadConfigFile(opts.config) : undefined;
      const token = process.env.RECOVERY_AGENT_TOKEN || config?.agent.http.token;
      let base = opts.url ?? (config ? `http://${config.agent.http.listen}` : 'http://127.0.0.1:9464');
      let answer = await postSwitchover(base, opts.to, timeoutMs, token);
      if (answer.body.error?.code === 'RA_ERR_CLUSTER_NOT_LEADER' && answer.body.leader?.httpAddress) {
        const next = `http://${answer.body.leader.httpAddress}`;
        process.stderr.write(`${answer.body.error.message}: sending the switchover to ${next}\n`);
        base = next;
        answer = await postSwitchover(base, opts.to, timeoutMs, token);
      }
      const { status, body } = answer;
      const rec = body.switchover ?? null;
      const failure = status === 200 ? undefined : raError(body.error?.code === 'RA_ERR_CLUSTER_NOT_LEADER' ? 'RA_ERR_CLUSTER_NOT_LEADER' : 'RA_ERR_CLUSTER_SWITCHOVER', body.error?.message ?? `the agent at ${base} answered HTTP ${status}`);
      if (failure) failAfterOutput(failure);
      if (opts.json) process.stdout.write(JSON.stringify(await withFailure({ switchover: rec }, failure), null, 2) + '\n');
      else if (rec) process.stdout.write(switchoverText(rec));
    });
}

interface SwitchoverAnswer {
  status: number;
  body: { switchover?: SwitchoverRecord | null; error?: { code: string; message: string }; leader?: { member: string; httpAddress: string | null } | null };
}

async function postSwitchover(base: string, to: string, timeoutMs: number, token: string | undefined): Promise<SwitchoverAnswer> {
  let res: Response;
  try {
    res = await fetch(new URL('/cluster/switchover', base), {
      method: 'POST',
      // Two waits (catch-up, takeover) of up to timeoutMs each, and some slack.
      signal: AbortSignal.timeout(2 * timeoutMs + 10_000),
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ to, timeoutMs }),
    });
  } catch (err) {
    throw raError('RA_ERR_AGENT_UNREACHABLE', `no agent answers at ${base} (${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}): is it running?`);
  }
  if (res.status === 401 || res.status === 403) {
    throw raError('RA_ERR_USAGE', `the agent at ${base} refused ${token ? 'the token given' : 'a request without a token'} (HTTP ${res.status}): set RECOVERY_AGENT_TOKEN, or pass --config with its agent.http.token`);
  }
  if (res.status === 404 && !(res.headers.get('content-type') ?? '').includes('json')) throw raError('RA_ERR_CLUSTER_NOT_MEMBER', `the agent at ${base} is in no cluster`);
  let body: SwitchoverAnswer['body'];
  try {
    body = (await res.json()) as SwitchoverAnswer['body'];
  } catch {
    throw raError('RA_ERR_AGENT_STATE', `the agent at ${base} answered HTTP ${res.status} to POST /cluster/switchover, not JSON`);
  }
  if (res.status === 404 && body.error?.code !== 'RA_ERR_CLUSTER_SWITCHOVER') throw raError('RA_ERR_CLUSTER_NOT_MEMBER', `the agent at ${base} is in no cluster (no cluster: section in its config)`);
  return { status: res.status, body };
}

/** A switchover's steps, one a line. */
export function switchoverText(r: SwitchoverRecord): string {
  const head = r.state === 'done' ? `Switchover ${r.from} → ${r.to}: done (epoch ${r.fromEpoch} → ${r.toEpoch})` : `Switchover ${r.from} → ${r.to}: ${r.state.toUpperCase()}${r.error ? `: ${r.error.message}` : ''}`;
  return [head, ...r.steps.map((s) => `  ${s.at}  ${s.step}`)].join('\n') + '\n';
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
