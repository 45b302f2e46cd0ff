/**
 * `recovery-agent status`: what a running agent says about itself, from its HTTP API. /status
 * needs the agent's token once it has one: taken from RECOVERY_AGENT_TOKEN, else from the
 * config given with --config (never from the command line, where `ps` would show it).
 */
import type { Command } from 'commander';
import { raError } from '../core/errors.js';
import { failAfterOutput, withFailure } from './commandFailure.js';

interface StatusDoc {
  agent: { version: string; pid: number; uptimeSeconds: number; config: string | null };
  health: { healthy: boolean; reasons: string[] };
  plugins: Array<{ id: string; state: string; error?: { message: string } }>;
  openFailures: Array<{ failure: { kind: string; priority: string; subject: string }; state: string }>;
  recentRecoveries: Array<{ kind: string; subject: string; outcome: string; rtoMs: number; withinTarget: boolean; finishedAt: number }>;
  statistics: Record<string, number | null>;
  [section: string]: unknown;
}

export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description('print the status of a running agent (from its HTTP API)')
    .option('-c, --config <file>', 'read the API address from this config file')
    .option('-u, --url <url>', 'the API base URL (default http://127.0.0.1:9464)')
    .option('--json', 'print the raw status document')
    .addHelpText('after', '\nThe agent\'s token, once it has one, comes from RECOVERY_AGENT_TOKEN or else from --config.\nExit codes: 0 healthy; 1 unhealthy (RA_ERR_AGENT_UNHEALTHY, after the status) or no agent answers\n(RA_ERR_AGENT_UNREACHABLE); 2 bad usage (or a missing or wrong token). With --json a failure also writes\n{"error":{"code","message","exitCode"}} on stdout (an unhealthy status: that "error" member in its document).')
    .action(async (opts: { config?: string; url?: string; json?: boolean }) => {
      const config = opts.config ? (await import('./config.js')).loadConfigFile(opts.config) : undefined;
      const base = opts.url ?? (config ? `http://${config.agent.http.listen}` : 'http://127.0.0.1:9464');
      const token = process.env.RECOVERY_AGENT_TOKEN || config?.agent.http.token;
      let res: Response;
      try {
        res = await fetch(new URL('/status', base), { signal: AbortSignal.timeout(5000), headers: token ? { authorization: `Bearer ${token}` } : {} });
      } catch (err) {
        // One line: fetch's own "fetch failed" says nothing; the reason under it, briefly.
        throw raError('RA_ERR_AGENT_UNREACHABLE', `no agent answers at ${base}${unreachableWhy(err)}: is it running?`);
      }
      if (res.status === 401) {
        throw raError('RA_ERR_USAGE', `the agent at ${base} refused ${token ? 'the token given' : 'a request without a token'} (HTTP 401): set RECOVERY_AGENT_TOKEN, or pass --config with its agent.http.token`);
      }
      if (!res.ok) throw raError('RA_ERR_AGENT_STATE', `the agent at ${base} answered HTTP ${res.status} to GET /status`);
      let doc: StatusDoc;
      try {
        doc = (await res.json()) as StatusDoc;
      } catch (err) {
        throw raError('RA_ERR_AGENT_STATE', `the agent at ${base} sent a /status that is not JSON: ${(err as Error).message}`, { cause: err });
      }
      const unhealthy = doc.health.healthy ? undefined : raError('RA_ERR_AGENT_UNHEALTHY', `the agent at ${base} is unhealthy${doc.health.reasons.length ? `: ${doc.health.reasons.join('; ')}` : ''}`);
      if (unhealthy) failAfterOutput(unhealthy);
      if (opts.json) {
        process.stdout.write(JSON.stringify(await withFailure(doc, unhealthy), null, 2) + '\n');
        return;
      }
      const s = doc.statistics;
      const lines = [
        `recovery-agent ${doc.agent.version} (pid ${doc.agent.pid}, up ${doc.agent.uptimeSeconds} s): ${doc.health.healthy ? 'healthy' : 'UNHEALTHY'}`,
        ...doc.health.reasons.map((r) => `  ! ${r}`),
        `plugins: ${doc.plugins.map((p) => `${p.id}${p.state === 'running' ? '' : ` (${p.state})`}`).join(', ')}`,
        `failures detected ${s.failuresDetected}, recovered ${s.recoveriesSucceeded}, failed ${s.recoveriesFailed}, unhandled ${s.recoveriesUnhandled ?? 0}, ` +
          `RTO avg ${fmtMs(s.avgRtoMs)} p95 ${fmtMs(s.p95RtoMs)}, compliance ${s.rtoComplianceRate === null ? '-' : `${Math.round(s.rtoComplianceRate! * 100)} %`}`,
      ];
      lines.push(...sectionLines(doc));
      if (doc.openFailures.length) {
        lines.push('open failures:');
        for (const o of doc.openFailures) lines.push(`  ${o.failure.priority} ${o.failure.kind} ${o.failure.subject} (${o.state})`);
      }
      if (doc.recentRecoveries.length) {
        lines.push('recent recoveries:');
        for (const r of doc.recentRecoveries.slice(-10)) {
          lines.push(`  ${new Date(r.finishedAt).toISOString()} ${r.kind} ${r.subject}: ${r.outcome}, RTO ${fmtMs(r.rtoMs)}${r.withinTarget ? '' : ' (over target)'}`);
        }
      }
      process.stdout.write(lines.join('\n') + '\n');
    });
}

interface ProcessLine {
  id: string;
  state: string;
  pid: number | null;
  restarts: number;
  crashes: number;
  hangs: number;
  cpuPercent: number | null;
  rssBytes: number | null;
  store?: string;
  adopted?: boolean;
}

interface HealthSection {
  score: number | null;
  level: string;
  components: Array<{ component: string; score: number }>;
  failingProbes: Array<{ id: string; error: string }>;
  predictions: Array<{ resource: string; alerting: boolean; etaSeconds: number | null; probability: number }>;
}

/** The plugin sections an operator reads first, as text: supervised processes and the host's health. */
export function sectionLines(doc: Record<string, unknown>): string[] {
  const lines: string[] = [];
  const processes = Array.isArray(doc.processes) ? (doc.processes as ProcessLine[]) : [];
  if (processes.length) {
    lines.push('processes:');
    for (const p of processes) {
      const facts = [
        p.pid !== null ? `pid ${p.pid}` : null,
        p.adopted ? 'adopted' : null,
        p.store ? `store ${p.store}` : null,
        `${p.restarts} restart(s), ${p.crashes} crash(es), ${p.hangs} hang(s)`,
        p.cpuPercent !== null ? `cpu ${Math.round(p.cpuPercent)} %` : null,
        p.rssBytes !== null ? `rss ${Math.round(p.rssBytes / 2 ** 20)} MiB` : null,
      ].filter((f) => f !== null);
      lines.push(`  ${p.id}: ${p.state} (${facts.join(', ')})`);
    }
  }
  const h = doc.healthMonitor as HealthSection | undefined;
  if (h && typeof h === 'object' && Array.isArray(h.components)) {
    lines.push(`health: ${h.score === null ? '-' : Math.round(h.score)}/100 ${h.level} (${h.components.map((c) => `${c.component} ${c.score}`).join(', ')})`);
    for (const p of h.failingProbes ?? []) lines.push(`  ! probe ${p.id}: ${p.error}`);
    for (const p of (h.predictions ?? []).filter((x) => x.alerting)) {
      lines.push(`  ! ${p.resource} predicted to run out${p.etaSeconds === null ? '' : ` in ${fmtEta(p.etaSeconds)}`} (probability ${p.probability})`);
    }
  }
  return lines;
}

function fmtEta(seconds: number): string {
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '-';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** Why a fetch failed, as " (connection refused)", from the errno under fetch's TypeError; "" when unknown. */
function unreachableWhy(err: unknown): string {
  if ((err as Error | undefined)?.name === 'TimeoutError') return ' (no answer within 5 s)';
  const code = ((err as { cause?: { code?: unknown } } | undefined)?.cause?.code);
  const why: Record<string, string> = { ECONNREFUSED: 'connection refused', ENOTFOUND: 'host not found', EHOSTUNREACH: 'host unreachable', ECONNRESET: 'connection reset' };
  return typeof code === 'string' ? ` (${why[code] ?? code})` : '';
}
